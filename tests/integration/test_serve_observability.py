"""`aibridge-graphql serve` as a real process: JSON logs on stderr, request ids, and spans exported
over OTLP/HTTP (the `[otel]` extra's default set-up) to a collector stand-in on loopback.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.servers import run_app_in_thread

CLI = str(Path(sys.executable).parent / "aibridge-graphql")
DEADLINE_S = 30.0
TOKEN = "serve-token"
LISTENING = re.compile(r"Gateway listening on (http://127\.0\.0\.1:\d+)/graphql")
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def upstream_app(seen: list[CIMultiDict[str]]) -> web.Application:
    """`GET /api/v2/aibridge/models` for one token, recording the headers it receives."""

    async def models(request: web.Request) -> web.Response:
        seen.append(CIMultiDict(request.headers))
        if request.headers.get("Coder-Session-Token") != TOKEN:
            return web.json_response({"message": "You are signed out."}, status=401)
        return web.json_response(["model-a", "model-b"])

    app = web.Application()
    app.router.add_get("/api/v2/aibridge/models", models)
    return app


def collector_app(exports: list[ExportTraceServiceRequest]) -> web.Application:
    """An OTLP/HTTP trace receiver: `POST /v1/traces` with a protobuf body."""

    async def traces(request: web.Request) -> web.Response:
        exports.append(ExportTraceServiceRequest.FromString(await request.read()))
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    return app


def read_lines(stream: Any, sink: queue.Queue[str | None]) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


@pytest.fixture
def servers() -> Iterator[tuple[str, list[CIMultiDict[str]], str, list[Any]]]:
    seen: list[CIMultiDict[str]] = []
    exports: list[ExportTraceServiceRequest] = []
    with (
        run_app_in_thread(lambda: upstream_app(seen)) as upstream,
        run_app_in_thread(lambda: collector_app(exports)) as collector,
    ):
        yield upstream, seen, collector, exports


def test_serve_logs_json_and_exports_spans_over_otlp(
    servers: tuple[str, list[CIMultiDict[str]], str, list[ExportTraceServiceRequest]],
) -> None:
    upstream, seen, collector, exports = servers
    env = {
        **os.environ,
        "AIBRIDGE_PORT": "0",
        "AIBRIDGE_TRACING": "true",
        "AIBRIDGE_LOG_FORMAT": "json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
        "OTEL_SERVICE_NAME": "aibridge-test",
        # The double serves only `/models`: named, its prefix is used without detection.
        "AIBRIDGE_API_BASE_PATH": "/api/v2/aibridge",
    }
    process = subprocess.Popen(
        [CLI, "serve", "--upstream", upstream],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    stdout: queue.Queue[str | None] = queue.Queue()
    stderr_lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, stdout), daemon=True).start()
    threading.Thread(target=read_lines, args=(process.stderr, stderr_lines), daemon=True).start()
    try:
        line = stdout.get(timeout=DEADLINE_S)
        match = LISTENING.search(line or "")
        assert match, f"unexpected banner {line!r}"
        response = httpx.post(
            f"{match.group(1)}/graphql",
            json={"query": "query Listed { models }"},
            headers={
                "Coder-Session-Token": TOKEN,
                "X-Request-Id": "serve-1",
                "traceparent": CALLER,
            },
            timeout=DEADLINE_S,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        # Exiting flushes the batch span processor (the SDK's atexit hook).
        process.wait(timeout=DEADLINE_S)
    assert response.json() == {"data": {"models": ["model-a", "model-b"]}}
    assert response.headers["X-Request-Id"] == "serve-1"

    spans = {
        span.name: span
        for export in exports
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    assert set(spans) == {"query Listed", "GET /models"}
    operation, call = spans["query Listed"], spans["GET /models"]
    assert operation.trace_id.hex() == call.trace_id.hex() == TRACE_ID
    assert call.parent_span_id == operation.span_id
    services = {
        attribute.value.string_value
        for export in exports
        for resource in export.resource_spans
        for attribute in resource.resource.attributes
        if attribute.key == "service.name"
    }
    assert services == {"aibridge-test"}
    [received] = seen
    assert received["traceparent"] == f"00-{TRACE_ID}-{call.span_id.hex()}-01"
    assert received["X-Request-Id"] == "serve-1"

    logged = []
    deadline = time.monotonic() + DEADLINE_S
    while (item := stderr_lines.get(timeout=max(deadline - time.monotonic(), 0.01))) is not None:
        logged.append(item)
    records = [json.loads(line) for line in logged]
    access = [record for record in records if record["logger"] == "aibridge_graphql.access"]
    assert [(a["request_id"], a["operation"], a["status"]) for a in access] == [
        ("serve-1", "Listed", 200)
    ]
    assert TOKEN not in "\n".join(logged)
