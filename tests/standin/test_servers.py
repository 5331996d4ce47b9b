"""run_app_in_thread serves a real app on loopback and shuts down cleanly."""

from __future__ import annotations

import httpx
from aiohttp import web

from tests.support.servers import run_app_in_thread


def _app() -> web.Application:
    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/hello", hello)
    return app


def test_serves_and_stops() -> None:
    with run_app_in_thread(_app) as base:
        assert base.startswith("http://127.0.0.1:")
        response = httpx.get(f"{base}/hello")
        assert response.status_code == 200
        assert response.json() == {"ok": True}
    try:
        httpx.get(f"{base}/hello", timeout=1.0)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("server still answering after the context exited")
