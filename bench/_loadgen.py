"""A small closed-loop HTTP/1.1 keep-alive load generator (asyncio protocols, uvloop if present).

Each of ``conns`` connections sends one pre-encoded request, waits for the whole response
(``Content-Length`` framing; the servers measured here always send it), records the latency and
sends the next. Responses are counted only inside the measurement window, after ``warmup``
seconds. Also reported: this process's CPU use and the server's (from /proc) over the window,
so a client-bound run is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from bench import _common as c


@dataclass(frozen=True)
class LoadResult:
    rps: float
    responses: int
    errors: int
    p50_us: float
    p99_us: float
    client_cpu: float  # fraction of one core
    server_cpu: float  # fraction of one core
    first_error: str

    def line(self, name: str) -> str:
        return (
            f"  {name:<6} {self.rps:9.0f} rps  lat p50={self.p50_us:7.0f} µs "
            f"p99={self.p99_us:7.0f} µs  errors={self.errors}  "
            f"cpu: server={self.server_cpu:.0%} client={self.client_cpu:.0%}"
        )


def encode_get(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def encode_post_json(path: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _State:
    def __init__(self) -> None:
        self.running = True
        self.counting = False
        self.responses = 0
        self.errors = 0
        self.first_error = ""
        self.latencies: list[float] = []
        self.inflight = 0


class _Conn(asyncio.Protocol):
    def __init__(self, state: _State, request: bytes) -> None:
        self.state = state
        self.request = request
        self.buf = bytearray()
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def _send(self) -> None:
        assert self.transport is not None
        self.state.inflight += 1
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        state = self.state
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                length = 0
            else:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop > 0 else len(head)])
            total = end + 4 + length
            if len(buf) < total:
                return
            ok = head[9:12] == b"200"
            if not ok and not state.first_error:
                state.first_error = bytes(buf[:total])[:300].decode("latin-1")
            del buf[:total]
            state.inflight -= 1
            if state.counting:
                state.responses += 1
                state.latencies.append(time.perf_counter() - self.sent)
                if not ok:
                    state.errors += 1
            if state.running:
                self._send()


async def _run(
    port: int, request: bytes, conns: int, warmup: float, duration: float, server_pid: int
) -> LoadResult:
    loop = asyncio.get_running_loop()
    state = _State()
    protocols: list[_Conn] = []
    for _ in range(conns):
        _, proto = await loop.create_connection(lambda: _Conn(state, request), "127.0.0.1", port)
        protocols.append(proto)
    await asyncio.sleep(warmup)
    cpu0, srv0, t0 = time.process_time(), c.proc_cpu_seconds(server_pid), time.perf_counter()
    state.counting = True
    await asyncio.sleep(duration)
    state.counting = False
    cpu1, srv1, t1 = time.process_time(), c.proc_cpu_seconds(server_pid), time.perf_counter()
    state.running = False
    deadline = time.perf_counter() + 5
    while state.inflight > 0 and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    for proto in protocols:
        if proto.transport is not None:
            proto.transport.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(p.closed for p in protocols)), 5)
    wall = t1 - t0
    lat = [x * 1e6 for x in state.latencies]
    return LoadResult(
        rps=state.responses / wall,
        responses=state.responses,
        errors=state.errors,
        p50_us=c.percentile(lat, 50),
        p99_us=c.percentile(lat, 99),
        client_cpu=(cpu1 - cpu0) / wall,
        server_cpu=(srv1 - srv0) / wall,
        first_error=state.first_error,
    )


def run_load(
    port: int,
    request: bytes,
    *,
    conns: int,
    warmup: float,
    duration: float,
    server_pid: int,
) -> LoadResult:
    coro = _run(port, request, conns, warmup, duration, server_pid)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def alternate_rounds(
    loads: dict[str, tuple[int, bytes, int]],
    *,
    rounds: int,
    warmup: float,
    duration: float,
    conns: int,
    client_cpu: int,
) -> dict[str, list[LoadResult]]:
    """Load each server (name -> (port, request, server pid)) in turn, ``rounds`` times, the
    order reversed every other round, with this process pinned to ``client_cpu`` (if ≥ 0)."""
    import os

    results: dict[str, list[LoadResult]] = {name: [] for name in loads}
    previous = os.sched_getaffinity(0)
    if client_cpu >= 0:
        os.sched_setaffinity(0, {client_cpu})
    try:
        for i in range(rounds):
            for name in list(loads) if i % 2 == 0 else list(reversed(loads)):
                port, request, pid = loads[name]
                results[name].append(
                    run_load(
                        port, request, conns=conns, warmup=warmup, duration=duration, server_pid=pid
                    )
                )
    finally:
        os.sched_setaffinity(0, previous)
    return results


def per_cpu_second(runs: list[LoadResult]) -> float:
    """Median over rounds of responses per second of server CPU (utime + stime, all threads)."""
    import math
    import statistics

    values = [x.rps / x.server_cpu for x in runs if x.server_cpu > 0]
    return statistics.median(values) if values else math.nan
