"""Lease targets from the configuration: PostgreSQL role templates and downstream services.

A PostgreSQL target (``leases.postgres.<name>``)::

    dsn: postgresql://warden_broker@db.internal:5432/app   # or dsn_env: NAME_OF_ENV_VAR
    scope: db.reporting          # the task scope a lease needs (default lease.<name>)
    role_prefix: warden_         # [a-z_][a-z0-9_]*, at most 30 characters
    max_ttl: 1h                  # and never past the task's expiry
    connection_limit: 5
    member_of: [reporting_readers]
    grants:
      - {privileges: [SELECT], on: table, objects: [public.orders, public.customers]}
      - {privileges: [USAGE], on: schema, objects: [public]}

Every name from the template (objects, roles in ``member_of``) and the generated role name are
sent as quoted identifiers (``psycopg.sql.Identifier``), never spliced into SQL text; privileges
and object kinds come from fixed allow-lists, so a template cannot smuggle SQL in. A name that
does not exist makes the lease fail cleanly (the whole creation is one transaction).

A downstream service (``leases.services.<name>``) gets audience-bound JWTs::

    audience: https://billing.internal   # the token's aud (default: the name)
    scope: lease.billing-api             # default lease.<name>
    max_ttl: 10m
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from warden.core.ids import full_match, validate_scope_token
from warden.errors import InvalidParameterError

__all__ = [
    "OBJECT_KINDS",
    "DownstreamService",
    "Grant",
    "PostgresTarget",
    "parse_service",
    "parse_target",
]

# on-kind -> (SQL words, privileges allowed, how many name parts an object has)
OBJECT_KINDS: dict[str, tuple[str, frozenset[str], tuple[int, ...]]] = {
    "table": (
        "TABLE",
        frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}),
        (1, 2),
    ),
    "sequence": ("SEQUENCE", frozenset({"USAGE", "SELECT", "UPDATE"}), (1, 2)),
    "schema": ("SCHEMA", frozenset({"USAGE", "CREATE"}), (1,)),
    "database": ("DATABASE", frozenset({"CONNECT", "TEMPORARY", "CREATE"}), (1,)),
    "all_tables_in_schema": (
        "ALL TABLES IN SCHEMA",
        frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}),
        (1,),
    ),
    "all_sequences_in_schema": (
        "ALL SEQUENCES IN SCHEMA",
        frozenset({"USAGE", "SELECT", "UPDATE"}),
        (1,),
    ),
}
_ROLE_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,29}")
_MAX_NAME = 63  # PostgreSQL's NAMEDATALEN - 1


@dataclass(frozen=True)
class Grant:
    privileges: tuple[str, ...]
    on: str
    objects: tuple[tuple[str, ...], ...]  # each object's name parts (schema, name)


@dataclass(frozen=True)
class PostgresTarget:
    name: str
    dsn: str = field(repr=False)  # may hold a password: never logged, never returned
    host: str
    port: int
    database: str
    scope: str
    role_prefix: str
    max_ttl: float
    connection_limit: int
    grants: tuple[Grant, ...]
    member_of: tuple[str, ...]


@dataclass(frozen=True)
class DownstreamService:
    name: str
    audience: str
    scope: str
    max_ttl: float


def _where(name: str, key: str, kind: str = "postgres") -> str:
    return f"`leases.{kind}.{name}.{key}`"


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_NAME or "\x00" in value:
        raise InvalidParameterError(f"config {where} must be a name of 1-63 characters")
    return value


def _ttl(raw: dict[str, Any], name: str, kind: str, default: float) -> float:
    ttl = raw.get("max_ttl", default)  # the config loader turns `5m`-style values into seconds
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= 7 * 86400:
        raise InvalidParameterError(f"config {_where(name, 'max_ttl', kind)} must be 1s..7d")
    return float(ttl)


def _scope(raw: dict[str, Any], name: str, kind: str) -> str:
    try:
        return validate_scope_token(raw.get("scope", f"lease.{name}"))
    except InvalidParameterError:
        raise InvalidParameterError(
            f"config {_where(name, 'scope', kind)} must be one scope entry"
        ) from None


def _grant(raw: Any, where: str) -> Grant:
    if not isinstance(raw, dict):
        raise InvalidParameterError(f"config {where} must be a mapping")
    on = raw.get("on")
    if on not in OBJECT_KINDS:
        raise InvalidParameterError(f"config {where}.on must be one of {', '.join(OBJECT_KINDS)}")
    _, allowed, parts = OBJECT_KINDS[on]
    privileges = raw.get("privileges")
    if isinstance(privileges, str):
        privileges = [privileges]
    if not isinstance(privileges, list) or not privileges:
        raise InvalidParameterError(f"config {where}.privileges must be a list")
    upper = tuple(dict.fromkeys(str(p).upper() for p in privileges))
    bad = [p for p in upper if p not in allowed]
    if bad:
        raise InvalidParameterError(
            f"config {where}.privileges: `{bad[0][:40]}` is not a {on} privilege "
            f"({', '.join(sorted(allowed))})"
        )
    objects = raw.get("objects")
    if not isinstance(objects, list) or not objects:
        raise InvalidParameterError(f"config {where}.objects must be a non-empty list")
    names: list[tuple[str, ...]] = []
    for obj in objects:
        split = tuple(obj) if isinstance(obj, list) else tuple(str(obj).split("."))
        if len(split) not in parts:
            counts = " or ".join(map(str, parts))
            raise InvalidParameterError(
                f"config {where}.objects: `{str(obj)[:80]}` must have {counts} dot-separated parts"
            )
        names.append(tuple(_text(part, f"{where}.objects") for part in split))
    return Grant(upper, on, tuple(names))


def parse_target(name: str, raw: dict[str, Any]) -> PostgresTarget:
    """Validate one ``leases.postgres.<name>`` entry (InvalidParameterError naming the key)."""
    dsn = raw.get("dsn")
    if dsn is None and raw.get("dsn_env"):
        dsn = os.environ.get(str(raw["dsn_env"]))
        if not dsn:
            raise InvalidParameterError(
                f"config {_where(name, 'dsn_env')}: environment variable "
                f"`{raw['dsn_env']}` is not set"
            )
    if not isinstance(dsn, str) or not dsn.startswith(("postgresql://", "postgres://")):
        raise InvalidParameterError(f"config {_where(name, 'dsn')} must be a postgresql:// url")
    parts = urlsplit(dsn)
    database = parts.path.lstrip("/") or "postgres"
    prefix = raw.get("role_prefix", "warden_")
    if not full_match(_ROLE_PREFIX, prefix):
        raise InvalidParameterError(
            f"config {_where(name, 'role_prefix')} must match [a-z_][a-z0-9_]* (30 at most)"
        )
    limit = raw.get("connection_limit", 5)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidParameterError(f"config {_where(name, 'connection_limit')} must be 1..1000")
    grants = raw.get("grants") or []
    if not isinstance(grants, list):
        raise InvalidParameterError(f"config {_where(name, 'grants')} must be a list")
    member_of = raw.get("member_of") or []
    if not isinstance(member_of, list):
        raise InvalidParameterError(f"config {_where(name, 'member_of')} must be a list")
    if not grants and not member_of:
        raise InvalidParameterError(
            f"config `leases.postgres.{name}` grants nothing: give `grants` or `member_of`"
        )
    return PostgresTarget(
        name=name,
        dsn=dsn,
        host=str(raw.get("connect_host") or parts.hostname or "localhost"),
        port=int(raw.get("connect_port") or parts.port or 5432),
        database=database,
        scope=_scope(raw, name, "postgres"),
        role_prefix=prefix,
        max_ttl=_ttl(raw, name, "postgres", 3600),
        connection_limit=limit,
        grants=tuple(_grant(g, f"{_where(name, 'grants')}[{i}]") for i, g in enumerate(grants)),
        member_of=tuple(_text(m, _where(name, "member_of")) for m in member_of),
    )


def parse_service(name: str, raw: dict[str, Any]) -> DownstreamService:
    """Validate one ``leases.services.<name>`` entry."""
    audience = raw.get("audience", name)
    if not isinstance(audience, str) or not audience or len(audience) > 500:
        raise InvalidParameterError(f"config {_where(name, 'audience', 'services')} is invalid")
    return DownstreamService(
        name=name,
        audience=audience,
        scope=_scope(raw, name, "services"),
        max_ttl=_ttl(raw, name, "services", 600),
    )
