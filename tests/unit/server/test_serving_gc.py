"""`serve` leaves CPython's default GC thresholds alone (issue 7) and freezes its start-up heap.

Raised thresholds made the dashboard's p95 faster but let RSS grow to ~600 MB under load and froze
the event loop for 3.8 s when the collector finally ran. Freezing what start-up built keeps the
thresholds and spares each full collection the walk over it (issue 10).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from aibridge_graphql.server.serving import run_gateway
from aibridge_graphql.settings import Settings

STARTED = "Gateway listening on "
WITHIN_S = 15.0


def interpreter_default_threshold() -> tuple[int, int, int]:
    """What a fresh interpreter of this version starts with."""
    out = subprocess.run(
        [sys.executable, "-c", "import gc; print(*gc.get_threshold())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    first, second, third = (int(value) for value in out)
    return first, second, third


@pytest.fixture
def default_gc() -> Iterator[tuple[int, int, int]]:
    """The process at the interpreter's defaults (nothing frozen), restored afterwards."""
    before = gc.get_threshold()
    default = interpreter_default_threshold()
    gc.unfreeze()
    gc.set_threshold(*default)
    yield default
    gc.unfreeze()
    gc.set_threshold(*before)


async def test_serve_keeps_the_default_gc_thresholds_and_freezes_start_up(
    default_gc: tuple[int, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    # The upstream is never called; gRPC on any free port (9090 may be taken on a shared host).
    settings = Settings(upstream_url="http://127.0.0.1:9", port=0, grpc_port=0)
    serving = asyncio.create_task(run_gateway(settings))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    seen = ""
    while STARTED not in seen and loop.time() < deadline and not serving.done():
        await asyncio.sleep(0.02)  # between polls of the start-up line; bounded by the deadline
        seen += capsys.readouterr().out
    try:
        assert STARTED in seen, f"serve did not start: {seen!r}"
        assert gc.get_threshold() == default_gc
        # Modules, schemas and models: tens of thousands of objects the collector need not walk.
        assert gc.get_freeze_count() > 10_000
    finally:
        # run_gateway stops on SIGTERM, as under a process manager.
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, WITHIN_S)
