"""Signals about Warden for the rest of the stack: OpenTelemetry traces (``tracing``)."""

from warden.telemetry.tracing import (
    NO_TRACING,
    TRACEPARENT,
    Tracing,
    incoming_traceparent,
    otlp_tracing,
)

__all__ = ["NO_TRACING", "TRACEPARENT", "Tracing", "incoming_traceparent", "otlp_tracing"]
