"""Webhook delivery: a bounded schedule of signed POSTs, retried with exponential backoff.

``submit`` only appends to an in-memory schedule (never blocks a decision). Worker threads
send each delivery with a per-attempt timeout; anything but a 2xx answer (or no answer) is
retried after ``base_delay * 2**(attempt-1)`` seconds (±20 % jitter, at most ``max_delay``)
until ``max_attempts``. Each attempt's outcome is reported to ``on_result`` (Warden audits
it). When more than ``max_pending`` deliveries wait, new ones are dropped and reported.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from warden.core.ids import new_id
from warden.webhooks.signing import sign

log = logging.getLogger("warden.webhooks")

ALL = "*"


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where to send which events. ``recipients``: human ids, ``group:<name>``, or ``*``."""

    url: str
    key: bytes = field(repr=False)
    recipients: frozenset[str] = frozenset({ALL})
    events: frozenset[str] | None = None  # None: every event type

    @property
    def name(self) -> str:
        """The URL without query or credentials: safe to log and audit."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"

    def wants(self, event_type: str, recipients: frozenset[str]) -> bool:
        if self.events is not None and event_type not in self.events:
            return False
        return ALL in self.recipients or bool(self.recipients & recipients)


@dataclass
class Delivery:
    msg_id: str
    endpoint: WebhookEndpoint
    event_type: str
    body: bytes
    attempt: int = 0
    status: int | None = None
    error: str = ""


Reporter = Callable[[Delivery, bool, bool], None]  # (delivery, ok, final)


class WebhookDispatcher:
    def __init__(
        self,
        endpoints: Iterable[WebhookEndpoint],
        *,
        max_attempts: int = 6,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        timeout: float = 5.0,
        workers: int = 2,
        max_pending: int = 10_000,
        on_result: Reporter | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self._max_attempts = max(1, max_attempts)
        self._base = base_delay
        self._max_delay = max_delay
        self._timeout = timeout
        self._workers = max(1, workers)
        self._max_pending = max_pending
        self._on_result = on_result
        self._transport = transport
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._inflight = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.dropped = 0

    # -- producer side ------------------------------------------------------------------------
    def submit(
        self, event_type: str, data: Mapping[str, Any], recipients: Iterable[str], *, ts: float
    ) -> list[str]:
        """Schedule ``event_type`` for every endpoint that wants it; returns the message ids."""
        wanted = frozenset(recipients)
        targets = [e for e in self.endpoints if e.wants(event_type, wanted)]
        if not targets:
            return []
        msg_id = new_id("msg")
        body = json.dumps(
            {
                "type": event_type,
                "timestamp": datetime.fromtimestamp(ts, tz=UTC).isoformat(),
                "data": data,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        now = time.monotonic()
        with self._cond:
            for endpoint in targets:
                delivery = Delivery(msg_id, endpoint, event_type, body)
                if len(self._heap) + self._inflight >= self._max_pending:
                    self.dropped += 1
                    delivery.error = "dropped: too many deliveries pending"
                    self._report(delivery, False, True)
                    continue
                heapq.heappush(self._heap, (now, next(self._seq), delivery))
            self._cond.notify_all()
        return [msg_id]

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads or not self.endpoints:
            return
        for i in range(self._workers):
            t = threading.Thread(target=self._run, name=f"warden-webhooks-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers; deliveries still waiting for a retry are abandoned (logged)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        if self._heap:
            log.warning("%d webhook deliveries abandoned at shutdown", len(self._heap))

    def idle(self) -> bool:
        with self._cond:
            return not self._heap and self._inflight == 0

    # -- workers ------------------------------------------------------------------------------
    def _next(self) -> Delivery | None:
        with self._cond:
            while not self._stopping:
                if self._heap:
                    due = self._heap[0][0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        _, _, delivery = heapq.heappop(self._heap)
                        self._inflight += 1
                        return delivery
                    self._cond.wait(min(wait, 1.0))
                else:
                    self._cond.wait(1.0)
            return None

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout, transport=self._transport) as http:
            while True:
                delivery = self._next()
                if delivery is None:
                    return
                try:
                    self._attempt(http, delivery)
                finally:
                    with self._cond:
                        self._inflight -= 1

    def _attempt(self, http: httpx.Client, d: Delivery) -> None:
        d.attempt += 1
        stamp = int(time.time())  # transport time: receivers compare it with their clock
        headers = {
            "content-type": "application/json",
            "user-agent": "warden-webhooks",
            "webhook-id": d.msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(d.endpoint.key, d.msg_id, stamp, d.body),
        }
        d.status, d.error = None, ""
        try:
            response = http.post(d.endpoint.url, content=d.body, headers=headers)
            d.status = response.status_code
            ok = 200 <= response.status_code < 300
            if not ok:
                d.error = f"HTTP {response.status_code}"
        except httpx.TimeoutException:
            ok, d.error = False, "timed out"
        except httpx.HTTPError as exc:
            ok, d.error = False, f"{type(exc).__name__}: {str(exc)[:200]}"
        final = ok or d.attempt >= self._max_attempts
        self._report(d, ok, final)
        if not final:
            delay = min(self._max_delay, self._base * 2 ** (d.attempt - 1))
            delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
            with self._cond:
                heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), d))
                self._cond.notify()

    def _report(self, d: Delivery, ok: bool, final: bool) -> None:
        if self._on_result is None:
            return
        try:
            self._on_result(d, ok, final)
        except Exception:
            log.exception("webhook result hook failed")
