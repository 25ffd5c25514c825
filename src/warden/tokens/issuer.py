"""Issue task credentials: short-lived EdDSA JWTs for one agent on one task.

Format (version 1; ``ver`` lets a later format be told apart):

    header  {"alg": "EdDSA", "kid": <thumbprint>, "typ": "at+jwt"}        RFC 9068 §2.1
    claims  iss   the Warden issuer URL
            sub   the agent's SPIFFE ID
            aud   one audience as a string, several as a list
            iat   issue time (integer seconds); nbf = iat
            exp   min(iat + ttl, not_after), integer seconds: never beyond the task's expiry
            jti   128 random bits, base64url
            task  the task id
            scope granted scope, space-separated (RFC 8693 §4.2)
            ver   1
            ...   extra claims (``act``, ``cnf``...), which may not replace any of the above
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.core.clock import Clock
from warden.core.ids import validate_scope_token
from warden.errors import InvalidParameterError
from warden.tokens import _jose
from warden.tokens.keys import ALGORITHM, KeyManager

__all__ = [
    "FORMAT_VERSION",
    "REGISTERED_CLAIMS",
    "TOKEN_TYPE",
    "IssuedCredential",
    "TaskCredentialIssuer",
]

TOKEN_TYPE = "at+jwt"  # noqa: S105 - the JWT `typ`, not a secret
FORMAT_VERSION = 1
REGISTERED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "task", "scope", "ver"}
)


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A freshly signed credential. ``token`` is a secret: never log it (it is kept out of repr)."""

    token: str = field(repr=False)
    jti: str
    kid: str
    issued_at: float
    expires_at: float
    claims: dict[str, Any]


def _strings(value: Sequence[str], what: str) -> list[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidParameterError(f"{what} must be a list of strings")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise InvalidParameterError(f"{what} entries must be non-empty strings")
        if item not in out:
            out.append(item)
    return out


class TaskCredentialIssuer:
    """Signs task credentials with the key manager's newest key."""

    def __init__(self, keys: KeyManager, issuer: str, clock: Clock) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise InvalidParameterError("issuer must be a non-empty string")
        self._keys = keys
        self._issuer = issuer
        self._clock = clock

    @property
    def issuer(self) -> str:
        return self._issuer

    def issue(
        self,
        *,
        subject: str,
        audience: Sequence[str],
        task_id: str,
        scope: Sequence[str],
        ttl: float,
        not_after: float,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> IssuedCredential:
        """Sign a credential for ``subject`` on ``task_id``.

        Raises InvalidParameterError for an empty subject, task id or audience, an invalid scope
        entry, a non-positive or non-finite ``ttl``, extra claims that would replace a registered
        claim, and when the credential would expire at or before its issue time (the task has
        already expired).
        """
        if not isinstance(subject, str) or not subject:
            raise InvalidParameterError("subject must be a non-empty string")
        if not isinstance(task_id, str) or not task_id:
            raise InvalidParameterError("task id must be a non-empty string")
        audiences = _strings(audience, "audience")
        if not audiences:
            raise InvalidParameterError("a credential needs at least one audience")
        scopes = [validate_scope_token(item) for item in _strings(scope, "scope")]
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
            raise InvalidParameterError("ttl must be a finite number of seconds")
        if (
            isinstance(not_after, bool)
            or not isinstance(not_after, int | float)
            or math.isnan(not_after)
        ):
            raise InvalidParameterError("not_after must be a time in seconds")
        extra = dict(extra_claims or {})
        for name in extra:
            if not isinstance(name, str):
                raise InvalidParameterError("extra claim names must be strings")
            if name in REGISTERED_CLAIMS:
                raise InvalidParameterError(
                    f"extra claim `{name}` would replace a registered claim"
                )

        issued_at = int(self._clock.now())
        expires_at = math.floor(min(issued_at + ttl, not_after))
        if expires_at <= issued_at:
            raise InvalidParameterError(
                "credential would expire at or before its issue time: the task has expired"
            )
        key = self._keys.current()
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            **extra,
            "iss": self._issuer,
            "sub": subject,
            "aud": audiences[0] if len(audiences) == 1 else audiences,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_at,
            "jti": jti,
            "task": task_id,
            "scope": " ".join(scopes),
            "ver": FORMAT_VERSION,
        }
        try:
            token = _jose.encode(
                claims,
                key.private_key,
                alg=ALGORITHM,
                headers={"typ": TOKEN_TYPE, "kid": key.kid},
            )
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError("extra claims must be json-serialisable") from exc
        return IssuedCredential(
            token=token,
            jti=jti,
            kid=key.kid,
            issued_at=float(issued_at),
            expires_at=float(expires_at),
            claims=claims,
        )
