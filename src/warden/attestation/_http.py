"""Fetching small JSON documents (SPIFFE bundles, OIDC discovery, JWKS) over HTTP(S).

One place for the rules every fetch follows: a short timeout, no redirects, a size cap, TLS
verification on (with an optional private CA file), and one error type naming what went wrong
without echoing the body.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from warden.errors import InvalidParameterError

MAX_DOCUMENT_BYTES = 1024 * 1024
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class FetchError(Exception):
    """A document could not be fetched or parsed; ``reason`` is a stable snake_case string."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Fetched:
    document: dict[str, Any]
    max_age: float | None  # from Cache-Control, when the server sent one


def check_url(url: object, what: str) -> str:
    """``https://`` anywhere, ``http://`` only on loopback (development and tests)."""
    if not isinstance(url, str) or not url:
        raise InvalidParameterError(f"{what} must be a url")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host in _LOOPBACK:
        return url
    raise InvalidParameterError(f"{what} `{url[:200]}` must be https (http only on loopback)")


def _max_age(header: str | None) -> float | None:
    if not header:
        return None
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age" and value.isdigit():
            return float(value)
    return None


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def fetch_json(url: str, *, ca_file: Path | None = None, timeout: float = 5.0) -> Fetched:
    """GET ``url`` and return its JSON object; FetchError on any failure."""
    try:
        verify: ssl.SSLContext | bool = tls_context(ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise FetchError("tls_config", f"cannot load ca file `{ca_file}`: {exc}") from exc
    try:
        with (
            httpx.Client(timeout=timeout, verify=verify, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise FetchError("http_status", f"`{url}` answered HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise FetchError("too_large", f"`{url}` sent more than 1 MiB")
            cache_control = response.headers.get("cache-control")
    except httpx.TimeoutException as exc:
        raise FetchError("timeout", f"`{url}` did not answer in {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise FetchError("unreachable", f"`{url}` is unreachable: {type(exc).__name__}") from exc
    try:
        document = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FetchError("not_json", f"`{url}` did not send json") from exc
    if not isinstance(document, dict):
        raise FetchError("not_json", f"`{url}` did not send a json object")
    return Fetched(document, _max_age(cache_control))
