"""``…:jwt`` is shared by JWT-SVIDs and OIDC tokens: route by the unverified ``iss`` first.

Routing only picks who verifies; it can only refuse, never accept. For the token types
``urn:ietf:params:oauth:token-type:jwt`` / ``…:jwt-svid`` / ``…:id_token``:

* ``iss`` is a configured OIDC issuer → that issuer's attestor (any of the three types);
* otherwise, for ``jwt``/``jwt-svid``, a ``sub`` that is a SPIFFE ID of Warden's own trust
  domain → the Warden SVID attestor, else → the JWT-SVID attestor;
* anything else → ``unknown_issuer`` (an ``id_token`` from an issuer nobody configured, or a
  JWT that is neither).

A forged ``iss`` cannot help: the chosen attestor verifies the signature with *that* issuer's
(or trust domain's) keys, and each re-checks ``iss``/``sub`` after verification.
"""

from __future__ import annotations

from collections.abc import Iterable

from warden.attestation.base import Attestor, Channel, WorkloadIdentity, attestation_error
from warden.attestation.oidc import TOKEN_TYPE_ID_TOKEN, OIDCAttestor
from warden.attestation.spiffe_jwt import TOKEN_TYPE_JWT, TOKEN_TYPE_JWT_SVID
from warden.errors import TokenInvalidError
from warden.tokens import peek_unverified

MAX_TOKEN_BYTES = 16384


class JWTRouter:
    method = "jwt"
    token_types = frozenset({TOKEN_TYPE_JWT, TOKEN_TYPE_JWT_SVID, TOKEN_TYPE_ID_TOKEN})

    def __init__(
        self,
        *,
        jwt_svid: Attestor | None = None,
        oidc: Iterable[OIDCAttestor] = (),
        own: Attestor | None = None,
        own_trust_domain: str | None = None,
    ) -> None:
        self._jwt_svid = jwt_svid
        self._oidc = {a.issuer.issuer: a for a in oidc}
        self._own = own
        self._own_prefix = f"spiffe://{own_trust_domain}/" if own_trust_domain else None

    @property
    def issuers(self) -> dict[str, OIDCAttestor]:
        return dict(self._oidc)

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        if not isinstance(token, str) or not token:
            raise attestation_error("malformed", "token must be a non-empty string")
        if len(token) > MAX_TOKEN_BYTES:
            raise attestation_error("too_large", f"token is larger than {MAX_TOKEN_BYTES} bytes")
        try:
            claims = peek_unverified(token)
        except TokenInvalidError as exc:
            raise attestation_error("malformed", f"token is malformed: {exc.message}") from None
        iss = claims.get("iss")
        if isinstance(iss, str) and iss in self._oidc:
            return self._oidc[iss].attest(token, TOKEN_TYPE_ID_TOKEN, channel)
        if token_type != TOKEN_TYPE_ID_TOKEN:
            sub = claims.get("sub")
            if isinstance(sub, str) and sub.startswith("spiffe://"):
                if self._own is not None and self._own_prefix and sub.startswith(self._own_prefix):
                    return self._own.attest(token, token_type, channel)
                if self._jwt_svid is not None:
                    return self._jwt_svid.attest(token, token_type, channel)
                raise attestation_error(
                    "unknown_trust_domain", "no spiffe trust domain is configured"
                )
        shown = iss[:200] if isinstance(iss, str) else "(none)"
        raise attestation_error("unknown_issuer", f"token issuer `{shown}` is not configured")
