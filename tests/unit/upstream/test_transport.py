"""The production transport (the default aiohttp pool, used directly) against real loopback
servers, next to the same client over httpx's API (`pooled_transport`)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import (
    Credentials,
    UpstreamClient,
    _httpx_error,
    pooled_transport,
)
from aibridge_graphql.upstream.errors import UpstreamHTTPError, UpstreamUnavailable
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


async def test_the_default_pool_sends_what_httpx_would(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        names = [name.lower() for name in request.headers]
        assert len(names) == len(set(names)), names  # no header sent twice
        seen.append((request.raw_path, {k.lower(): v for k, v in request.headers.items()}))
        response = web.json_response([])
        response.set_cookie("coder_session_token", "someone-elses", path="/")
        return response

    url = await serve(handler)
    odd = models_request("gpt 5/ü&x=1", limit=3, offset=7)
    for transport in (None, pooled_transport(settings(url))):
        async with UpstreamClient(settings(url), transport=transport) as client:
            await client.list_strings(odd, Credentials("t1"))
            await client.list_strings(REQUEST, Credentials("t2"))
    direct, via_httpx = seen[:2], seen[2:]
    assert direct == via_httpx
    assert [headers["coder-session-token"] for _, headers in direct] == ["t1", "t2"]
    assert all("cookie" not in headers for _, headers in seen)


async def test_a_redirect_elsewhere_is_an_error_and_never_gets_the_token(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    elsewhere: list[web.Request] = []

    async def other_host(request: web.Request) -> web.StreamResponse:
        elsewhere.append(request)
        return web.json_response([])

    other = await serve(other_host)

    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(other + "api/v2/ai-gateway/models")

    url = await serve(handler)
    async with UpstreamClient(settings(url)) as client:
        with pytest.raises(UpstreamHTTPError) as raised:
            await client.list_strings(REQUEST, Credentials("t"))
    assert raised.value.status == 302
    assert elsewhere == []


async def test_an_answer_that_is_not_http_fails_without_retry() -> None:
    attempts = 0

    async def garble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garble, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with UpstreamClient(settings(f"http://127.0.0.1:{port}", retries=2)) as client:
            with pytest.raises(UpstreamUnavailable, match="request failed"):
                await client.list_strings(REQUEST, None)
    finally:
        server.close()
        await server.wait_closed()
    assert attempts == 1


@pytest.mark.parametrize(
    ("error", "translated"),
    [
        (aiohttp.SocketTimeoutError(), httpx.ReadTimeout),
        (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(), httpx.ReadError),
        (aiohttp.ClientPayloadError(), httpx.ReadError),
        (aiohttp.InvalidUrlClientError("x"), httpx.UnsupportedProtocol),
    ],
)
def test_aiohttp_errors_retry_and_fail_as_httpx_ones(
    error: aiohttp.ClientError, translated: type[Exception]
) -> None:
    assert type(_httpx_error(error)) is translated


async def test_closing_the_client_closes_the_pool_the_hot_path_opened(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response([])

    url = await serve(handler)
    client = UpstreamClient(settings(url))
    try:
        assert await client.get_bytes(REQUEST, None) == b"[]"
        assert client._pool is not None
        session = client._pool.session()
    finally:
        await client.aclose()
    assert session.closed
