"""Audit export: records as OCSF 1.8.0 events or plain JSON lines, batch or continuous.

Batch: ``warden audit export`` / ``GET /v1/audit/export`` stream a range. Continuous: the
composition root calls ``ExportService.tick()`` every ``export_interval``; each configured sink
(file or HTTP endpoint) is drained from its own position, so a sink that was down catches up
without losing or repeating records (see ``service.sinks``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from warden.core.model import AuditRecord
from warden.core.ports import Store
from warden.errors import InvalidParameterError, WardenError
from warden.ocsf import to_ocsf
from warden.service.sinks import Exporter, Sink

log = logging.getLogger("warden.export")


def record_dict(record: AuditRecord) -> dict[str, Any]:
    return asdict(record)


def _line(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


ENCODERS: dict[str, Callable[[AuditRecord], str]] = {
    "ocsf": lambda r: _line(to_ocsf(r)),
    "jsonl": lambda r: _line(record_dict(r)),
}


def encoder(fmt: str) -> Callable[[AuditRecord], str]:
    try:
        return ENCODERS[fmt]
    except KeyError:
        raise InvalidParameterError(f"unknown export format `{fmt}`: use ocsf or jsonl") from None


def audit_exporter(
    store: Store, sink: Sink, fmt: str, *, until_seq: int | None = None, batch: int = 500
) -> Exporter[AuditRecord]:
    encode = encoder(fmt)

    def fetch(after: int, limit: int) -> Sequence[AuditRecord]:
        page = store.list_audit(after_seq=after, limit=limit)
        if until_seq is not None:
            page = [r for r in page if r.seq <= until_seq]
        return page

    return Exporter(sink=sink, fetch=fetch, seq_of=lambda r: r.seq, encode=encode, batch=batch)


class ExportService:
    def __init__(self, store: Store, sinks: Sequence[tuple[Sink, str]] = ()) -> None:
        self._store = store
        self.sinks = list(sinks)

    def tick(self) -> int:
        sent = 0
        for sink, fmt in self.sinks:
            try:
                sent += audit_exporter(self._store, sink, fmt).drain()
            except WardenError as exc:  # the sink is down: resumed from its position next tick
                log.warning("audit export to %s failed: %s", sink.name, exc.message)
        return sent
