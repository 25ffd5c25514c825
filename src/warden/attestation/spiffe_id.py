"""SPIFFE ID validation (SPIFFE-ID.md §2) through py-spiffe."""

from __future__ import annotations

from spiffe import SpiffeId

from warden.errors import InvalidParameterError

MAX_SPIFFE_ID_BYTES = 2048


def validate_spiffe_id(value: str) -> str:
    """Return the canonical SPIFFE ID or raise InvalidParameterError naming the rule broken."""
    if not isinstance(value, str) or len(value.encode()) > MAX_SPIFFE_ID_BYTES:
        raise InvalidParameterError("invalid spiffe id: longer than 2048 bytes")
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in value):
        # a trailing newline or a look-alike character must never name a second agent
        raise InvalidParameterError("invalid spiffe id: only printable ASCII is allowed")
    try:
        parsed = SpiffeId(value)
    except Exception as exc:  # py-spiffe raises its own error types; the message is what matters
        raise InvalidParameterError(f"invalid spiffe id `{value}`: {exc}") from exc
    if str(parsed) != value:
        raise InvalidParameterError(f"invalid spiffe id `{value}`: not in canonical form")
    return value


def spiffe_selectors(spiffe_id: str, trust_domain: str) -> frozenset[str]:
    """The selectors of a verified SVID: ``spiffe:id:<id>`` and ``spiffe:td:<trust domain>``."""
    return frozenset({f"spiffe:id:{spiffe_id}", f"spiffe:td:{trust_domain}"})
