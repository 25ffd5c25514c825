"""Query-string paging shared by list endpoints."""

from __future__ import annotations

from starlette.requests import Request

from warden.errors import InvalidParameterError

MAX_LIMIT = 1000


def limit_of(request: Request, default: int = 100) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameterError(f"`limit` must be an integer, not `{raw[:40]}`") from None
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidParameterError(f"`limit` must be between 1 and {MAX_LIMIT}")
    return value


def int_param(request: Request, name: str, default: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameterError(f"`{name}` must be an integer") from None


def float_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidParameterError(f"`{name}` must be a number (epoch seconds)") from None
