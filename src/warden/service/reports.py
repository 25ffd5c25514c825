"""Controls reports over the store: the one place that feeds ``evidence.report`` its inputs
(records streamed in seq order, signed checkpoints, the JWKS that verifies them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from warden.core.model import AuditRecord
from warden.core.ports import Store
from warden.errors import InvalidParameterError
from warden.evidence.controls import Thresholds
from warden.evidence.report import build_report
from warden.service.checkpoints import verify_log


def controls_report(
    store: Store,
    jwks: Mapping[str, Any],
    *,
    start: float,
    end: float,
    now: float,
    thresholds: Thresholds | None = None,
    progress: Callable[[int], Any] | None = None,
    checkpoint_sinks: int = 0,
) -> dict[str, Any]:
    if end <= start:
        raise InvalidParameterError("the report period is empty: `to` must be after `from`")
    checkpoints = list(store.iter_checkpoints())

    def verify(records: Iterable[AuditRecord]) -> Any:
        return verify_log(records, checkpoints, jwks)

    return build_report(
        store.iter_audit(batch=2000),
        verify,
        start=start,
        end=end,
        generated_at=now,
        thresholds=thresholds,
        total=store.audit_head()[0],
        progress=progress,
        checkpoint_seqs=[c.seq for c in checkpoints],
        checkpoint_sinks=checkpoint_sinks,
    )
