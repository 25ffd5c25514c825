"""Batched audit writer: group commit, durable before acknowledged, bounded (ADR 0090).

Producers append a draft to an in-memory deque and get a ``Ticket``; a background thread drains
the deque in batches and appends each batch to the store's hash chain in one transaction (group
commit), then moves the chain head outside the database (``HeadFile``) before it wakes the
batch's waiters. In ``durable`` mode a caller waits on its ticket (``wait`` in a thread,
``wait_async`` on an event loop) and answers only once its record is committed: many waiters per
commit, so latency rises by about one commit and throughput stays. In ``async`` mode (an
explicitly configured embedded PDP) nobody waits: what is in memory is the loss window.

The bound: when the oldest uncommitted record has waited longer than ``max_wait`` the writer is
*unavailable*: waiters and new submissions get ``AuditUnavailableError`` (callers refuse the
request), an ERROR line and the metrics say so, and the backlog retried in the background cannot
grow past what was queued before. The first commit that brings the oldest record back within the
bound makes it available again. A failing store is retried with backoff, never dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from warden.audit.head import HeadFile
from warden.core.model import AuditDraft, AuditRecord
from warden.core.ports import Store
from warden.errors import AuditUnavailableError, InvalidParameterError

log = logging.getLogger("warden.audit")

DURABLE = "durable"
ASYNC = "async"
DURABILITY_MODES = (DURABLE, ASYNC)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A submitted record: durable once ``n`` records (in submission order) are written."""

    n: int
    at: float  # monotonic submission time: the bound runs from here


class AuditWriter:
    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 2000,
        linger: float = 0.002,
        max_pending: int = 100_000,
        on_written: Callable[[Sequence[AuditRecord]], None] | None = None,
        durability: str = DURABLE,
        max_wait: float = 5.0,
        head: HeadFile | None = None,
        commit_observers: Sequence[Callable[[int, int, int], None]] = (),
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise InvalidParameterError("`audit.durability` must be durable or async")
        self._store = store
        self._batch_size = batch_size
        self._linger = linger
        self._max_pending = max_pending
        self._on_written = on_written
        self.durable = durability == DURABLE
        self.max_wait = max_wait
        self.head = head
        self._pending: deque[tuple[AuditDraft, float]] = deque()
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._lock = threading.Lock()
        self._submitted = 0
        self._written = 0
        self._inflight_since: float | None = None  # oldest submission time in the batch at hand
        self._async_waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._unavailable: str | None = None  # why, while unavailable
        self.failures = 0
        self.unwritten = 0  # records still in memory when close() gave up on them
        # (start_ns, end_ns, records) of each committed batch: metrics and traces (issue 16)
        self.commit_observers: list[Callable[[int, int, int], None]] = list(commit_observers)

    # -- producer side (hot path) -----------------------------------------------------------
    def submit(self, draft: AuditDraft) -> Ticket:
        """Queue ``draft``; AuditUnavailableError (nothing queued) while the sink is failing."""
        self._refuse_if_unavailable()
        if len(self._pending) >= self._max_pending:
            self._wait_for_room()
        now = time.monotonic()
        with self._lock:
            self._pending.append((draft, now))
            self._submitted += 1
            ticket = Ticket(self._submitted, now)
        if self._thread is None:  # not started (tests, CLI one-shots): write synchronously
            self._drain_once()
        return ticket

    def wait(self, ticket: Ticket) -> None:
        """Return once ``ticket``'s record is durable (at once in async mode)."""
        if not self.durable or self._written >= ticket.n:
            return
        self._wake.set()
        deadline = ticket.at + self.max_wait
        with self._drained:
            while self._written < ticket.n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._drained.wait(min(left, 0.25))
            else:
                return
        self._stalled()
        raise AuditUnavailableError("the audit record could not be made durable in time")

    async def wait_async(self, tickets: Iterable[Ticket]) -> None:
        """``wait`` for an event loop: suspends the caller, never blocks the loop."""
        tickets = list(tickets)
        if not self.durable or not tickets:
            return
        n = max(t.n for t in tickets)
        if self._written >= n:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._drained:
            if self._written >= n:
                return
            self._async_waiters.append((n, loop, future))
        self._wake.set()
        left = min(t.at for t in tickets) + self.max_wait - time.monotonic()
        try:
            await asyncio.wait_for(future, max(left, 0.0))
        except TimeoutError:
            self._stalled()
            raise AuditUnavailableError(
                "the audit record could not be made durable in time"
            ) from None

    def committed(self, records: Sequence[AuditRecord]) -> None:
        """Records a store transaction appended itself (issuance beside its task rows): move
        the head past them and tell the listeners, as for a batch of ours."""
        if not records:
            return
        if self.head is not None:
            try:
                self.head.advance(records[-1].seq, records[-1].hash)
            except OSError as exc:
                self.failures += 1
                self._enter_unavailable(f"the audit head file cannot be written: {exc}")
                raise AuditUnavailableError("the audit head could not be recorded") from exc
        self._notify(records)

    def _wait_for_room(self) -> None:
        self._wake.set()
        deadline = time.monotonic() + self.max_wait
        with self._drained:
            while len(self._pending) >= self._max_pending and not self._stopping:
                if time.monotonic() >= deadline:
                    self._stalled()
                    raise AuditUnavailableError("the audit backlog is full")
                self._drained.wait(0.05)

    # -- availability -------------------------------------------------------------------------
    @property
    def available(self) -> bool:
        self._check_bound()
        return self._unavailable is None

    @property
    def unavailable_reason(self) -> str | None:
        self._check_bound()
        return self._unavailable

    def ensure_available(self) -> None:
        """AuditUnavailableError while unavailable: for callers that append records themselves."""
        self._refuse_if_unavailable()

    def _refuse_if_unavailable(self) -> None:
        if self._unavailable is not None or self._check_bound():
            raise AuditUnavailableError("audit records cannot be written at the moment")

    def _oldest_uncommitted(self) -> float | None:
        since = self._inflight_since
        if since is not None:
            return since
        try:
            return self._pending[0][1]
        except IndexError:
            return None

    def _check_bound(self) -> bool:
        """True (and unavailable) when the oldest uncommitted record is past the bound."""
        oldest = self._oldest_uncommitted()
        if oldest is not None and time.monotonic() - oldest > self.max_wait:
            self._stalled()
            return True
        return False

    def _stalled(self) -> None:
        self._enter_unavailable(
            f"audit records were not durable within {self.max_wait:g}s ({self.backlog} waiting)"
        )

    def _enter_unavailable(self, reason: str) -> None:
        with self._lock:
            if self._unavailable is not None:
                return
            self._unavailable = reason
        log.error("audit unavailable: %s; refusing decisions and changes until it recovers", reason)

    def _recovered(self) -> None:
        if self._unavailable is None:
            return
        oldest = self._oldest_uncommitted()
        if oldest is not None and time.monotonic() - oldest > self.max_wait:
            return  # still behind: the backlog from the outage is draining
        with self._lock:
            self._unavailable = None
        log.warning("audit available again: records are durable within %gs", self.max_wait)

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

    def close(self, timeout: float = 10.0) -> int:
        """Write what is queued (up to ``timeout``, less once unavailable) and stop; returns,
        logs and keeps in ``unwritten`` how many records could not be written (0: clean)."""
        deadline = time.monotonic() + timeout
        try:
            while not self.flush(0.1) and time.monotonic() < deadline and self.available:
                pass
        except Exception:  # synchronous mode with a failing store: counted below
            log.exception("audit flush at shutdown failed")
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(2.5)  # at most one backoff sleep and one store call
            self._thread = None
        self.unwritten = self._submitted - self._written
        if self.unwritten:
            log.error(
                "audit: %d record(s) could not be written before shutdown and are lost (%s)",
                self.unwritten,
                self._unavailable or "the audit store did not accept them in time",
            )
        return self.unwritten

    @property
    def backlog(self) -> int:
        return self._submitted - self._written

    # -- consumer side ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            if not self._pending:
                if self._unavailable is not None:
                    self._retry_head()
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            if len(self._pending) < self._batch_size and self._linger:
                time.sleep(self._linger)  # let a group form: one commit for many records
            try:
                self._drain_once()
            except _StoppedError:
                return

    def _drain_once(self) -> None:
        with self._lock:
            if not self._pending:
                return
            self._inflight_since = self._pending[0][1]
            batch: list[AuditDraft] = []
            while self._pending and len(batch) < self._batch_size:
                batch.append(self._pending.popleft()[0])
        records = self._append(batch)
        try:
            self._advance_head(records)  # before any waiter is woken (ADR 0091)
        finally:  # the records are in the store either way: count them exactly once
            with self._drained:
                self._inflight_since = None
                self._written += len(batch)
                self._drained.notify_all()
                self._wake_async()
            self._recovered()
            self._notify(records)

    def _append(self, batch: list[AuditDraft]) -> list[AuditRecord]:
        delay = 0.05
        while True:
            try:
                started = time.perf_counter_ns()
                records = self._store.append_audit(batch)
                self._observe(started, len(batch))
                return records
            except InvalidParameterError:
                # a record the store cannot hold (not an outage): retrying would stall every
                # producer behind it, so keep the record with its data replaced by a marker
                repaired = [_storable(d) for d in batch]
                if repaired != batch:
                    batch[:] = repaired
                    continue
                self._failed("audit append refused a batch of %d; retrying", batch)
            except Exception:  # any store failure: retry, never drop
                self._failed("audit append failed; retrying batch of %d", batch)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _failed(self, message: str, batch: list[AuditDraft]) -> None:
        """Inside the handler of a failed append: count, log, check the bound, and in
        synchronous mode (or when stopping) hand the batch back, in order, and give up."""
        self.failures += 1
        log.exception(message, len(batch))
        self._check_bound()
        if self._thread is not None and not self._stopping:
            return
        now = time.monotonic()
        with self._lock:
            self._pending.extendleft((d, now) for d in reversed(batch))
            self._inflight_since = None
        if self._stopping:
            raise _StoppedError()
        raise  # synchronous mode: the caller sees the store's error

    def _advance_head(self, records: Sequence[AuditRecord]) -> None:
        if self.head is None or not records:
            return
        delay = 0.05
        while True:
            try:
                self.head.advance(records[-1].seq, records[-1].hash)
                return
            except OSError as exc:  # committed, but not acknowledgeable yet: retry the head
                self.failures += 1
                log.error("audit head file %s cannot be written: %s", self.head.path, exc)
                self._check_bound()
                if self._thread is None:
                    raise AuditUnavailableError("the audit head could not be recorded") from exc
                if self._stopping:
                    raise _StoppedError() from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _retry_head(self) -> None:
        """Idle while unavailable: rewrite a head that failed to land, then recover."""
        if self.head is not None:
            try:
                self.head.retry()
            except OSError:
                return
        self._recovered()

    def _wake_async(self) -> None:
        """Under ``_drained``: hand each loop its now-durable waiters (one call per loop)."""
        if not self._async_waiters:
            return
        done: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        keep = []
        for n, loop, future in self._async_waiters:
            if n <= self._written:
                done.setdefault(loop, []).append(future)
            else:
                keep.append((n, loop, future))
        self._async_waiters = keep
        for loop, futures in done.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass

    def _notify(self, records: Sequence[AuditRecord]) -> None:
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


class _StoppedError(Exception):
    """close() was called while the store kept failing: stop retrying."""


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


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
