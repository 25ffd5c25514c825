from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.tokens.token_forge import (
    AUDIENCE,
    ISSUER,
    START,
    SUBJECT,
    ed25519_signer,
    forge,
    good_claims,
)
from warden.core.clock import FrozenClock
from warden.tokens import (
    IssuedCredential,
    MemoryKeyManager,
    TaskCredentialIssuer,
    TaskCredentialVerifier,
)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def keys(clock: FrozenClock) -> MemoryKeyManager:
    return MemoryKeyManager(clock)


@pytest.fixture
def issuer(keys: MemoryKeyManager, clock: FrozenClock) -> TaskCredentialIssuer:
    return TaskCredentialIssuer(keys, ISSUER, clock)


@pytest.fixture
def verifier(keys: MemoryKeyManager, clock: FrozenClock) -> TaskCredentialVerifier:
    return TaskCredentialVerifier(keys, issuer=ISSUER, audiences={AUDIENCE}, clock=clock)


@pytest.fixture
def issue(issuer: TaskCredentialIssuer) -> Callable[..., IssuedCredential]:
    def _issue(**overrides: Any) -> IssuedCredential:
        args: dict[str, Any] = {
            "subject": SUBJECT,
            "audience": [AUDIENCE],
            "task_id": "task_0123456789abcdef01234567",
            "scope": ["search", "read_file"],
            "ttl": 300,
            "not_after": START + 3600,
        }
        args.update(overrides)
        return issuer.issue(**args)

    return _issue


@pytest.fixture
def sign_good(keys: MemoryKeyManager) -> Callable[..., str]:
    """Sign arbitrary header overrides / claims with the real current key."""

    def _sign(claims: Any = None, **header: Any) -> str:
        key = keys.current()
        full_header = {"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid, **header}
        full_header = {k: v for k, v in full_header.items() if v is not None}
        return forge(
            full_header,
            good_claims() if claims is None else claims,
            ed25519_signer(key.private_key),
        )

    return _sign
