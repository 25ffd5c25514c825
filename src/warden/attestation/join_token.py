"""Join tokens (method ``join_token``): one-time bootstrap secrets for hosts with nothing else.

An operator creates one for one agent (``warden agents join-token NAME --ttl 10m``); the host
presents it once as the RFC 8693 ``subject_token`` with type
``urn:warden:params:oauth:token-type:join-token``. The token is ``<id>.<secret>``; Warden keeps
only the SHA-256 of the whole token, compared in constant time.

This attestor only *checks* the token (known, matching hash, unexpired, unused) and binds the
identity to the token's agent. The token is consumed by the token exchange in one atomic store
update right before the task is written, after every other check passed: a refused exchange
leaves the token usable, and of two concurrent uses exactly one wins (``join_token_used``).

Reasons: ``malformed``, ``join_token_unknown``, ``join_token_expired``, ``join_token_used``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from warden.attestation.base import Channel, WorkloadIdentity, attestation_error, evidence_hash
from warden.core.clock import Clock
from warden.core.ports import Store
from warden.errors import AttestationError, NotFoundError

TOKEN_TYPE_JOIN_TOKEN = "urn:warden:params:oauth:token-type:join-token"  # noqa: S105 - a URN
METHOD = "join_token"
_TOKEN = re.compile(r"(jt_[0-9a-f]{24})\.([A-Za-z0-9_-]{43})")


def _fail(reason: str, message: str) -> AttestationError:
    return attestation_error(reason, message, method=METHOD)


def secret_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class JoinTokenAttestor:
    method = METHOD
    token_types = frozenset({TOKEN_TYPE_JOIN_TOKEN})

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        match = _TOKEN.fullmatch(token) if isinstance(token, str) and len(token) < 200 else None
        if match is None:
            raise _fail("malformed", "join token is malformed")
        try:
            record = self._store.fetch_join_token(match[1])
        except NotFoundError:
            raise _fail("join_token_unknown", "join token is unknown") from None
        if not hmac.compare_digest(record.secret_hash, secret_hash(token)):
            raise _fail("join_token_unknown", "join token is unknown")
        if record.used_at is not None:
            raise _fail("join_token_used", "join token has already been used")
        if self._clock.now() >= record.expires_at:
            raise _fail("join_token_expired", "join token has expired")
        return WorkloadIdentity(
            spiffe_id=None,
            method=METHOD,
            evidence_hash=evidence_hash(token),
            trust_domain=None,
            expires_at=record.expires_at,
            claims={},
            selectors=frozenset({f"join:token:{record.id}"}),
            agent=record.agent_name,
            details={"join_token": record.id},
        )
