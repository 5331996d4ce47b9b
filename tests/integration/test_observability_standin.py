"""APQ, metrics, tracing and request ids in front of the real stand-in (real HTTP both sides)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from aibridge_graphql.server.app import create_app
from aibridge_graphql.server.apq import sha256_hex
from aibridge_graphql.server.observability import Observability
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient

DASHBOARD = """
query Dashboard {
  sessions(first: 5) {
    edges { node { id threads(first: 2) { edges { node { id prompt } } } } }
  }
}
"""


class RecordingTransport(httpx.AsyncBaseTransport):
    """Real HTTP to the stand-in, recording the headers of every request sent."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.headers: list[httpx.Headers] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers.copy())
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Observed:
    http: TestClient[web.Request, web.Application]
    transport: RecordingTransport
    exporter: InMemorySpanExporter

    async def post(self, body: dict[str, Any], token: str) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json=body, headers={"Coder-Session-Token": token}
        )
        assert response.status == 200
        result: dict[str, Any] = await response.json()
        return result

    async def get(self, params: dict[str, Any], token: str) -> dict[str, Any]:
        encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        response = await self.http.get(
            "/graphql", params=encoded, headers={"Coder-Session-Token": token, "Accept": "*/*"}
        )
        assert response.status == 200
        result: dict[str, Any] = await response.json()
        return result

    async def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = await (await self.http.get("/metrics")).text()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@contextlib.asynccontextmanager
async def observed(standin_url: str) -> AsyncIterator[Observed]:
    settings = Settings(upstream_url=standin_url, tracing=True)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    transport = RecordingTransport()
    client = UpstreamClient(settings, transport=transport)
    app = create_app(
        settings,
        client=client,
        observability=Observability(settings, tracer_provider=provider),
    )
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as http:
            yield Observed(http, transport, exporter)
    finally:
        await client.aclose()


def traceparent(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


async def test_a_persisted_dashboard_is_observed_end_to_end(
    standin_url: str, tokens: dict[str, str]
) -> None:
    admin = tokens["admin"]
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(DASHBOARD)}}
    async with observed(standin_url) as gw:
        plain = await gw.post({"query": DASHBOARD}, admin)
        miss = await gw.get({"extensions": extensions}, admin)
        registered = await gw.post({"query": DASHBOARD, "extensions": extensions}, admin)
        gw.exporter.clear()
        sent_before = len(gw.transport.headers)
        hit = await gw.get({"extensions": extensions}, admin)
        samples = await gw.samples()
    assert "errors" not in plain
    sessions = plain["data"]["sessions"]["edges"]
    assert len(sessions) == 5
    assert miss["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert registered == hit == plain

    # Metrics: three runs of the dashboard, each one sessions page and five threads pages.
    ops = ("aibridge_graphql_operation_duration_seconds_count", {"operation": "Dashboard"})
    assert samples[(ops[0], frozenset({**ops[1], "outcome": "ok"}.items()))] == 3
    upstream = "aibridge_upstream_request_duration_seconds_count"
    by_endpoint = {
        dict(labels)["endpoint"]: value
        for (name, labels), value in samples.items()
        if name == upstream and dict(labels)["status"] == "200"
    }
    assert by_endpoint == {"/sessions": 3, "/sessions/{session_id}": 15}
    threads_batches = ("aibridge_loader_batch_size_sum", frozenset({("loader", "session_threads")}))
    assert samples[threads_batches] == 15

    # Tracing: the hit's operation span parents its six upstream calls, and what the stand-in
    # received is each call span's own context, with the request id.
    spans = gw.exporter.get_finished_spans()
    [operation] = [span for span in spans if span.kind is SpanKind.SERVER]
    calls = [span for span in spans if span.kind is SpanKind.CLIENT]
    assert len(calls) == 6
    assert all(call.parent and call.parent.span_id == operation.context.span_id for call in calls)
    sent = gw.transport.headers[sent_before:]
    assert sorted(headers["traceparent"] for headers in sent) == sorted(map(traceparent, calls))
    assert len({headers["x-request-id"] for headers in sent}) == 1


async def test_upstream_refusals_are_counted_by_status(standin_url: str) -> None:
    async with observed(standin_url) as gw:
        body = await gw.post({"query": "query Models { models }"}, "not-a-token")
        samples = await gw.samples()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    refused = frozenset({("endpoint", "/models"), ("status", "401")})
    assert samples[("aibridge_upstream_request_duration_seconds_count", refused)] == 1
    failed = frozenset({("operation", "Models"), ("outcome", "UNAUTHENTICATED")})
    assert samples[("aibridge_graphql_operation_duration_seconds_count", failed)] == 1
