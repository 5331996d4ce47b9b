"""Event-loop lag: how late the loop runs a timer, i.e. how long something blocked it.

Every request of a replica shares one event loop, so a stall (a long garbage collection, CPU-bound
work on the loop) delays all of them at once. A timer due every `INTERVAL` seconds measures it:
the time between when it was due and when it ran is the stall. Served on `/metrics` as
`aibridge_event_loop_lag_seconds` (histogram) and `aibridge_event_loop_lag_max_seconds` (the
longest since start); the soak benchmark reads the latter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram

# Ten wake-ups a second: negligible work, and a stall of 100 ms or more is always seen.
INTERVAL: Final = 0.1
_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopLagMonitor:
    """Samples the running loop's lag into the given registry while an app runs."""

    def __init__(self, registry: CollectorRegistry, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.longest = 0.0
        self.lag = Histogram(
            "aibridge_event_loop_lag_seconds",
            f"How late the event loop ran a timer due every {interval:g} s (time it was blocked).",
            buckets=_BUCKETS,
            registry=registry,
        )
        self.lag_max = Gauge(
            "aibridge_event_loop_lag_max_seconds",
            "The longest event-loop lag since the process started.",
            registry=registry,
        )

    def observe(self, lag: float) -> None:
        """Record one sample (seconds late)."""
        self.lag.observe(lag)
        if lag > self.longest:
            self.longest = lag
            self.lag_max.set(lag)

    async def run(self) -> None:
        """Sample until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.observe(max(0.0, loop.time() - due))

    async def lifecycle(self, _: web.Application) -> AsyncIterator[None]:
        """An aiohttp `cleanup_ctx`: sample while the app runs."""
        task = asyncio.create_task(self.run(), name="event-loop-lag-monitor")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
