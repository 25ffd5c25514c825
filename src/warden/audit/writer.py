"""Batched, off-hot-path audit writer with back-pressure.

The decision path only appends a draft to an in-memory deque (well under a microsecond). A
background thread drains it in batches and appends each batch to the store's hash chain in one
transaction (group commit). Nothing is dropped: a failing store is retried with backoff, and when
the backlog reaches ``max_pending`` producers wait (back-pressure) instead of losing records.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from warden.core.model import AuditDraft, AuditRecord
from warden.core.ports import Store
from warden.errors import InvalidParameterError

log = logging.getLogger("warden.audit")


class AuditWriter:
    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 2000,
        linger: float = 0.002,
        max_pending: int = 100_000,
        on_written: Callable[[Sequence[AuditRecord]], None] | None = None,
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._linger = linger
        self._max_pending = max_pending
        self._on_written = on_written
        self._pending: deque[AuditDraft] = deque()
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._lock = threading.Lock()
        self._submitted = 0
        self._written = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failures = 0
        # (start_ns, end_ns, records) of each committed batch: metrics and traces (issue 16)
        self.commit_observers: list[Callable[[int, int, int], None]] = []

    # -- producer side (hot path) -----------------------------------------------------------
    def submit(self, draft: AuditDraft) -> None:
        if len(self._pending) >= self._max_pending:
            self._wait_for_room()
        with self._lock:
            self._pending.append(draft)
            self._submitted += 1
        if self._thread is None:  # not started (tests, CLI one-shots): write synchronously
            self._drain_once()

    def _wait_for_room(self) -> None:
        self._wake.set()
        with self._drained:
            while len(self._pending) >= self._max_pending and not self._stopping:
                self._drained.wait(0.05)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="warden-audit", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is in the store."""
        target = self._submitted
        deadline = time.monotonic() + timeout
        if self._thread is None:
            self._drain_once()
        self._wake.set()
        with self._drained:
            while self._written < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._drained.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def backlog(self) -> int:
        return len(self._pending)

    # -- consumer side ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping or self._pending:
            if not self._pending:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            if len(self._pending) < self._batch_size and self._linger:
                time.sleep(self._linger)  # let a group form: one commit for many records
            self._drain_once()

    def _drain_once(self) -> None:
        batch: list[AuditDraft] = []
        while self._pending and len(batch) < self._batch_size:
            batch.append(self._pending.popleft())
        if not batch:
            return
        delay = 0.05
        while True:
            try:
                started = time.perf_counter_ns()
                records = self._store.append_audit(batch)
                self._observe(started, len(batch))
                break
            except InvalidParameterError:
                # a record the store cannot hold (not an outage): retrying would stall every
                # producer behind it, so keep the record with its data replaced by a marker
                repaired = [_storable(d) for d in batch]
                if repaired != batch:
                    batch = repaired
                    continue
                self.failures += 1
                log.exception("audit append refused a batch of %d; retrying", len(batch))
                if self._thread is None:
                    self._pending.extendleft(reversed(batch))
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:  # any store failure: retry, never drop
                self.failures += 1
                log.exception("audit append failed; retrying batch of %d", len(batch))
                if self._thread is None:
                    # synchronous mode: put the batch back in order and surface the failure
                    self._pending.extendleft(reversed(batch))
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        with self._drained:
            self._written += len(batch)
            self._drained.notify_all()
        if self._on_written is not None:
            try:
                self._on_written(records)
            except Exception:
                log.exception("audit on_written hook failed")

    def _observe(self, started: int, count: int) -> None:
        if not self.commit_observers:
            return
        # perf_counter for the duration, wall clock for where it sits on a trace
        ended = time.time_ns()
        start = ended - (time.perf_counter_ns() - started)
        for observer in self.commit_observers:
            try:
                observer(start, ended, count)
            except Exception:
                log.exception("audit commit observer failed")


def _storable(draft: AuditDraft) -> AuditDraft:
    """The draft as is if the store can hold it, else with its data replaced by a marker.

    Nothing is dropped: the record keeps its type, actor, agent, task and decision, and says that
    (and why) its data could not be stored. Mirrors the store's encoding (sorted-key JSON).
    """
    finite = math.isfinite(draft.ts)
    try:
        json.dumps(draft.data, sort_keys=True)
        if finite:
            return draft
        problem = "non-finite timestamp"
    except (TypeError, ValueError) as exc:
        problem = str(exc)[:200]
    log.error("audit %s record could not be stored as is: %s", draft.type, problem)
    return AuditDraft(
        ts=draft.ts if finite else 0.0,
        type=draft.type,
        actor=draft.actor,
        data={"unstorable_data": problem},
        agent=draft.agent,
        task_id=draft.task_id,
        decision_id=draft.decision_id,
    )
