"""Tracing cost on the decision path (issue 16): off must be free, on is reported.

Three ways to answer the same in-process agent decision (cached credential, background loops
running), interleaved call by call:

- ``bare``: ``DecisionService.evaluate`` alone;
- ``off``: the HTTP edge's decision wrapper (``warden.api.observed.decide``: latency histogram,
  tracing check) with tracing off, as Warden runs by default;
- ``on``: the same with OpenTelemetry on, inside a server span as the trace middleware opens
  one, exporting over OTLP/HTTP (batch processor) to a loopback receiver that discards.

The figures: ``off/bare`` (the histogram and the off switch; no target beyond "about 1"),
``on/off`` (what switching tracing on costs per decision), and one bare OpenTelemetry SDK span
as the yardstick (a traced HTTP decision makes two: the server span and the decision span).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import _common as c


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def run() -> None:
    c.print_header("TRACE tracing cost on the decision path (off: zero; on: reported)")
    batches, batch, warmup = c.sizes((40, 250, 2000), (12, 200, 500))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with c.temp_dir("trace") as root:
        world = c.make_agent_world(root)
        try:
            _measure(world, server.server_address[1], batches, batch, warmup)
        finally:
            world.close()
            server.shutdown()
            server.server_close()


def _use_tracing(w: Any, tracing: Any) -> None:
    """Swap the tracer of a built Warden: its components are frozen fields (ADR 0151), so the
    bench sets it the way the dataclass itself does."""
    object.__setattr__(w, "tracing", tracing)
    w.auditor.tracing = tracing


def _measure(world: c.AgentWorld, port: int, batches: int, batch: int, warmup: int) -> None:
    from warden.api.metrics import Metrics
    from warden.api.observed import decide
    from warden.telemetry import NO_TRACING, otlp_tracing

    w = world.warden
    ev = world.evaluation()
    metrics = Metrics()
    evaluate = w.decisions.evaluate
    traced = otlp_tracing(f"http://127.0.0.1:{port}", service_name="warden-bench")

    def bare(_i: int) -> object:
        return evaluate(ev)

    def off(_i: int) -> object:
        _use_tracing(w, NO_TRACING)
        return decide(w, metrics, ev, None, "evaluation")

    def on(_i: int) -> object:
        _use_tracing(w, traced)
        with traced.span("POST", {"url.path": "/access/v1/evaluation"}, kind="server"):
            return decide(w, metrics, ev, None, "evaluation")

    def span_only(_i: int) -> object:  # calibration: what one OpenTelemetry SDK span costs here
        with traced.span("calibration"):
            return None

    samples = c.interleave(
        [
            ("bare evaluate", bare),
            ("edge, tracing off", off),
            ("edge, tracing on", on),
            ("one bare OTel span", span_only),
        ],
        batches=batches,
        batch=batch,
        warmup=warmup,
    )
    _use_tracing(w, NO_TRACING)
    traced.shutdown()
    s = {name: c.summarize(v) for name, v in samples.items()}
    for name, summary in s.items():
        print(summary.line(name))
    b, f, o = s["bare evaluate"], s["edge, tracing off"], s["edge, tracing on"]
    one = s["one bare OTel span"]
    print(
        f"  tracing on adds {o.p50 - f.p50:.1f} µs p50 = {c.ratio(o.p50 - f.p50, one.p50):.1f}x "
        f"one bare OpenTelemetry SDK span ({one.p50:.1f} µs); a traced decision makes two"
    )
    print(
        f"TRACE: bare={b.p50:.1f} off={f.p50:.1f} on={o.p50:.1f} "
        f"off_ratio={c.ratio(f.p50, b.p50):.2f} on_ratio={c.ratio(o.p50, f.p50):.2f} "
        f"on_added_us={o.p50 - f.p50:.1f} otel_span_us={one.p50:.1f}"
    )
