"""Body-size cap, request deadline and failure reporting of the upstream client (real loopback)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import observe
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.deadline import Deadline
from aibridge_graphql.upstream.errors import (
    DeadlineExceeded,
    UpstreamBadRequest,
    UpstreamResponseTooLarge,
    UpstreamUnavailable,
)
from aibridge_graphql.upstream.observe import RateLimitedLog
from aibridge_graphql.upstream.requests import models_request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Handler], Awaitable[str]]
REQUEST = models_request(None, limit=5)
TOKEN = "TokenThatMustNeverBeLogged-0123456789"
CAP = 1024 * 1024
HUGE = 50 * 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_get("/api/v2/ai-gateway/models", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/"))

    yield start
    for server in servers:
        await server.close()


def settings(url: str, **overrides: float) -> Settings:
    return Settings(upstream_url=url, max_upstream_body_bytes=CAP, **overrides)  # type: ignore[arg-type]


@dataclass
class Sent:
    """What a slow 50 MB server managed to send before its client went away."""

    bytes: int = 0
    dropped: bool = False
    finished: asyncio.Event | None = None


def slow_huge_body(sent: Sent, *, declare_length: bool) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declare_length:
            response.content_length = HUGE
        await response.prepare(request)
        chunk = b" " * CHUNK
        try:
            while sent.bytes < HUGE:
                await response.write(chunk)
                sent.bytes += CHUNK
                await asyncio.sleep(0.001)  # slowly: a trickle, not one burst
        except (ConnectionError, asyncio.CancelledError):
            sent.dropped = True
            raise
        finally:
            assert sent.finished is not None
            sent.finished.set()
        return response

    return handler


async def test_body_over_the_cap_stops_reading_and_drops_the_connection(serve: Serve) -> None:
    sent = Sent(finished=asyncio.Event())
    url = await serve(slow_huge_body(sent, declare_length=False))
    async with UpstreamClient(settings(url)) as client:
        with pytest.raises(UpstreamResponseTooLarge) as raised:
            await client.list_strings(REQUEST, Credentials(TOKEN))
        assert sent.finished is not None
        await asyncio.wait_for(sent.finished.wait(), 10)
    assert raised.value.max_bytes == CAP
    assert sent.dropped, "the server must see the connection dropped"
    # What was sent beyond the cap is what loopback socket buffers hold, far from 50 MB.
    assert sent.bytes < HUGE // 4, sent.bytes


async def test_content_length_over_the_cap_is_refused_before_reading(serve: Serve) -> None:
    release = asyncio.Event()
    seen = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = HUGE
        await response.prepare(request)
        await response.write(b"[")  # sends the header; the rest of the body never comes
        seen.set()
        try:
            # Only the declared length can make the client give up before its read timeout.
            await asyncio.wait_for(release.wait(), 30)
        except asyncio.CancelledError:
            release.set()
            raise
        return response

    url = await serve(handler)
    async with UpstreamClient(settings(url, read_timeout=20)) as client:
        with pytest.raises(UpstreamResponseTooLarge):
            await client.list_strings(REQUEST, None)
    # The server's handler is cancelled because the client hung up (not because it timed out).
    await asyncio.wait_for(release.wait(), 10)
    assert seen.is_set()


async def test_a_body_under_the_cap_is_read_whole(serve: Serve) -> None:
    names = [f"model-{i:06d}" for i in range(40_000)]  # ~640 KB, chunked over several reads

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(names)

    url = await serve(handler)
    async with UpstreamClient(settings(url)) as client:
        assert await client.list_strings(REQUEST, None) == names


async def test_an_oversized_error_body_keeps_its_status(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=400, body=b"x" * (CAP + 1))

    url = await serve(handler)
    async with UpstreamClient(settings(url)) as client:
        with pytest.raises(UpstreamBadRequest) as raised:
            await client.list_strings(REQUEST, None)
    assert raised.value.status == 400


async def test_a_hanging_upstream_costs_the_deadline_not_the_read_timeout(serve: Serve) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(release.wait(), 30)
        return web.json_response([])

    url = await serve(handler)
    loop = asyncio.get_running_loop()
    try:
        async with UpstreamClient(settings(url, read_timeout=30)) as client:
            deadline = Deadline.after(0.5)
            with pytest.raises(DeadlineExceeded):
                await client.list_strings(REQUEST, None, deadline=deadline)
            # Once passed, no new call even starts.
            with pytest.raises(DeadlineExceeded):
                await client.list_strings(REQUEST, None, deadline=deadline)
    finally:
        release.set()
    assert loop.time() < deadline.when + 1.0


async def test_retries_share_the_deadline(serve: Serve) -> None:
    attempts = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.2)  # a slow upstream that then fails
        return web.json_response({"message": "busy"}, status=503)

    url = await serve(handler)
    async with UpstreamClient(settings(url, retries=10, retry_backoff=0.05)) as client:
        deadline = Deadline.after(1.0)
        with pytest.raises((DeadlineExceeded, UpstreamUnavailable)):
            await client.list_strings(REQUEST, None, deadline=deadline)
    assert asyncio.get_running_loop().time() < deadline.when + 1.0
    # Eleven attempts of 0.2 s cannot fit in one second.
    assert 1 <= attempts <= 5, attempts


async def test_no_retry_that_cannot_finish_in_time(serve: Serve) -> None:
    attempts = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal attempts
        attempts += 1
        return web.json_response({"message": "busy"}, status=503)

    url = await serve(handler)
    # The first backoff (1-3 s with jitter) is longer than what is left of the deadline.
    async with UpstreamClient(settings(url, retries=5, retry_backoff=2.0)) as client:
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.list_strings(REQUEST, None, deadline=Deadline.after(1.0))
    assert attempts == 1
    assert raised.value.status == 503  # the real failure, not a deadline hit


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("aibridge_graphql")]


async def test_failures_are_warned_once_per_window_without_the_token(
    serve: Serve, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "down", "detail": TOKEN}, status=500)

    # A window of its own, whatever other tests logged before.
    monkeypatch.setattr(observe, "UPSTREAM_WARNINGS", RateLimitedLog(observe.logger))
    url = await serve(handler)
    caplog.set_level(logging.DEBUG)
    async with UpstreamClient(settings(url, retries=0)) as client:
        for _ in range(5):
            with pytest.raises(Exception, match="500"):
                await client.list_strings(REQUEST, Credentials(TOKEN))
    warnings = [r.getMessage() for r in ours(caplog) if r.levelno == logging.WARNING]
    assert warnings == ["upstream GET /models failed: http_5xx (HTTP 500)"]
    for record in ours(caplog):
        text = record.getMessage()
        assert TOKEN not in text
        assert "limit=" not in text, text
        assert "?" not in text, text


async def test_bad_request_is_not_a_warning(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "Invalid limit"}, status=400)

    url = await serve(handler)
    caplog.set_level(logging.DEBUG)
    async with UpstreamClient(settings(url)) as client:
        with pytest.raises(Exception, match="400"):
            await client.list_strings(REQUEST, Credentials(TOKEN))
    assert not [r for r in ours(caplog) if r.levelno >= logging.WARNING]


def test_rate_limited_log_counts_what_it_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    log = RateLimitedLog(logging.getLogger("test.ratelimit"), interval=60.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="test.ratelimit")
    written = [log.warning(("a", "timeout"), "upstream %s failed", "a") for _ in range(10)]
    assert written == [True] + [False] * 9
    assert log.warning(("b", "timeout"), "upstream %s failed", "b")  # another key: its own window
    now[0] += 61
    assert log.warning(("a", "timeout"), "upstream %s failed", "a")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "upstream a failed",
        "upstream b failed",
        "upstream a failed (9 similar suppressed in the last 60s)",
    ]
