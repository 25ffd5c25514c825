"""Signed agent manifests: declared at registration, verified at token exchange.

An operator declares what an agent may run (``core.manifest``): accepted models, system-prompt,
tool-manifest, code and image digests, and the keys allowed to sign its manifests. At token
exchange the agent sends ``agent_manifest``: a DSSE envelope (``tokens.dsse``) over an in-toto
statement. ``check`` verifies it offline — signature by a declared key, the statement names
this agent, every declared set contains what the statement says — and returns what policy sees
as ``context.warden.manifest`` (with the digest of the signed statement, which the credential
binds as ``manifest_digest``). Anything else raises ``ManifestMismatchError`` whose
``detail["differences"]`` lists what differed; the token endpoint refuses with
``manifest_mismatch`` and audits the differences.

Fail closed: an agent with a declaration must present a manifest; a manifest for an agent
without one cannot be verified, so it is refused too.
"""

from __future__ import annotations

import json
from typing import Any

from warden.core.clock import Clock
from warden.core.manifest import (
    PAYLOAD_TYPE,
    ManifestDeclaration,
    compare,
    parse_declaration,
    parse_statement,
    policy_view,
)
from warden.core.model import Agent
from warden.core.ports import Store
from warden.errors import InvalidParameterError, NotFoundError, PermissionDeniedError
from warden.service.auditing import Auditor
from warden.tokens.dsse import EnvelopeError, SignerKey, verify_envelope

__all__ = ["ManifestMismatchError", "ManifestService"]

FORM_PARAMETER = "agent_manifest"


class ManifestMismatchError(PermissionDeniedError):
    """The presented manifest is missing, unverifiable or differs from the declaration."""

    code = "manifest_mismatch"


def _mismatch(message: str, *differences: dict[str, Any]) -> ManifestMismatchError:
    return ManifestMismatchError(message, detail={"differences": list(differences)})


def _key_id(pem: str) -> str:
    return SignerKey.from_pem(pem).keyid


class ManifestService:
    def __init__(self, store: Store, auditor: Auditor, clock: Clock) -> None:
        self._store = store
        self._audit = auditor
        self._clock = clock

    # -- declarations -------------------------------------------------------------------------
    @staticmethod
    def parse(raw: Any) -> ManifestDeclaration:
        """Validate a declaration (signer keys included) without storing it."""
        declaration = parse_declaration(raw, key_id=_key_id)
        for signer in declaration.signers:
            SignerKey.from_pem(signer.public_key, signer.keyid)  # raises for a bad key
        return declaration

    def declare(self, agent: Agent, raw: Any, *, actor: str) -> dict[str, Any]:
        declaration = self.parse(raw)
        body = declaration.to_json()
        self._store.put_manifest_declaration(agent.name, body, at=self._clock.now(), by=actor)
        self._audit.record(
            "agent.manifest_declared",
            actor,
            {**body, "signers": [s.keyid for s in declaration.signers]},
            agent=agent.name,
        )
        return body

    def declaration(self, agent_name: str) -> ManifestDeclaration | None:
        try:
            raw = self._store.fetch_manifest_declaration(agent_name)
        except NotFoundError:
            return None
        return parse_declaration(raw)

    def view(self, agent_name: str) -> dict[str, Any]:
        found = self.declaration(agent_name)
        if found is None:
            raise NotFoundError(f"agent `{agent_name}` declares no manifest")
        return found.to_json()

    def clear(self, agent: Agent, *, actor: str) -> None:
        self._store.delete_manifest_declaration(agent.name)
        self._audit.record("agent.manifest_cleared", actor, {}, agent=agent.name)

    # -- token exchange -----------------------------------------------------------------------
    def check(self, agent: Agent, envelope: str | None, *, now: float) -> dict[str, Any] | None:
        """What policy sees of a verified manifest, or None when the agent declares none and
        presents none (ManifestMismatchError otherwise; see the module docstring)."""
        declaration = self.declaration(agent.name)
        if declaration is None:
            if envelope is None:
                return None
            raise _mismatch(
                f"agent `{agent.name}` declares no manifest signers, so its manifest cannot be "
                "verified",
                {"field": "declaration", "presented": "manifest", "accepted": None},
            )
        if envelope is None:
            raise _mismatch(
                f"agent `{agent.name}` must present a signed manifest (`{FORM_PARAMETER}`)",
                {"field": "manifest", "presented": None, "accepted": "signed manifest"},
            )
        keys = [SignerKey.from_pem(s.public_key, s.keyid) for s in declaration.signers]
        try:
            verified = verify_envelope(envelope, keys, payload_type=PAYLOAD_TYPE)
        except EnvelopeError as exc:
            raise _mismatch(
                f"the manifest is not signed by a key agent `{agent.name}` accepts",
                {
                    "field": "signature",
                    "presented": exc.detail.get("reason", "invalid"),
                    "accepted": [k.keyid for k in keys],
                },
            ) from exc
        try:
            statement = parse_statement(json.loads(verified.payload))
        except (ValueError, InvalidParameterError) as exc:
            message = exc.message if isinstance(exc, InvalidParameterError) else "not json"
            raise _mismatch(
                "the signed manifest is not a valid statement",
                {"field": "statement", "presented": message, "accepted": None},
            ) from exc
        differences = compare(declaration, statement, agent=agent.spiffe_id, now=now)
        if differences:
            fields = ", ".join(d.field for d in differences)
            raise _mismatch(
                f"the manifest does not match what agent `{agent.name}` may run: {fields}",
                *(d.to_json() for d in differences),
            )
        return policy_view(statement, digest=verified.digest, signer=verified.keyid)
