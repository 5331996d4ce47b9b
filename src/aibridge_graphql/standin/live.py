"""The stand-in's live mode: a traffic tick every few seconds, in the server's own loop.

The ticks write through their own connection on one worker thread (the event loop never
touches SQLite); every API request reads in a fresh transaction, so it sees each committed tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from aibridge_graphql.standin.traffic import TICK_SECONDS, Traffic

DEFAULT_INTERVAL = TICK_SECONDS
MIN_INTERVAL = 0.05

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveOptions:
    """Live traffic: the generator's seed value and the seconds between ticks (also the
    simulated time a tick covers)."""

    seed_value: int = 1
    interval: float = DEFAULT_INTERVAL

    def __post_init__(self) -> None:
        if not self.interval >= MIN_INTERVAL:
            raise ValueError(f"the live interval must be at least {MIN_INTERVAL} s")


def add_live_traffic(app: web.Application, path: Path, options: LiveOptions) -> None:
    """Run a traffic tick every `options.interval` seconds while `app` runs."""
    app.cleanup_ctx.append(lambda _: _live(path, options))


async def _live(path: Path, options: LiveOptions) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="standin-traffic")
    traffic = await loop.run_in_executor(
        executor, lambda: Traffic(path, options.seed_value, tick_seconds=options.interval)
    )
    task = asyncio.create_task(_ticks(traffic, executor, options.interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # After a tick still running on the worker (the executor runs one thing at a time).
        await loop.run_in_executor(executor, traffic.close)
        executor.shutdown(wait=True)


async def _ticks(traffic: Traffic, executor: ThreadPoolExecutor, interval: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        try:
            report = await loop.run_in_executor(executor, traffic.tick)
        except sqlite3.Error as error:  # e.g. the file stayed locked: try again next tick
            log.warning("live traffic tick failed: %s", error)
            continue
        except Exception:  # a bug must not end live traffic silently, nor the server
            log.exception("live traffic tick failed")
            continue
        log.debug(
            "live traffic: %d started, %d extended, %d ended, %d interceptions served",
            len(report.started),
            len(report.extended),
            len(report.ended),
            len(report.finished),
        )
