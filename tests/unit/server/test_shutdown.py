"""server/shutdown.py in process: the draining middleware, the graceful stop, the signals."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from aiohttp import web

from aibridge_graphql.server.serving import Started, start_app
from aibridge_graphql.server.shutdown import SHUTTING_DOWN, Draining, GracefulStop, ShutdownSignals

WAIT_S = 10.0


async def until(check: Callable[[], bool], what: str) -> None:
    """Poll `check()` on the loop until true (bounded)."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what}")
        await asyncio.sleep(0.01)  # between polls only; bounded by the deadline


@pytest.fixture
async def served() -> AsyncIterator[tuple[Started, Draining, asyncio.Event]]:
    """An app with the draining middleware: `/` answers at once, `/held` once released."""
    draining = Draining()
    release = asyncio.Event()

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def held(_: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"held": True})

    app = web.Application(middlewares=[draining.middleware])
    app.router.add_get("/", ok)
    app.router.add_get("/held", held)
    started = await start_app(app, "127.0.0.1", 0)
    try:
        yield started, draining, release
    finally:
        release.set()
        await started.runner.cleanup()


async def test_once_draining_every_response_closes_its_connection(
    served: tuple[Started, Draining, asyncio.Event],
) -> None:
    started, draining, _ = served
    async with httpx.AsyncClient(base_url=started.base_url) as client:
        before = await client.get("/")
        draining.start()
        during = await client.get("/")
    assert before.headers.get("Connection", "keep-alive").lower() == "keep-alive"
    assert during.status_code == 200
    assert during.headers["Connection"].lower() == "close"


async def test_work_within_the_grace_finishes(
    served: tuple[Started, Draining, asyncio.Event],
) -> None:
    started, draining, release = served
    stop = GracefulStop(started.runner, draining, None, drain_delay=0, grace=WAIT_S)
    async with httpx.AsyncClient(base_url=started.base_url) as client:
        request = asyncio.ensure_future(client.get("/held"))
        await until(lambda: draining.in_flight == 1, "in flight")
        stopping = asyncio.ensure_future(stop.run(asyncio.Event()))
        await until(lambda: not started.runner.sites, "listener closed")
        assert not stopping.done()
        release.set()
        response = await request
        await asyncio.wait_for(stopping, WAIT_S)
    assert response.json() == {"held": True}
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=started.base_url) as client:
            await client.get("/")


async def test_past_the_grace_a_request_answers_503(
    served: tuple[Started, Draining, asyncio.Event],
) -> None:
    started, draining, _ = served
    stop = GracefulStop(started.runner, draining, None, drain_delay=0, grace=0.1)
    async with httpx.AsyncClient(base_url=started.base_url) as client:
        request = asyncio.ensure_future(client.get("/held"))
        await until(lambda: draining.in_flight == 1, "in flight")
        await asyncio.wait_for(stop.run(asyncio.Event()), WAIT_S)
        response = await request
    assert response.status_code == 503
    assert response.json()["errors"][0]["message"] == SHUTTING_DOWN
    assert draining.in_flight == 0


async def test_urgent_skips_the_drain_and_the_grace(
    served: tuple[Started, Draining, asyncio.Event],
) -> None:
    started, draining, _ = served
    stop = GracefulStop(started.runner, draining, None, drain_delay=600, grace=600)
    urgent = asyncio.Event()
    async with httpx.AsyncClient(base_url=started.base_url) as client:
        request = asyncio.ensure_future(client.get("/held"))
        await until(lambda: draining.in_flight == 1, "in flight")
        stopping = asyncio.ensure_future(stop.run(urgent))
        await until(lambda: draining.started, "draining")
        urgent.set()
        await asyncio.wait_for(stopping, WAIT_S)
        assert (await request).status_code == 503


async def test_the_first_signal_asks_gracefully_the_second_urgently() -> None:
    with ShutdownSignals().installed() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(signals.requested.wait(), WAIT_S)
        assert not signals.urgent.is_set()
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(signals.urgent.wait(), WAIT_S)
