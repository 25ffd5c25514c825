"""Leases: downstream secrets minted for a task and revoked with it.

``templates`` parses and validates the configured PostgreSQL targets (the role template: what a
task's role is granted); ``postgres`` creates, lists and drops those roles on the target. Only this
package talks to lease targets (psycopg); the use case (record first, create, revoke with the
task, reap orphans) is ``warden.service.leases``.
"""

from warden.broker.postgres import PostgresBroker, scram_sha256_verifier
from warden.broker.templates import (
    DownstreamService,
    Grant,
    PostgresTarget,
    parse_service,
    parse_target,
)

__all__ = [
    "DownstreamService",
    "Grant",
    "PostgresBroker",
    "PostgresTarget",
    "parse_service",
    "parse_target",
    "scram_sha256_verifier",
]
