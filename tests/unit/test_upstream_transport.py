"""The production transport (httpx over aiohttp's pool) against real loopback servers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.errors import UpstreamUnavailable
from aibridge_graphql.upstream.requests import models_request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST = models_request(None, limit=5)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
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
    return Settings(upstream_url=url, retry_backoff=0, **overrides)  # type: ignore[arg-type]


async def test_a_dropped_connection_is_retried(serve: Callable[[Handler], Awaitable[str]]) -> None:
    attempts = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            assert request.transport is not None
            request.transport.close()  # no response at all: the server went away mid-request
        return web.json_response(["gpt-5"])

    url = await serve(handler)
    async with UpstreamClient(settings(url)) as client:
        assert await client.list_strings(REQUEST, None) == ["gpt-5"]
    assert attempts == 2


async def test_a_read_timeout_is_unavailable_without_retry(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    attempts = 0
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal attempts
        attempts += 1
        await release.wait()
        return web.json_response([])

    url = await serve(handler)
    try:
        async with UpstreamClient(settings(url, read_timeout=0.2)) as client:
            with pytest.raises(UpstreamUnavailable, match="timed out"):
                await client.list_strings(REQUEST, None)
    finally:
        release.set()
    assert attempts == 1


async def test_a_refused_connection_is_unavailable_after_the_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with UpstreamClient(settings(f"http://127.0.0.1:{port}", retries=1)) as client:
        with pytest.raises(UpstreamUnavailable, match="unreachable"):
            await client.list_strings(REQUEST, None)


async def test_cookies_set_upstream_are_never_sent_back(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    cookies_seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        cookies_seen.append(dict(request.cookies))
        response = web.json_response([])
        response.set_cookie("coder_session_token", "first-callers-token", path="/")
        return response

    url = await serve(handler)
    async with UpstreamClient(settings(url)) as client:
        await client.list_strings(REQUEST, Credentials("first"))
        await client.list_strings(REQUEST, Credentials("second"))
    assert cookies_seen == [{}, {}]


async def test_the_pool_reuses_connections(serve: Callable[[Handler], Awaitable[str]]) -> None:
    peers: set[object] = set()

    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        return web.json_response([])

    url = await serve(handler)
    async with UpstreamClient(settings(url)) as client:
        for _ in range(5):
            await client.list_strings(REQUEST, None)
    assert len(peers) == 1
