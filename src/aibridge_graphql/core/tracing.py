"""OpenTelemetry tracing (the optional `[otel]` extra), on when `AIBRIDGE_TRACING=true`.

A SERVER span per GraphQL operation (continuing the caller's W3C trace when it sends
`traceparent`) and a CLIENT child span per upstream attempt, whose context goes upstream as
`traceparent` (always W3C Trace Context, whatever global propagator is configured). Only this
module imports `opentelemetry`; `observability.load_tracing` imports it only when tracing is on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from aibridge_graphql.upstream.observe import Attempt

TRACER_NAME = "aibridge_graphql"
SERVICE_NAME = "aibridge-graphql"
TRACE_HEADERS = ("traceparent", "tracestate")


class Tracing:
    """Starts the gateway's spans with one tracer; W3C trace context in and out."""

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer(TRACER_NAME)
        self._propagator = TraceContextTextMapPropagator()

    @contextmanager
    def operation(self, incoming: Mapping[str, str], request_id: str) -> Iterator[Span]:
        """The current span for one GraphQL operation, child of the caller's trace if any."""
        parent = self._propagator.extract(dict(incoming))
        with self._tracer.start_as_current_span(
            "graphql.operation",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"aibridge.request_id": request_id},
        ) as span:
            yield span

    @staticmethod
    def finish_operation(
        span: Span, name: str | None, operation_type: str | None, codes: list[str]
    ) -> None:
        """Name the span as the semantic conventions say and mark it failed on errors."""
        if operation_type:
            span.update_name(f"{operation_type} {name}" if name else operation_type)
            span.set_attribute("graphql.operation.type", operation_type)
        if name:
            span.set_attribute("graphql.operation.name", name)
        if codes:
            span.set_attribute("aibridge.error_codes", codes)
            span.set_status(Status(StatusCode.ERROR, codes[0]))

    @contextmanager
    def upstream_call(self, endpoint: str, attempt: Attempt) -> Iterator[None]:
        """A CLIENT span around one upstream attempt; its context replaces any forwarded one."""
        method = attempt.method
        attributes: dict[str, Any] = {"http.request.method": method, "url.template": endpoint}
        with self._tracer.start_as_current_span(
            f"{method} {endpoint}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            for name in TRACE_HEADERS:
                attempt.headers.pop(name, None)
            self._propagator.inject(attempt.headers)
            try:
                yield
            finally:
                if attempt.status is not None:
                    span.set_attribute("http.response.status_code", attempt.status)
                    if attempt.status >= 400:
                        span.set_status(Status(StatusCode.ERROR, f"HTTP {attempt.status}"))


def default_provider() -> TracerProvider:
    """The process's tracer provider; when none is configured, an SDK one exporting OTLP/HTTP.

    The exporter honours the standard `OTEL_EXPORTER_OTLP_*` variables (endpoint, headers) and
    `OTEL_SERVICE_NAME`; set up once per process.
    """
    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):
        return current
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": SERVICE_NAME}).merge(
        OTELResourceDetector().detect()
    )
    provider = SdkTracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer_provider()
