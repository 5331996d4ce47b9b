"""The gateway against a hostile or slow upstream: body cap, request deadline, cancellation,
and what operators see (warnings, /metrics). The stand-in answers everything but thread pages,
which a loopback hop in front of it replaces with 50 MB bodies or a 30 s delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from aibridge_graphql.upstream import observe
from aibridge_graphql.upstream.observe import RateLimitedLog
from tests.support.gateway_helpers import route, serve_gateway

DASHBOARD = """query Dashboard {
  sessions(first: 20) {
    totalCount
    nodes { sessionId lastPrompt initiator { username }
      threads(first: 3) { nodes { threadId model prompt } } }
  }
  models
}"""
HUGE = 50 * 1024 * 1024
CHUNK = 256 * 1024
_THREADS = re.compile(r"/sessions/[^/]+")
Mode = Literal["huge", "slow"]


@dataclass
class Hostile:
    """The hop's record of thread-page requests: started, bytes sent, cancelled by the gateway."""

    mode: Mode
    started: int = 0
    sent: int = 0
    cancelled: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    first_started: asyncio.Event = field(default_factory=asyncio.Event)


async def _huge(request: web.Request, hostile: Hostile) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"threads": [')
    chunk = b" " * CHUNK
    sent = 0
    while sent < HUGE:
        await response.write(chunk)
        sent += CHUNK
        hostile.sent += CHUNK
    await response.write(b"]}")
    return response


async def _slow(request: web.Request, hostile: Hostile) -> web.StreamResponse:
    # 30 s, unless the test ends first.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hostile.release.wait(), 30)
    return web.json_response({"message": "too late"}, status=500)


@contextlib.asynccontextmanager
async def hostile_hop(standin_url: str, mode: Mode) -> AsyncIterator[tuple[str, Hostile]]:
    hostile = Hostile(mode)

    async def forward(request: web.Request) -> web.StreamResponse:
        path = route(request.path)
        if _THREADS.fullmatch(path):
            hostile.started += 1
            hostile.first_started.set()
            try:
                return await (_huge if mode == "huge" else _slow)(request, hostile)
            except (asyncio.CancelledError, ConnectionError):
                hostile.cancelled += 1  # the gateway hung up
                raise
        headers = {k: v for k, v in request.headers.items() if k.lower() == "coder-session-token"}
        async with session.get(standin_url + request.path_qs, headers=headers) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(), content_type=answer.content_type
            )

    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    async with ClientSession() as session:
        server = TestServer(app, host="127.0.0.1")  # cancels a handler whose client hung up
        await server.start_server()
        try:
            yield str(server.make_url("")).rstrip("/"), hostile
        finally:
            hostile.release.set()
            await server.close()


def _errors(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(".".join(map(str, e["path"])), e["extensions"]) for e in body.get("errors", [])]


def _metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.fixture(autouse=True)
def fresh_warning_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observe, "UPSTREAM_WARNINGS", RateLimitedLog(observe.logger))


async def test_fifty_megabyte_thread_pages_give_partial_data(
    standin_url: str, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    cap = 1024 * 1024
    caplog.set_level(logging.INFO)
    async with (
        hostile_hop(standin_url, "huge") as (url, hostile),
        serve_gateway(url, tokens["admin"], max_upstream_body_bytes=cap) as gw,
    ):
        body = await gw.query(DASHBOARD)
        metrics = _metrics(await (await gw.http.get("/metrics")).text())
    nodes = body["data"]["sessions"]["nodes"]
    assert len(nodes) == 20
    assert body["data"]["models"], "a sibling field is untouched"
    assert all(node["threads"] is None and node["sessionId"] for node in nodes)
    errors = _errors(body)
    assert len(errors) == 20
    assert {path.rsplit(".", 1)[-1] for path, _ in errors} == {"threads"}
    assert all(
        ext == {"code": "UPSTREAM_UNAVAILABLE", "reason": "RESPONSE_TOO_LARGE", "maxBytes": cap}
        for _, ext in errors
    ), errors
    # Each page was cut off near the cap: the hop never got to send 20 x 50 MB.
    assert hostile.started == 20
    assert hostile.sent < 20 * HUGE // 4, hostile.sent
    key = (("endpoint", "/sessions/{session_id}"), ("reason", "too_large"))
    assert metrics[("aibridge_upstream_failures_total", key)] == 20
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "upstream GET /sessions/{session_id} failed: too_large (upstream body over 1048576 bytes)"
    ]


async def test_a_thirty_second_upstream_costs_the_deadline(
    standin_url: str, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    deadline = 1.5
    caplog.set_level(logging.INFO)
    loop = asyncio.get_running_loop()
    async with (
        hostile_hop(standin_url, "slow") as (url, hostile),
        serve_gateway(url, tokens["admin"], request_deadline=deadline, read_timeout=30) as gw,
    ):
        started = loop.time()
        body = await gw.query(DASHBOARD)
        elapsed = loop.time() - started
        metrics = _metrics(await (await gw.http.get("/metrics")).text())
        # What finished is there; the slow fields are null with DEADLINE_EXCEEDED.
        nodes = body["data"]["sessions"]["nodes"]
        assert len(nodes) == 20
        assert body["data"]["models"]
        assert all(node["threads"] is None for node in nodes)
        errors = _errors(body)
        assert len(errors) == 20
        assert {ext["code"] for _, ext in errors} == {"DEADLINE_EXCEEDED"}
        # The gateway hung up on every slow call (the hop's handlers were cancelled).
        for _ in range(200):
            if hostile.cancelled == hostile.started:
                break
            await asyncio.sleep(0.01)
        assert hostile.cancelled == hostile.started > 0
    assert elapsed < deadline + 1.0, elapsed
    assert metrics[("aibridge_request_deadline_exceeded_total", ())] == 1
    key = (("endpoint", "/sessions/{session_id}"), ("reason", "deadline"))
    assert metrics[("aibridge_upstream_failures_total", key)] == 20
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "upstream GET /sessions/{session_id} failed: deadline (request deadline of 1.5s passed)"
    ]
    assert tokens["admin"] not in caplog.text


async def test_a_client_that_hangs_up_cancels_the_upstream_calls(
    standin_url: str, tokens: dict[str, str]
) -> None:
    async with (
        hostile_hop(standin_url, "slow") as (url, hostile),
        serve_gateway(url, tokens["admin"], request_deadline=60, read_timeout=60) as gw,
    ):
        request = asyncio.ensure_future(gw.query(DASHBOARD))
        await asyncio.wait_for(hostile.first_started.wait(), 10)
        # The thread calls go out concurrently (bounded): wait until the first batch is in.
        for _ in range(200):
            if hostile.started >= 8:
                break
            await asyncio.sleep(0.01)
        request.cancel()  # the client goes away, closing its connection
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await request
        for _ in range(500):
            if hostile.cancelled and hostile.cancelled == hostile.started:
                break
            await asyncio.sleep(0.01)
        started, cancelled = hostile.started, hostile.cancelled
    # Without cancellation the calls would wait out the 30 s hop (and the 60 s deadline).
    assert started >= 1
    assert cancelled == started
