"""The controls report: one streaming pass over the audit log → a JSON-ready report.

The pass verifies the log's integrity (hash chain and signed checkpoints, ``verify`` is passed
in so this module stays free of JOSE) while it evaluates every check in ``controls.CHECKS``;
the report leads with integrity, because results computed from a tampered log prove nothing.
Chart series are fixed-size accumulators, so memory does not grow with the period.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import warden
from warden.core.model import AuditRecord
from warden.evidence.catalogue import (
    AI_RMF_SOURCE,
    BY_ID,
    CSF_SOURCE,
    MAESTRO,
    MAESTRO_SOURCE,
    OUT_OF_SCOPE,
    OWASP_ASI,
    OWASP_ASI_SOURCE,
    PARTIAL,
    SP800_53_SOURCE,
)
from warden.evidence.controls import (
    CHECKS,
    Approvals,
    Check,
    Context,
    ControlResult,
    Retention,
    Thresholds,
)

BUCKETS = 48
PROGRESS_EVERY = 1000
LATENCY_BINS: tuple[tuple[str, float], ...] = (
    ("< 1 min", 60.0),
    ("1-5 min", 300.0),
    ("5-15 min", 900.0),
    ("15-60 min", 3600.0),
    ("> 1 h", math.inf),
)


class IntegrityLike(Protocol):
    ok: bool
    records: int
    head_hash: str
    checkpoints: int
    first_bad_seq: int | None
    problem: str | None
    kind: str | None
    checkpoint_times: list[float]


Verifier = Callable[[Iterable[AuditRecord]], IntegrityLike]


@dataclass
class Charts:
    start: float
    end: float
    allow: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    deny: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    monitor: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    denies_by_policy: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)

    def add(self, rec: AuditRecord) -> None:
        self.by_type[rec.type] += 1
        if rec.type != "authz.decision":
            return
        span = max(self.end - self.start, 1e-9)
        i = min(BUCKETS - 1, max(0, int((rec.ts - self.start) / span * BUCKETS)))
        d = rec.data
        if d.get("decision") == "allow":
            (self.monitor if d.get("monitor") else self.allow)[i] += 1
        else:
            self.deny[i] += 1
            for why in d.get("reasons") or [d.get("reason") or "no matching permit"]:
                self.denies_by_policy[str(why)] += 1

    def as_dict(self, latencies: Sequence[float]) -> dict[str, Any]:
        bins = dict.fromkeys([label for label, _ in LATENCY_BINS] + ["expired"], 0)
        for latency in latencies:
            if latency < 0:
                bins["expired"] += 1
                continue
            label = next(lb for lb, limit in LATENCY_BINS if latency < limit)
            bins[label] += 1
        width = (self.end - self.start) / BUCKETS
        return {
            "decisions_over_time": {
                "bucket_starts": [self.start + i * width for i in range(BUCKETS)],
                "allow": self.allow,
                "deny": self.deny,
                "monitor": self.monitor,
            },
            "denies_by_policy": dict(self.denies_by_policy.most_common(12)),
            "approvals_by_latency": bins,
        }


def _framework_rows(
    results: Sequence[ControlResult], attr: str, titles: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for result in results:
        for key in getattr(result.spec, attr):
            row = rows.setdefault(key, {"id": key, "controls": [], "statuses": Counter()})
            row["controls"].append(result.spec.id)
            row["statuses"][result.status] += 1
    if titles:
        for key in titles:
            rows.setdefault(key, {"id": key, "controls": [], "statuses": Counter()})
    out = []
    for key in sorted(rows, key=_natural):
        row = rows[key]
        statuses: Counter[str] = row.pop("statuses")
        if statuses["fail"]:
            verdict = "violations"
        elif statuses["pass"]:
            verdict = "evidenced"
        else:
            verdict = "no evidence"
        entry = {**row, "verdict": verdict}
        if titles:
            entry["title"] = titles.get(key, "")
        if key in PARTIAL:
            entry["partial"] = PARTIAL[key]
        out.append(entry)
    return out


def _natural(key: str) -> tuple[Any, ...]:
    parts: list[Any] = []
    number = ""
    for ch in key:
        if ch.isdigit():
            number += ch
            continue
        if number:
            parts.append(int(number))
            number = ""
        parts.append(ch)
    if number:
        parts.append(int(number))
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in parts)


def _maestro_rows(results: Sequence[ControlResult]) -> list[dict[str, Any]]:
    rows = _framework_rows(results, "maestro")
    for row in rows:
        layer = row["id"].split(" ", 1)[0]
        row["layer"] = f"{layer} {MAESTRO[layer]}" if layer in MAESTRO else "cross-layer"
    return rows


def _audit_integrity(
    integrity: IntegrityLike,
    start: float,
    end: float,
    last_in_period: AuditRecord | None,
    covered_seq: int,
    t: Thresholds,
) -> ControlResult:
    result = ControlResult(BY_ID["CP-AUD-02"])
    result.checked = integrity.records
    times = sorted(x for x in integrity.checkpoint_times if start <= x < end)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    result.measured = {
        "records_verified": integrity.records,
        "checkpoints_verified": integrity.checkpoints,
        "checkpoints_in_period": len(times),
        "max_checkpoint_gap_s": round(max(gaps), 3) if gaps else None,
    }
    if not integrity.ok:
        result.violations = 1
        result.violating_seqs = [integrity.first_bad_seq or 0]
        result.notes.append(str(integrity.problem))
        result.status = "fail"
        return result
    if last_in_period is not None and last_in_period.seq > covered_seq:
        uncovered_for = end - last_in_period.ts
        if uncovered_for > 2 * t.checkpoint_interval:
            result.violations = 1
            result.violating_seqs = [last_in_period.seq]
            result.notes.append(
                f"records up to seq {last_in_period.seq} are not covered by a signed checkpoint"
            )
            result.status = "fail"
            return result
        result.notes.append("the newest records are not yet under a checkpoint (within interval)")
    result.status = "pass" if integrity.records else "no_data"
    return result


def build_report(
    records: Iterable[AuditRecord],
    verify: Verifier,
    *,
    start: float,
    end: float,
    generated_at: float,
    thresholds: Thresholds | None = None,
    total: int | None = None,
    progress: Callable[[int], Any] | None = None,
    checkpoint_seqs: Sequence[int] = (),
    checkpoint_sinks: int = 0,
) -> dict[str, Any]:
    """Evaluate the catalogue over records ``start <= ts < end`` (the whole log is verified)."""
    t = thresholds or Thresholds()
    checks: list[Check] = [cls(t) for cls in CHECKS]
    retention = next(c for c in checks if isinstance(c, Retention))
    ctx = Context()
    charts = Charts(start, end)
    seen = [0]
    last_in_period: list[AuditRecord | None] = [None]
    watching = [(c, c.watches) for c in checks if c.watches]

    def feed() -> Iterator[AuditRecord]:
        for rec in records:
            seen[0] += 1
            if progress is not None and seen[0] % PROGRESS_EVERY == 0:
                progress(PROGRESS_EVERY)
            retention.note_first(rec)
            if rec.ts < end:
                in_period = rec.ts >= start
                interested = [c for c, w in watching if any(rec.type.startswith(p) for p in w)]
                for check in interested:
                    check.before(rec, ctx, in_period)
                ctx.apply(rec)
                for check in interested:
                    check.after(rec, ctx, in_period)
                if in_period:
                    charts.add(rec)
                    last_in_period[0] = rec
            yield rec

    stream = feed()
    integrity = verify(stream)
    for _ in stream:  # a broken chain stops verification, not the evaluation
        pass
    if progress is not None:
        progress(seen[0] % PROGRESS_EVERY)
    results = [c.finish(ctx, min(end, generated_at)) for c in checks]
    covered = max((s for s in checkpoint_seqs), default=0)
    results.append(_audit_integrity(integrity, start, end, last_in_period[0], covered, t))
    order = {spec_id: i for i, spec_id in enumerate(BY_ID)}
    results.sort(key=lambda r: order[r.spec.id])
    latencies: list[float] = next((c.latencies for c in checks if isinstance(c, Approvals)), [])
    counts = Counter(r.status for r in results)
    integrity_view = {
        "ok": integrity.ok,
        "records_verified": integrity.records,
        "head_hash": integrity.head_hash,
        "checkpoints_verified": integrity.checkpoints,
        "first_bad_seq": integrity.first_bad_seq,
        "problem": integrity.problem,
        "kind": integrity.kind,
        "checkpoint_sinks": checkpoint_sinks,
        "statement": (
            f"all {integrity.records} records chain from the genesis hash to "
            f"{integrity.head_hash[:16]}…, and {integrity.checkpoints} signed checkpoint(s) "
            "verify against the published JWKS and match the log"
            if integrity.ok
            else f"THE AUDIT LOG FAILS VERIFICATION at seq {integrity.first_bad_seq}: "
            f"{integrity.problem}. The results below are computed from records that cannot "
            "be trusted."
        ),
    }
    return {
        "title": "Warden controls report",
        "warden_version": warden.__version__,
        "generated_at": generated_at,
        "period": {"from": start, "to": end},
        "integrity": integrity_view,
        "summary": {
            "records_in_period": sum(charts.by_type.values()),
            "records_read": seen[0],
            "controls": {k: counts.get(k, 0) for k in ("pass", "fail", "no_data", "not_evaluable")},
            "record_types": dict(sorted(charts.by_type.items())),
        },
        "controls": [r.as_dict() for r in results],
        "frameworks": {
            "owasp_asi": {
                "source": OWASP_ASI_SOURCE,
                "rows": _framework_rows(results, "asi", OWASP_ASI),
            },
            "maestro": {"source": MAESTRO_SOURCE, "rows": _maestro_rows(results)},
            "nist_ai_rmf": {"source": AI_RMF_SOURCE, "rows": _framework_rows(results, "ai_rmf")},
            "nist_csf_2": {"source": CSF_SOURCE, "rows": _framework_rows(results, "csf")},
            "sp800_53": {"source": SP800_53_SOURCE, "rows": _framework_rows(results, "sp800_53")},
        },
        "partial": PARTIAL,
        "out_of_scope": OUT_OF_SCOPE,
        "charts": charts.as_dict(latencies),
        "thresholds": t.describe(),
        "total_records_expected": total,
    }
