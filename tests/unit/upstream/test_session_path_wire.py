"""Session ids on the wire: the production transport sends the path exactly as encoded."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.requests import session_threads_request


@pytest.mark.parametrize(
    ("session_id", "raw"),
    [
        ("claude:2025@host+x=y", "/api/v2/aibridge/sessions/claude:2025@host+x=y"),
        ("with space", "/api/v2/aibridge/sessions/with%20space"),
        ("a/b?c#d", "/api/v2/aibridge/sessions/a%2Fb%3Fc%23d"),
        ("100%", "/api/v2/aibridge/sessions/100%25"),
        ("(x)!*'", "/api/v2/aibridge/sessions/(x)!*'"),
    ],
)
async def test_the_raw_path_arrives_unchanged(session_id: str, raw: str) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.raw_path.partition("?")[0])
        return web.json_response({"message": "Session not found."}, status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    settings = Settings(
        upstream_url=str(server.make_url("/")), api_base_path="/api/v2/aibridge", retries=0
    )
    try:
        async with UpstreamClient(settings) as client:
            with pytest.raises(Exception, match="Session not found"):
                await client.get_model(
                    session_threads_request(session_id, limit=1),
                    Credentials("t"),
                    m.SessionThreadsResponse,
                )
    finally:
        await server.close()
    assert seen == [raw]
