"""Agent manifests: what an operator declares an agent may run, and what it says it runs.

The **declaration** is registered with the agent (``manifest`` in ``POST /v1/agents``)::

    {"models": [{"id": "gpt-4o", "version": "2024-08-06"}],   # version optional: any version
     "system_prompts": ["sha256:…"], "tool_manifests": ["sha256:…"],
     "code": ["sha256:…"], "images": ["sha256:…"],
     "signers": [{"keyid": "ci", "public_key": "-----BEGIN PUBLIC KEY-----…"}]}

The **statement** is an in-toto Statement v1 the agent presents at token exchange inside a DSSE
envelope signed by one of the declared signers (``tokens.dsse``)::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "spiffe://example.org/agent/bot", "digest": {"sha256": "…"}}],
     "predicateType": "https://warden.dev/agent-manifest/v1",
     "predicate": {"model": {"id": "gpt-4o", "version": "2024-08-06"},
                   "system_prompt": "sha256:…", "tool_manifest": "sha256:…",
                   "code": "sha256:…", "image": "sha256:…", "expires_at": 1767225600}}

``compare`` lists every way the statement differs from the declaration (each declared set
constrains its field; an undeclared one does not). No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warden.core.ids import full_match
from warden.errors import InvalidParameterError

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Difference",
    "ManifestDeclaration",
    "ManifestStatement",
    "compare",
    "parse_declaration",
    "parse_statement",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://warden.dev/agent-manifest/v1"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SHORT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")


def _short(value: object) -> bool:
    """A short token (a model name, a key id), matched as a whole string."""
    return bool(full_match(_SHORT, value))


MAX_ITEMS = 64
# predicate field -> declaration field (the digest-valued ones)
DIGEST_FIELDS = {
    "system_prompt": "system_prompts",
    "tool_manifest": "tool_manifests",
    "code": "code",
    "image": "images",
}


def _bad(message: str) -> InvalidParameterError:
    return InvalidParameterError(f"manifest: {message}")


def check_digest(value: Any, where: str) -> str:
    if not isinstance(value, str) or not full_match(_DIGEST, value):
        raise _bad(f"`{where}` must be a digest `sha256:<64 lowercase hex>`")
    return value


@dataclass(frozen=True, slots=True)
class ModelRef:
    id: str
    version: str = ""  # empty in a declaration: any version

    def accepts(self, other: ModelRef) -> bool:
        return self.id == other.id and (not self.version or self.version == other.version)

    def label(self) -> str:
        return f"{self.id}@{self.version}" if self.version else self.id

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, **({"version": self.version} if self.version else {})}


def _model(raw: Any, where: str) -> ModelRef:
    if isinstance(raw, str):  # "id@version" shorthand
        head, _, tail = raw.partition("@")
        raw = {"id": head, "version": tail}
    if not isinstance(raw, Mapping):
        raise _bad(f"`{where}` must be an object {{id, version}} or `id@version`")
    ident: Any = raw.get("id")
    version: Any = raw.get("version", "") or ""
    if not isinstance(ident, str) or not _short(ident):
        raise _bad(f"`{where}.id` must be a short model name")
    if not isinstance(version, str) or (version != "" and not _short(version)):
        raise _bad(f"`{where}.version` must be a short string")
    return ModelRef(ident, version)


@dataclass(frozen=True, slots=True)
class Signer:
    keyid: str
    public_key: str  # PEM SubjectPublicKeyInfo


@dataclass(frozen=True, slots=True)
class ManifestDeclaration:
    """What an agent may run (see the module docstring)."""

    signers: tuple[Signer, ...]
    models: tuple[ModelRef, ...] = ()
    system_prompts: tuple[str, ...] = ()
    tool_manifests: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    images: tuple[str, ...] = ()

    def accepted(self, field: str) -> tuple[str, ...]:
        value: tuple[str, ...] = getattr(self, DIGEST_FIELDS[field])
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [m.to_json() for m in self.models],
            "system_prompts": list(self.system_prompts),
            "tool_manifests": list(self.tool_manifests),
            "code": list(self.code),
            "images": list(self.images),
            "signers": [{"keyid": s.keyid, "public_key": s.public_key} for s in self.signers],
        }


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise _bad(f"`{key}` must be a list of at most {MAX_ITEMS} items")
    return value


def parse_declaration(raw: Any, *, key_id: Any = None) -> ManifestDeclaration:
    """Validate a declaration; ``key_id(pem)`` names a signer that has no ``keyid`` (and
    checks the key)."""
    if not isinstance(raw, Mapping):
        raise _bad("the declaration must be an object")
    unknown = set(raw) - {"models", "signers", *DIGEST_FIELDS.values()}
    if unknown:
        raise _bad(f"unknown field `{sorted(unknown)[0]}`")
    signers: list[Signer] = []
    for i, item in enumerate(_list(raw, "signers")):
        if isinstance(item, str):
            item = {"public_key": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("public_key"), str):
            raise _bad(f"`signers[{i}]` needs a PEM `public_key`")
        pem = str(item["public_key"])
        keyid = item.get("keyid")
        if keyid is not None and (not isinstance(keyid, str) or not _short(keyid)):
            raise _bad(f"`signers[{i}].keyid` must be a short string")
        signers.append(Signer(keyid or (key_id(pem) if key_id else ""), pem))
    if not signers:
        raise _bad("`signers` must name at least one key allowed to sign manifests")
    if len({s.keyid for s in signers}) != len(signers):
        raise _bad("signer key ids must be unique")
    models = tuple(_model(m, f"models[{i}]") for i, m in enumerate(_list(raw, "models")))
    digests = {
        plural: tuple(
            dict.fromkeys(
                check_digest(d, f"{plural}[{i}]") for i, d in enumerate(_list(raw, plural))
            )
        )
        for plural in DIGEST_FIELDS.values()
    }
    return ManifestDeclaration(
        signers=tuple(signers),
        models=models,
        system_prompts=digests["system_prompts"],
        tool_manifests=digests["tool_manifests"],
        code=digests["code"],
        images=digests["images"],
    )


@dataclass(frozen=True, slots=True)
class ManifestStatement:
    """What a signed statement says the agent runs."""

    subject: str
    model: ModelRef | None = None
    digests: tuple[tuple[str, str], ...] = ()  # (predicate field, digest)
    expires_at: float | None = None

    def digest(self, field: str) -> str | None:
        return dict(self.digests).get(field)


def parse_statement(raw: Any) -> ManifestStatement:
    """An in-toto Statement v1 with Warden's agent-manifest predicate."""
    if not isinstance(raw, Mapping) or raw.get("_type") != STATEMENT_TYPE:
        raise _bad(f"the payload must be an in-toto statement (`_type` `{STATEMENT_TYPE}`)")
    if raw.get("predicateType") != PREDICATE_TYPE:
        raise _bad(f"`predicateType` must be `{PREDICATE_TYPE}`")
    subjects = raw.get("subject")
    if (
        not isinstance(subjects, list)
        or len(subjects) != 1
        or not isinstance(subjects[0], Mapping)
        or not isinstance(subjects[0].get("name"), str)
    ):
        raise _bad("`subject` must name exactly one agent")
    predicate = raw.get("predicate")
    if not isinstance(predicate, Mapping):
        raise _bad("`predicate` must be an object")
    model = _model(predicate["model"], "predicate.model") if "model" in predicate else None
    digests = tuple(
        (field, check_digest(predicate[field], f"predicate.{field}"))
        for field in DIGEST_FIELDS
        if predicate.get(field) is not None
    )
    expires = predicate.get("expires_at")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        raise _bad("`predicate.expires_at` must be a number (epoch seconds)")
    return ManifestStatement(
        subject=str(subjects[0]["name"]),
        model=model,
        digests=digests,
        expires_at=float(expires) if expires is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the statement differs from what was declared."""

    field: str
    presented: Any
    accepted: Any

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "presented": self.presented, "accepted": self.accepted}


def compare(
    declared: ManifestDeclaration, statement: ManifestStatement, *, agent: str, now: float
) -> list[Difference]:
    """Every mismatch between the statement and the declaration (empty: it matches)."""
    out: list[Difference] = []
    if statement.subject != agent:
        out.append(Difference("agent", statement.subject, agent))
    if statement.expires_at is not None and statement.expires_at <= now:
        out.append(Difference("expires_at", statement.expires_at, f"after {now:.0f}"))
    if declared.models and (
        statement.model is None or not any(m.accepts(statement.model) for m in declared.models)
    ):
        out.append(
            Difference(
                "model",
                statement.model.label() if statement.model else None,
                [m.label() for m in declared.models],
            )
        )
    for field in DIGEST_FIELDS:
        accepted = declared.accepted(field)
        presented = statement.digest(field)
        if accepted and presented not in accepted:
            out.append(Difference(field, presented, list(accepted)))
    return out


def policy_view(statement: ManifestStatement, *, digest: str, signer: str) -> dict[str, Any]:
    """What Cedar sees under ``context.warden.manifest`` (absent fields are left out)."""
    view: dict[str, Any] = {"digest": digest, "signer": signer}
    if statement.model is not None:
        view["model"] = {"id": statement.model.id, "version": statement.model.version}
    view.update(dict(statement.digests))
    return view


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of some bytes (a system prompt, a tool manifest file)."""
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_statement(
    agent: str,
    *,
    model: str | None = None,
    digests: Mapping[str, str] | None = None,
    expires_at: float | None = None,
) -> dict[str, Any]:
    """An in-toto statement for ``agent`` (what ``warden dev manifest`` signs)."""
    predicate: dict[str, Any] = {}
    if model:
        predicate["model"] = _model(model, "model").to_json()
    for field, value in (digests or {}).items():
        if field not in DIGEST_FIELDS:
            raise _bad(f"unknown digest field `{field}`")
        predicate[field] = check_digest(value, field)
    if expires_at is not None:
        predicate["expires_at"] = int(expires_at)
    subject_digest = dict(digests or {}).get("code") or dict(digests or {}).get("image")
    digest = {"sha256": subject_digest.removeprefix("sha256:")} if subject_digest else {}
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": agent, "digest": digest}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
