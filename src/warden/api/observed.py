"""One decision as the HTTP edge runs it: timed for the latency histogram and, with tracing on,
inside its own ``warden.decision`` span (the auditor labels that span with the decision)."""

from __future__ import annotations

import time

from warden.api.metrics import Metrics
from warden.authz.authzen import EvaluationInput
from warden.bootstrap import Warden
from warden.service.decisions import Outcome


def decide(
    w: Warden, metrics: Metrics, ev: EvaluationInput, rid: str | None, endpoint: str
) -> Outcome:
    started = time.perf_counter()
    if w.tracing.enabled:
        with w.tracing.span("warden.decision", {"warden.endpoint": endpoint}):
            out = w.decisions.evaluate(ev, request_id=rid)
    else:
        out = w.decisions.evaluate(ev, request_id=rid)
    metrics.decided(endpoint, out.allowed, time.perf_counter() - started)
    return out
