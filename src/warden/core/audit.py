"""Hash chaining of audit records (pure).

Each record's hash is SHA-256 over the previous record's hash and a canonical JSON encoding
of the record's own fields, so changing, inserting, removing or reordering any record breaks
every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from warden.core.model import AuditDraft, AuditRecord

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
