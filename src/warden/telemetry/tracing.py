"""OpenTelemetry traces, off unless configured, and free when off.

``Tracing`` wraps one private ``TracerProvider`` (never the process-global one, so several
Warden instances and a host application's own tracing do not mix). Off, ``span()`` hands back
one shared ``nullcontext`` and ``enabled`` is ``False``: call sites that would build attribute
dicts test ``enabled`` first, so a decision pays one attribute read. The SDK is imported only
when tracing is switched on (the ``otel`` extra).

W3C Trace Context: ``span(..., traceparent=...)`` continues the caller's trace (an invalid header
starts a new one: tracing never refuses a request); ``traceparent()`` renders the current span for
the next hop.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import Any

TRACEPARENT = "traceparent"
AttributeValue = str | bool | int | float | list[str]

_NULL: nullcontext[None] = nullcontext(None)

# The ``traceparent`` of the request a PEP is serving (the MCP proxy sets it per message); the
# SDK client forwards it to Warden when the process has no OpenTelemetry span of its own.
incoming_traceparent: ContextVar[str | None] = ContextVar("warden_traceparent", default=None)


class Tracing:
    """The tracer of one process (or one Warden instance); ``NO_TRACING`` when off."""

    def __init__(self, tracer: Any = None, provider: Any = None) -> None:
        self._tracer = tracer
        self._provider = provider
        self.enabled = tracer is not None
        if tracer is not None:  # resolved once: a span should not pay for imports
            from opentelemetry import trace
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )

            self._current_span = trace.get_current_span
            self._propagator = TraceContextTextMapPropagator()
            self._kinds = {k.name.lower(): k for k in trace.SpanKind}

    def span(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue | None] | None = None,
        *,
        traceparent: str | None = None,
        kind: str = "internal",
    ) -> AbstractContextManager[Any]:
        """A child of the current span (or of ``traceparent``); yields the span, or ``None`` off."""
        if self._tracer is None:
            return _NULL
        context = None
        if traceparent:
            context = self._propagator.extract({TRACEPARENT: traceparent})
        span: AbstractContextManager[Any] = self._tracer.start_as_current_span(
            name, context=context, kind=self._kinds[kind], attributes=_clean(attributes)
        )
        return span

    def record_span(
        self, name: str, start_ns: int, end_ns: int, attributes: Mapping[str, AttributeValue]
    ) -> None:
        """A span for work already done (the audit writer's commit, timed by the writer)."""
        if self._tracer is None:
            return
        span = self._tracer.start_span(name, start_time=start_ns, attributes=_clean(attributes))
        span.end(end_time=end_ns)

    def current(self) -> Any:
        """The current recording span, or ``None``."""
        if self._tracer is None:
            return None
        span = self._current_span()
        return span if span.is_recording() else None

    def ids(self, span: Any = None) -> dict[str, str] | None:
        """``{"trace_id", "span_id"}`` (lower-case hex) of ``span`` (default: the current one),
        for audit records."""
        span = span or self.current()
        if span is None:
            return None
        ctx = span.get_span_context()
        return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}

    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of the current span, to send to the next hop."""
        ids = self.ids()
        if ids is None:
            return None
        return f"00-{ids['trace_id']}-{ids['span_id']}-01"

    def flush(self, timeout_ms: int = 5000) -> None:
        if self._provider is not None:
            self._provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()
            self._provider = None
            self._tracer = None
            self.enabled = False


NO_TRACING = Tracing()


def otlp_tracing(
    endpoint: str,
    *,
    service_name: str = "warden",
    headers: Mapping[str, str] | None = None,
    sample_ratio: float = 1.0,
    batch: bool = True,
) -> Tracing:
    """Traces exported over OTLP/HTTP (protobuf) to ``endpoint`` (``…/v1/traces`` is appended
    unless given). Needs the ``otel`` extra."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
    except ImportError as exc:  # pragma: no cover - depends on the install
        from warden.errors import InvalidParameterError

        raise InvalidParameterError(
            "tracing needs OpenTelemetry: pip install 'warden[otel]'"
        ) from exc
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBasedTraceIdRatio(sample_ratio),
    )
    exporter = OTLPSpanExporter(endpoint=url, headers=dict(headers or {}), timeout=5)
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return Tracing(provider.get_tracer("warden"), provider)


def _clean(attributes: Mapping[str, AttributeValue | None] | None) -> Mapping[str, Any] | None:
    """OpenTelemetry refuses ``None`` values: drop them."""
    if not attributes:
        return None
    if None not in attributes.values():
        return attributes
    return {k: v for k, v in attributes.items() if v is not None}
