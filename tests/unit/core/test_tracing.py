"""OpenTelemetry: a span per operation, a child per upstream call, `traceparent` sent upstream."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from aibridge_graphql.core.tracing import Tracing
from aibridge_graphql.server.observability import load_tracing
from aibridge_graphql.upstream.observe import Attempt
from tests.support.gateway_fakes import populated
from tests.support.observability import DASHBOARD, observed_gateway, settings

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def ctx(span: ReadableSpan) -> SpanContext:
    context = span.get_span_context()
    assert context is not None
    return context


def traceparent(span: ReadableSpan) -> str:
    context = ctx(span)
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def split(spans: tuple[ReadableSpan, ...]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    servers = [span for span in spans if span.kind is SpanKind.SERVER]
    assert len(servers) == 1
    return servers[0], [span for span in spans if span.kind is SpanKind.CLIENT]


async def test_each_upstream_call_is_a_child_span_whose_context_goes_upstream(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with observed_gateway(tracing=True, tracer_provider=provider) as gw:
        status, body, _ = await gw.post({"query": DASHBOARD, "variables": {"first": 3}})
    assert status == 200
    assert "errors" not in body
    operation, calls = split(exporter.get_finished_spans())
    assert operation.name == "query Dashboard"
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.name"] == "Dashboard"
    assert operation.parent is None
    assert sorted(span.name for span in calls) == ["GET /sessions"] + 3 * [
        "GET /sessions/{session_id}"
    ]
    for call in calls:
        assert call.parent is not None
        assert call.parent.span_id == ctx(operation).span_id
        assert ctx(call).trace_id == ctx(operation).trace_id
        assert call.attributes is not None
        assert call.attributes["http.response.status_code"] == 200
    # What the upstream received is exactly the context of the span around each call.
    received = sorted(headers["traceparent"] for headers in gw.fake.headers_seen)
    assert received == sorted(traceparent(call) for call in calls)


async def test_the_callers_trace_is_continued_and_not_forwarded_verbatim(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    incoming = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    async with observed_gateway(tracing=True, tracer_provider=provider) as gw:
        await gw.post({"query": "{ models }"}, headers={"traceparent": incoming})
    operation, calls = split(exporter.get_finished_spans())
    assert f"{ctx(operation).trace_id:032x}" == CALLER_TRACE
    assert operation.parent is not None
    assert f"{operation.parent.span_id:016x}" == CALLER_SPAN
    assert [headers["traceparent"] for headers in gw.fake.headers_seen] == [traceparent(calls[0])]
    assert gw.fake.headers_seen[0]["traceparent"] != incoming


async def test_failures_mark_both_spans_as_errors(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    fake = populated()
    fake.failures["/models"] = 500
    async with observed_gateway(fake=fake, tracing=True, tracer_provider=provider) as gw:
        _, body, _ = await gw.post({"query": "query M { models }"})
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    operation, calls = split(exporter.get_finished_spans())
    assert operation.status.status_code is StatusCode.ERROR
    assert operation.status.description == "UPSTREAM_UNAVAILABLE"
    assert [call.status.status_code for call in calls] == [StatusCode.ERROR]


async def test_no_spans_and_no_traceparent_when_tracing_is_off(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with observed_gateway(tracer_provider=provider) as gw:
        await gw.post({"query": "{ models }"})
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in gw.fake.headers_seen[0]


def test_tracing_without_the_extra_installed_is_off_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A None entry in sys.modules makes the import fail as if the package were missing.
    monkeypatch.setitem(sys.modules, "aibridge_graphql.core.tracing", None)
    assert load_tracing(settings(tracing=True), None) is None
    assert "install 'aibridge-graphql[otel]'" in caplog.text


def test_tracing_without_the_exporter_installed_is_off_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # No provider given and none configured in this process: the OTLP exporter would be needed.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    assert load_tracing(settings(tracing=True), None) is None
    assert "Tracing is off" in caplog.text


def test_a_write_attempt_is_a_span_named_by_its_method(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracing = Tracing(provider)
    attempt = Attempt({}, method="PUT")
    with tracing.upstream_call("/api/v2/groups/{group}/ai/budget", attempt):
        attempt.status = 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "PUT /api/v2/groups/{group}/ai/budget"
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "PUT"
    assert "traceparent" in attempt.headers
