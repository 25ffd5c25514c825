"""Selectors: ``<type>:<key>:<value>`` facts about a workload, and matching them to entries.

An attestor turns verified evidence into a set of selectors (``spiffe:id:spiffe://example.org/x``,
``k8s:ns:payments``, ``unix:uid:1000`` …). A registration entry is a set of selectors for one
agent; an entry matches an identity when *every* selector of the entry is among the identity's
selectors. An identity that matches entries of two different agents is ambiguous and refused:
ambiguity is an error, never a choice.

Types and keys (values are case-sensitive and may contain ``:``):

    spiffe:id:<SPIFFE ID>     spiffe:td:<trust domain>          JWT- and X.509-SVIDs
    oidc:iss:<issuer URL>     oidc:sub:<subject>                OIDC tokens (any claim:
    oidc:<claim>:<value>                                        strings, numbers, booleans and
                                                                lists of them)
    k8s:ns:<namespace>        k8s:sa:<service account>          Kubernetes projected service
    k8s:sa-uid:<uid>          k8s:pod:<pod>  k8s:pod-uid:<uid>  account tokens
    unix:uid:<n>  unix:gid:<n>  unix:path:<exe>  unix:sha256:<hex digest of the executable>
    <prefix>:<value>          a claim mapped by an OIDC issuer's ``selectors`` config, where
                              ``<prefix>`` is itself ``<type>:<key>`` (e.g. ``ci:repo``)

Selectors of one entry must come from one family (SPIFFE; OIDC/Kubernetes/mapped claims;
Unix): no identity carries two families at once, so a mixed entry could never match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from warden.core.ids import full_match
from warden.errors import InvalidParameterError

MAX_SELECTOR = 2200  # a SPIFFE ID may be 2048 bytes, plus the prefix
MAX_SELECTORS_PER_ENTRY = 32

_TYPE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]{1,10}")

KNOWN_KEYS = {
    "spiffe": frozenset({"id", "td"}),
    "k8s": frozenset({"ns", "sa", "sa-uid", "pod", "pod-uid"}),
    "unix": frozenset({"uid", "gid", "path", "sha256"}),
}
_FAMILY = {"spiffe": "spiffe", "unix": "unix"}  # everything else is the token-claims family


def family(selector: str) -> str:
    """``spiffe``, ``unix`` or ``claims`` (OIDC, Kubernetes and mapped claims)."""
    return _FAMILY.get(selector.split(":", 1)[0], "claims")


def make(type_: str, key: str, value: object) -> str:
    return f"{type_}:{key}:{value}"


def validate_selector(selector: object) -> str:
    """Return ``selector`` when well formed, else InvalidParameterError naming the rule broken."""
    if not isinstance(selector, str) or not selector:
        raise InvalidParameterError("a selector must be a non-empty string")
    if len(selector) > MAX_SELECTOR:
        raise InvalidParameterError(f"selector is longer than {MAX_SELECTOR} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in selector):
        raise InvalidParameterError("selector contains control characters")
    parts = selector.split(":", 2)
    if len(parts) != 3 or not parts[2]:
        raise InvalidParameterError(
            f"invalid selector `{selector[:100]}`: use `<type>:<key>:<value>`"
        )
    type_, key, value = parts
    if not full_match(_TYPE, type_) or not full_match(_KEY, key):
        raise InvalidParameterError(f"invalid selector type or key in `{selector[:100]}`")
    known = KNOWN_KEYS.get(type_)
    if known is not None and key not in known:
        raise InvalidParameterError(
            f"unknown selector `{type_}:{key}`: use one of "
            + ", ".join(f"`{type_}:{k}`" for k in sorted(known))
        )
    # `spiffe:id:` values are checked against the SPIFFE ID rules by the caller (py-spiffe lives
    # outside the pure core); here only the shape
    if type_ == "spiffe" and key == "id" and not value.startswith("spiffe://"):
        raise InvalidParameterError("`spiffe:id` needs a spiffe id (`spiffe://…`)")
    if type_ == "unix" and key in ("uid", "gid") and not full_match(_DIGITS, value):
        raise InvalidParameterError(f"`unix:{key}` needs a number, not `{value[:40]}`")
    elif type_ == "unix" and key == "sha256" and not full_match(_SHA256, value):
        raise InvalidParameterError("`unix:sha256` needs 64 lowercase hex digits")
    elif type_ == "unix" and key == "path" and not value.startswith("/"):
        raise InvalidParameterError("`unix:path` needs an absolute path")
    return selector


def normalize_entry_selectors(selectors: Iterable[object]) -> tuple[str, ...]:
    """Validate an entry's selectors: 1-32 of them, one family; sorted and de-duplicated."""
    if isinstance(selectors, str):
        raise InvalidParameterError("`selectors` must be a list of strings")
    unique = sorted({validate_selector(s) for s in selectors})
    if not unique:
        raise InvalidParameterError("an entry needs at least one selector")
    if len(unique) > MAX_SELECTORS_PER_ENTRY:
        raise InvalidParameterError(f"an entry has at most {MAX_SELECTORS_PER_ENTRY} selectors")
    families = sorted({family(s) for s in unique})
    if len(families) > 1:
        raise InvalidParameterError(
            "selectors of one entry must come from one attestation family "
            f"(got {', '.join(families)}): such an entry could never match"
        )
    return tuple(unique)


def matches(entry_selectors: Iterable[str], identity_selectors: frozenset[str]) -> bool:
    """True when every selector of the entry is one of the identity's."""
    wanted = tuple(entry_selectors)
    return bool(wanted) and all(s in identity_selectors for s in wanted)
