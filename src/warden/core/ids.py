"""Identifier rules shared by every layer.

Every identifier pattern is matched against the *whole* string through ``full_match``:
``re.match`` with ``$`` also accepts a trailing newline (``"lca-x\\n"`` would register beside
``lca-x`` and get a look-alike SPIFFE ID), so no pattern in Warden is anchored with ``^…$``.
"""

from __future__ import annotations

import itertools
import re
import secrets
from typing import TypeGuard

from warden.errors import InvalidParameterError

# Agent names appear in URLs, CLI arguments and SPIFFE paths: keep them boring.
_AGENT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# Tool / action names appear in scopes (space-separated) and as Cedar action ids.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")  # RFC 6749 scope-token
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Owners are people: an e-mail-like principal (RFC 5322 dot-atom local part, a DNS host name)
_OWNER = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
MAX_OWNER = 254


def full_match(pattern: re.Pattern[str], value: object) -> TypeGuard[str]:
    """Does ``value`` (a string) match ``pattern`` as a whole? The one way Warden checks ids."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def validate_agent_name(name: str) -> str:
    if not full_match(_AGENT_NAME, name):
        raise InvalidParameterError(
            f"invalid agent name `{name}`: use 1-63 lowercase letters, digits, `.`, `_` or `-`"
        )
    return name


def validate_scope_token(token: str) -> str:
    if not full_match(_SCOPE_TOKEN, token):
        raise InvalidParameterError(f"invalid scope entry `{token}`")
    return token


def validate_group(name: str) -> str:
    if not full_match(_GROUP, name):
        raise InvalidParameterError(f"invalid group name `{str(name)[:140]!r}`")
    return name


def validate_owner(owner: object, field: str = "owner") -> str:
    """An owner is an e-mail-like principal (``name@example.com``), matched as a whole."""
    if not isinstance(owner, str) or len(owner) > MAX_OWNER or not full_match(_OWNER, owner):
        raise InvalidParameterError(
            f"`{field}` must be an e-mail-like principal such as `name@example.com`",
            detail={"field": field},
        )
    return owner


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier with a readable prefix (``task_…``, ``dec_…``)."""
    return f"{prefix}_{secrets.token_hex(12)}"


# Decision ids are identifiers, not secrets, and one is minted per decision on the hot path: a
# random per-process prefix plus a counter is unique across replicas and costs no syscall.
_DECISION_PREFIX = secrets.token_hex(8)
_decision_counter = itertools.count(1)


def new_decision_id() -> str:
    """``dec_<16 hex: process>`` + ``<10 hex: sequence>``; unique across processes and restarts."""
    return f"dec_{_DECISION_PREFIX}{next(_decision_counter):010x}"
