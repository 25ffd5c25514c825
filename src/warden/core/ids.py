"""Identifier rules shared by every layer."""

from __future__ import annotations

import itertools
import re
import secrets

from warden.errors import InvalidParameterError

# Agent names appear in URLs, CLI arguments and SPIFFE paths: keep them boring.
_AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# Tool / action names appear in scopes (space-separated) and as Cedar action ids.
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")  # RFC 6749 scope-token
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def validate_agent_name(name: str) -> str:
    if not isinstance(name, str) or not _AGENT_NAME.match(name):
        raise InvalidParameterError(
            f"invalid agent name `{name}`: use 1-63 lowercase letters, digits, `.`, `_` or `-`"
        )
    return name


def validate_scope_token(token: str) -> str:
    if not isinstance(token, str) or not _SCOPE_TOKEN.match(token):
        raise InvalidParameterError(f"invalid scope entry `{token}`")
    return token


def validate_group(name: str) -> str:
    if not isinstance(name, str) or not _GROUP.match(name):
        raise InvalidParameterError(f"invalid group name `{name}`")
    return name


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
