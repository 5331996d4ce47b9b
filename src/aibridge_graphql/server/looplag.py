"""Event-loop lag: how late the loop runs a timer, i.e. how long something blocked it.

Every request of a replica shares one event loop, so a stall (a long garbage collection, CPU-bound
work on the loop) delays all of them at once. A timer due every `INTERVAL` seconds measures it:
the time between when it was due and when it ran is the stall. Served on `/metrics` as
`aibridge_event_loop_lag_seconds` (histogram) and `aibridge_event_loop_lag_max_seconds` (the
longest since start); the soak benchmark reads the latter. Lag includes waiting behind other ready
callbacks (deep at saturation) and CPU starvation, so each garbage collection's pause, the stall
the GC tuning caused, is also timed: `aibridge_gc_pause_seconds`, `aibridge_gc_pause_max_seconds`
and the CPU they took, `aibridge_gc_cpu_seconds_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
            multiprocess_mode="max",
        )

        self.gc_pause = Histogram(
            "aibridge_gc_pause_seconds",
            "Each cyclic garbage collection's duration (the event loop is blocked meanwhile).",
            buckets=_BUCKETS,
            registry=registry,
        )
        self.gc_pause_max = Gauge(
            "aibridge_gc_pause_max_seconds",
            "The longest garbage collection since the process started.",
            registry=registry,
            multiprocess_mode="max",
        )
        # CPU time as well as wall time: on a busy host (or a CPU-throttled container) a collection
        # can take far longer than the work it does; the CPU share tells the two apart.
        self.gc_cpu = Counter(
            "aibridge_gc_cpu_seconds",
            "CPU time spent in cyclic garbage collections.",
            registry=registry,
        )
        self.longest_gc = 0.0
        self._gc_started = 0.0
        self._gc_cpu_started = 0.0

    def _on_gc(self, phase: str, _: dict[str, Any]) -> None:
        # Called by the interpreter around every collection: keep it cheap.
        now, cpu = time.perf_counter(), time.thread_time()
        if phase == "start":
            self._gc_started, self._gc_cpu_started = now, cpu
            return
        pause = now - self._gc_started
        self.gc_pause.observe(pause)
        self.gc_cpu.inc(max(0.0, cpu - self._gc_cpu_started))
        if pause > self.longest_gc:
            self.longest_gc = pause
            self.gc_pause_max.set(pause)

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
        gc.callbacks.append(self._on_gc)
        try:
            yield
        finally:
            gc.callbacks.remove(self._on_gc)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
