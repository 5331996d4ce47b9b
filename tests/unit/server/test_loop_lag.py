"""The event-loop lag monitor: a blocked loop shows up in the gateway's `/metrics`."""

from __future__ import annotations

import asyncio
import gc
import time

import httpx
from aiohttp import web

from aibridge_graphql.server.serving import build_gateway, start_app
from aibridge_graphql.settings import Settings

BLOCK_S = 0.4
WITHIN_S = 10.0


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample in Prometheus' text format."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


async def block_loop(_: web.Request) -> web.Response:
    time.sleep(BLOCK_S)  # noqa: ASYNC251 - the stall under test: blocking work holding the loop
    return web.json_response({})


async def test_a_blocked_loop_is_reported_as_lag() -> None:
    settings = Settings(upstream_url="http://127.0.0.1:9", port=0, graphiql=False)
    app = build_gateway(settings)
    app.router.add_get("/block", block_loop)
    started = await start_app(app, "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=started.base_url, timeout=WITHIN_S) as client:
            before = (await client.get("/metrics")).text
            assert "aibridge_event_loop_lag_seconds_bucket" in before
            assert metric(before, "aibridge_event_loop_lag_max_seconds") < BLOCK_S / 2
            assert (await client.get("/block")).status_code == 200
            # The sample the stall delayed is taken right after it; poll until it is recorded.
            deadline = time.monotonic() + WITHIN_S
            longest = 0.0
            while time.monotonic() < deadline:
                text = (await client.get("/metrics")).text
                longest = metric(text, "aibridge_event_loop_lag_max_seconds")
                if longest > 0.2:
                    break
                await asyncio.sleep(0.05)  # between polls; bounded by the deadline
            before_gc = metric(text, "aibridge_gc_pause_seconds_count")
            gc.collect()  # a full collection while the app runs is timed
            after = (await client.get("/metrics")).text
    finally:
        await started.runner.cleanup()
    # The timer was due at most one interval before the stall began.
    assert BLOCK_S - 0.1 - 0.01 <= longest < WITHIN_S
    assert metric(text, "aibridge_event_loop_lag_seconds_count") >= 1
    assert metric(after, "aibridge_gc_pause_seconds_count") >= before_gc + 1
    assert metric(after, "aibridge_gc_pause_max_seconds") > 0
    assert "aibridge_gc_cpu_seconds_total" in after


async def test_the_monitor_stops_with_the_app() -> None:
    settings = Settings(upstream_url="http://127.0.0.1:9", port=0, graphiql=False)
    callbacks = len(gc.callbacks)
    started = await start_app(build_gateway(settings), "127.0.0.1", 0)
    assert len(gc.callbacks) == callbacks + 1
    await started.runner.cleanup()
    assert len(gc.callbacks) == callbacks
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "event-loop-lag-monitor"]
