"""Hash chaining of audit records (pure).

Each record's hash is SHA-256 over the previous record's hash and a canonical JSON encoding
of the record's own fields, so changing, inserting, removing or reordering any record breaks
every hash after it.

``prepare_draft`` gives a draft the form it will read back from storage (float timestamp,
JSON-decoded data) and its data's stored text; every store seals that form, so a record read back
later hashes to the value it was sealed with. The JSON codec is orjson (with the stdlib encoder
for what orjson refuses) — the one third-party import here, a pure function of its input.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from warden.core.model import AuditDraft, AuditRecord
from warden.errors import InvalidParameterError

GENESIS_HASH = "0" * 64


def canonical(seq: int, prev_hash: str, draft: AuditDraft) -> bytes:
    body = {
        "seq": seq,
        "prev": prev_hash,
        "ts": round(draft.ts, 6),
        "type": draft.type,
        "actor": draft.actor,
        "agent": draft.agent,
        "task": draft.task_id,
        "decision": draft.decision_id,
        "data": draft.data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(seq: int, prev_hash: str, draft: AuditDraft) -> str:
    return hashlib.sha256(canonical(seq, prev_hash, draft)).hexdigest()


def stored_json(value: Any) -> tuple[str, Any]:
    """``value`` as stored (canonical JSON text), and as it will read back (the form to hash).

    orjson first, sorted keys, no whitespace; values it refuses (integers past 64 bits, non-string
    keys) take the stdlib encoder. Each text is decoded by the library that wrote it: orjson never
    writes integers past 64 bits, so its output reads back identically with ``json.loads``.
    """
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        return text, json.loads(text)
    return text, orjson.loads(text)


def prepare_draft(draft: AuditDraft) -> tuple[AuditDraft, str]:
    """The draft exactly as it will read back from a store, and its data as stored.

    Sealing the round-tripped form (float ts, JSON-decoded data) guarantees that a record read
    back later hashes to the same value (tuples become lists, int ts becomes float, ...).
    InvalidParameterError for a non-finite timestamp or data that is not JSON-serialisable.
    """
    ts = float(draft.ts)
    if not math.isfinite(ts):
        raise InvalidParameterError(f"audit event `{draft.type}` has a non-finite timestamp")
    try:
        data_text, data = stored_json(draft.data)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"audit event `{draft.type}` data is not JSON-serialisable: {exc}"
        ) from exc
    normalized = AuditDraft(
        ts=ts,
        type=draft.type,
        actor=draft.actor,
        data=data,
        agent=draft.agent,
        task_id=draft.task_id,
        decision_id=draft.decision_id,
    )
    return normalized, data_text


def seal(seq: int, prev_hash: str, draft: AuditDraft) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        ts=draft.ts,
        type=draft.type,
        actor=draft.actor,
        data=draft.data,
        agent=draft.agent,
        task_id=draft.task_id,
        decision_id=draft.decision_id,
        prev_hash=prev_hash,
        hash=chain_hash(seq, prev_hash, draft),
    )


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(records: Iterable[AuditRecord]) -> VerifyResult:
    """Check every link; name the first record that does not fit."""
    prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for rec in records:
        if rec.seq != expected_seq:
            return VerifyResult(False, count, prev, rec.seq, f"expected seq {expected_seq}")
        if rec.prev_hash != prev:
            return VerifyResult(False, count, prev, rec.seq, "prev_hash does not match")
        draft = AuditDraft(
            ts=rec.ts,
            type=rec.type,
            actor=rec.actor,
            data=rec.data,
            agent=rec.agent,
            task_id=rec.task_id,
            decision_id=rec.decision_id,
        )
        if chain_hash(rec.seq, prev, draft) != rec.hash:
            return VerifyResult(False, count, prev, rec.seq, "record content does not match hash")
        prev = rec.hash
        expected_seq += 1
        count += 1
    return VerifyResult(True, count, prev)
