"""Signed checkpoints of the audit chain, their export, and verification of log + checkpoints.

Every ``checkpoint_interval`` the composition root calls ``CheckpointService.tick()``: when the
chain grew since the last checkpoint, Warden signs ``{seq, head, ts}`` with its current key
(``tokens.checkpoint``) and stores it, then copies new checkpoints to the configured sinks (a
file, an HTTP endpoint) — outside Warden's own database, so whoever can write the database
still cannot rewrite history unnoticed: the chain they rebuild no longer ends in the signed
heads held elsewhere.

``verify_log`` streams the records once: each record must chain (``core.audit``), each signed
checkpoint must verify against the JWKS and name the hash the chain really has at its seq, and
no checkpoint may point past the end of the log (truncation). It reports the first break.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.audit.head import ChainHead
from warden.audit.writer import AuditWriter
from warden.core.audit import verify_chain
from warden.core.clock import Clock
from warden.core.governance import Checkpoint
from warden.core.model import AuditRecord
from warden.core.ports import Store
from warden.errors import ConflictError, TokenInvalidError, WardenError
from warden.service.sinks import Exporter, Sink
from warden.tokens.checkpoint import sign_checkpoint, verify_checkpoint
from warden.tokens.keys import KeyManager

log = logging.getLogger("warden.checkpoints")


def checkpoint_line(cp: Checkpoint) -> str:
    return json.dumps(
        {"seq": cp.seq, "head_hash": cp.head_hash, "ts": cp.ts, "kid": cp.kid, "jws": cp.jws},
        separators=(",", ":"),
    )


def parse_checkpoint_line(line: str) -> Checkpoint:
    obj = json.loads(line)
    return Checkpoint(
        seq=int(obj["seq"]),
        head_hash=str(obj["head_hash"]),
        ts=float(obj["ts"]),
        kid=str(obj.get("kid", "")),
        jws=str(obj["jws"]),
    )


class CheckpointService:
    def __init__(
        self,
        store: Store,
        keys: KeyManager,
        writer: AuditWriter,
        clock: Clock,
        *,
        issuer: str,
        sinks: Sequence[Sink] = (),
    ) -> None:
        self._store = store
        self._keys = keys
        self._writer = writer
        self._clock = clock
        self._issuer = issuer
        self.sinks = list(sinks)

    def create(self) -> Checkpoint | None:
        """Sign the current head if the chain grew since the last checkpoint."""
        self._writer.flush(self._writer.max_wait)
        seq, head = self._store.audit_head()
        latest = self._store.latest_checkpoint()
        if seq == 0 or (latest is not None and latest.seq >= seq):
            return None
        now = self._clock.now()
        key = self._keys.current()
        jws = sign_checkpoint(key, issuer=self._issuer, seq=seq, head=head, ts=now)
        cp = Checkpoint(seq=seq, head_hash=head, ts=now, kid=key.kid, jws=jws)
        try:
            self._store.create_checkpoint(cp)
        except ConflictError:
            return None  # another replica signed the same head first
        if self._writer.head is not None:  # and outside the database (ADR 0091)
            try:
                self._writer.head.note_checkpoint(cp)
            except OSError as exc:
                log.error("cannot record checkpoint %d in the audit head file: %s", cp.seq, exc)
        return cp

    def export(self) -> int:
        sent = 0
        for sink in self.sinks:
            exporter = Exporter(
                sink=sink,
                fetch=lambda after, limit: self._store.list_checkpoints(
                    after_seq=after, limit=limit
                ),
                seq_of=lambda cp: cp.seq,
                encode=checkpoint_line,
            )
            try:
                sent += exporter.drain()
            except WardenError as exc:  # the sink is down: retried from its position next tick
                log.warning("checkpoint export to %s failed: %s", sink.name, exc.message)
        return sent

    def tick(self) -> Checkpoint | None:
        cp = self.create()
        self.export()
        return cp


@dataclass
class IntegrityResult:
    ok: bool
    records: int
    head_hash: str
    checkpoints: int  # signed checkpoints that verified and matched the log
    first_bad_seq: int | None = None
    problem: str | None = None
    kind: str | None = None  # record | checkpoint | head | truncated
    checkpoint_times: list[float] = field(default_factory=list)
    missing: tuple[int, int] | None = None  # truncated: the seq range the log no longer has
    head_seq: int | None = None  # the chain head recorded outside the database, when given

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head_hash": self.head_hash,
            "checkpoints": self.checkpoints,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "kind": self.kind,
            "missing": list(self.missing) if self.missing else None,
            "head_seq": self.head_seq,
        }


def _signed_heads(
    checkpoints: Iterable[Checkpoint], jwks: Mapping[str, Any]
) -> tuple[dict[int, Checkpoint], list[tuple[int, str]]]:
    """Checkpoints whose signature verifies and whose stored values match the signed claims."""
    good: dict[int, Checkpoint] = {}
    bad: list[tuple[int, str]] = []
    for cp in checkpoints:
        try:
            claims = verify_checkpoint(cp.jws, jwks)
        except TokenInvalidError as exc:
            bad.append((cp.seq, f"checkpoint at seq {cp.seq} does not verify: {exc.message}"))
            continue
        if claims["seq"] != cp.seq or claims["head"] != cp.head_hash:
            bad.append(
                (cp.seq, f"checkpoint at seq {cp.seq} was altered: it differs from what was signed")
            )
            continue
        good[cp.seq] = cp
    return good, bad


def verify_log(
    records: Iterable[AuditRecord],
    checkpoints: Iterable[Checkpoint],
    jwks: Mapping[str, Any],
    head: ChainHead | None = None,
) -> IntegrityResult:
    """One streaming pass over the log; the first break (lowest seq) wins.

    ``head`` is the chain head kept outside the database (ADR 0091): the log must reach it and
    hold the same hash there. A log that ends before it, or before a signed checkpoint, was cut.
    """
    signed, problems = _signed_heads(checkpoints, jwks)
    matched: list[Checkpoint] = []
    mismatch: list[tuple[int, str]] = []
    head_mismatch: list[tuple[int, str]] = []

    def watched() -> Iterator[AuditRecord]:
        for rec in records:
            yield rec
            if head is not None and rec.seq == head.seq and rec.hash != head.hash:
                head_mismatch.append(
                    (
                        rec.seq,
                        f"history was rewritten: the recorded chain head at seq {rec.seq} is "
                        f"{head.hash[:16]}…, the log has {rec.hash[:16]}…",
                    )
                )
                return
            cp = signed.get(rec.seq)
            if cp is None:
                continue
            if cp.head_hash != rec.hash:
                mismatch.append(
                    (
                        rec.seq,
                        f"history was rewritten: checkpoint at seq {rec.seq} signed head "
                        f"{cp.head_hash[:16]}…, the log has {rec.hash[:16]}…",
                    )
                )
                return
            matched.append(cp)

    chain = verify_chain(watched())
    breaks: list[tuple[int, str, str]] = [(s, p, "checkpoint") for s, p in problems + mismatch]
    breaks += [(s, p, "head") for s, p in head_mismatch]
    if not chain.ok and chain.first_bad_seq is not None:
        breaks.append((chain.first_bad_seq, str(chain.problem), "record"))
    last = chain.records
    expected = max([*signed, head.seq if head is not None else 0])
    if chain.ok and not mismatch and not head_mismatch and expected > last:
        by = (
            f"the recorded chain head is at seq {head.seq}"
            if head is not None and head.seq == expected
            else f"checkpoint at seq {expected} signed {expected} records"
        )
        breaks.append(
            (
                last + 1,
                f"log truncated: records {last + 1}..{expected} are missing ({by}, only "
                f"{last} remain)",
                "truncated",
            )
        )
    result = IntegrityResult(
        ok=not breaks,
        records=chain.records,
        head_hash=chain.head_hash,
        checkpoints=len(matched),
        checkpoint_times=[cp.ts for cp in matched],
        head_seq=head.seq if head is not None else None,
    )
    if breaks:
        seq, problem, kind = min(breaks, key=lambda b: b[0])
        result.first_bad_seq, result.problem, result.kind = seq, problem, kind
        if kind == "truncated":
            result.missing = (last + 1, expected)
    return result
