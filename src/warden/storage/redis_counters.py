"""Shared counters on Redis (ADR 0094): the only module that imports ``redis``.

Each counter is one hash ``<prefix>:{<agent>}:<name>`` mapping bucket index → amount, expiring
one window after its last write; the deny streak is ``<prefix>:{<agent>}:streak``. The braces
are a Redis Cluster hash tag: one agent's keys share a slot, so one script can touch them all.
Every operation is one Lua script (atomic: read the live buckets, refuse or add, prune expired
buckets, update the streak) — ``reserve`` runs it synchronously, ``submit`` queues it for a
flusher thread that sends whatever is queued as one pipeline.

Failure: ``reserve`` raises ``CountersUnavailableError`` after at most one reconnect attempt
within ``timeout`` per try (the caller refuses); a failed flush is logged and dropped (a lost
refund over-counts, which errs towards refusing; a lost streak update is logged). ``problem``
pings, so ``/readyz`` recovers by itself when Redis returns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from warden.core.counters import Claim, Reserved, StreakOp
from warden.errors import CountersUnavailableError

log = logging.getLogger("warden.counters")

STREAK_TTL_MS = 86_400_000  # a deny streak nobody extends for a day is forgotten
MAX_BATCH = 256

# KEYS: the counter hashes, then the streak key. ARGV: count, streak op, streak ttl, then five
# per counter: bucket, buckets, ttl ms, amount, limit ('' = none).
_SCRIPT = """
local n = tonumber(ARGV[1])
local totals = {}
local refused = 0
for i = 1, n do
  local at = 3 + (i - 1) * 5
  local bucket = tonumber(ARGV[at + 1])
  local oldest = bucket - tonumber(ARGV[at + 2])
  local values = redis.call('HGETALL', KEYS[i])
  local total = 0
  for j = 1, #values, 2 do
    if tonumber(values[j]) <= oldest then
      redis.call('HDEL', KEYS[i], values[j])
    else
      total = total + tonumber(values[j + 1])
    end
  end
  totals[i] = total
  local limit = ARGV[at + 5]
  if refused == 0 and limit ~= '' and total + tonumber(ARGV[at + 4]) > tonumber(limit) then
    refused = i
  end
end
for i = 1, n do
  local at = 3 + (i - 1) * 5
  local amount = tonumber(ARGV[at + 4])
  if amount ~= 0 and (refused == 0 or ARGV[at + 5] == '') then
    redis.call('HINCRBYFLOAT', KEYS[i], ARGV[at + 1], ARGV[at + 4])
    redis.call('PEXPIRE', KEYS[i], ARGV[at + 3])
    totals[i] = totals[i] + amount
  end
end
local streak = 0
local op = ARGV[2]
local key = KEYS[n + 1]
if op == 'incr' then
  streak = redis.call('INCR', key)
  redis.call('PEXPIRE', key, ARGV[3])
elseif op == 'reset' then
  redis.call('DEL', key)
elseif op == 'get' then
  streak = tonumber(redis.call('GET', key) or '0')
end
local out = {tostring(refused - 1), tostring(streak)}
for i = 1, n do
  out[#out + 1] = tostring(totals[i])
end
return out
"""


class RedisCounters:
    def __init__(self, url: str, *, prefix: str = "warden", timeout: float = 0.25) -> None:
        self._prefix = prefix
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # one quick retry covers a connection Redis closed while idle; more would only
            # hold a decision longer before it is refused
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        self._script = self._redis.register_script(_SCRIPT)
        self._queue: queue.SimpleQueue[tuple[list[str], list[Any], Any, Any] | None] = (
            queue.SimpleQueue()
        )
        self._failed_at: float | None = None
        self._last_error = ""
        self._dropped = 0
        self._thread = threading.Thread(
            target=self._flush_loop, name="warden-counters", daemon=True
        )
        self._thread.start()

    # -- the operations ------------------------------------------------------------------------
    def _call(
        self, scope: str, claims: Sequence[Claim], now: float, streak: StreakOp
    ) -> tuple[list[str], list[Any], tuple[int, ...]]:
        base = f"{self._prefix}:{{{scope}}}:"
        keys = [base + c.name for c in claims]
        keys.append(base + "streak")
        args: list[Any] = [len(claims), streak, STREAK_TTL_MS]
        buckets = []
        for c in claims:
            width = max(c.window, 1e-6) / max(1, c.buckets)
            bucket = c.bucket if c.bucket is not None else int(now // width)
            buckets.append(bucket)
            ttl_ms = int((c.window + width) * 1000) + 1
            limit = "" if c.limit is None else repr(float(c.limit))
            args += [bucket, max(1, c.buckets), ttl_ms, repr(float(c.amount)), limit]
        return keys, args, tuple(buckets)

    @staticmethod
    def _result(raw: Any, buckets: tuple[int, ...]) -> Reserved:
        values = [v.decode() if isinstance(v, bytes) else str(v) for v in raw]
        return Reserved(
            refused=int(values[0]),
            streak=int(float(values[1])),
            totals=tuple(float(v) for v in values[2:]),
            buckets=buckets,
        )

    def reserve(
        self, scope: str, claims: Sequence[Claim], now: float, streak: StreakOp = "get"
    ) -> Reserved:
        keys, args, buckets = self._call(scope, claims, now, streak)
        try:
            raw = self._script(keys=keys, args=args)
        except redis.RedisError as exc:
            self._failed(exc)
            raise CountersUnavailableError(
                f"the shared counters did not answer: {type(exc).__name__}"
            ) from exc
        self._failed_at = None
        return self._result(raw, buckets)

    def submit(
        self,
        scope: str,
        claims: Sequence[Claim],
        now: float,
        streak: StreakOp = "none",
        then: Callable[[Reserved], None] | None = None,
    ) -> None:
        keys, args, buckets = self._call(scope, claims, now, streak)
        self._queue.put((keys, args, buckets, then))

    # -- health --------------------------------------------------------------------------------
    def _failed(self, exc: BaseException) -> None:
        if self._failed_at is None:
            log.error("shared counters unavailable: %s: %s", type(exc).__name__, exc)
        self._failed_at = time.monotonic()
        self._last_error = type(exc).__name__

    def problem(self) -> str | None:
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            self._failed(exc)
            return f"counters_unavailable: {type(exc).__name__}"
        if self._failed_at is not None:
            log.info("shared counters answer again")
        self._failed_at = None
        return None

    @property
    def dropped(self) -> int:
        """Queued updates lost to a failed flush (logged)."""
        return self._dropped

    # -- the flusher ---------------------------------------------------------------------------
    def _flush_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._flush(batch)
                    return
                batch.append(nxt)
            self._flush(batch)

    def _flush(self, batch: list[tuple[list[str], list[Any], Any, Any]]) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for keys, args, _, _ in batch:
                self._script(keys=keys, args=args, client=pipe)
            results = pipe.execute()
        except redis.RedisError as exc:
            self._failed(exc)
            self._dropped += len(batch)
            log.warning("dropped %d shared counter updates: %s", len(batch), type(exc).__name__)
            return
        self._failed_at = None
        for (_, _, buckets, then), raw in zip(batch, results, strict=True):
            if then is not None:
                try:
                    then(self._result(raw, buckets))
                except Exception:  # a finding that could not be raised must not stop the flusher
                    log.exception("handling a shared counter update failed")

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until what was submitted so far is flushed (shutdown); False on timeout."""
        done = threading.Event()
        self.submit("_", [], time.time(), "none", lambda _: done.set())  # a no-op marker
        return done.wait(timeout)

    def close(self) -> None:
        self.drain(1.0)
        self._queue.put(None)
        self._thread.join(5.0)
        self._redis.close()
