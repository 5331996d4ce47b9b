"""Run an aiohttp application on loopback in a background thread, for real-HTTP tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator

from aiohttp import web

_READY_TIMEOUT_S = 10.0


@contextlib.contextmanager
def run_app_in_thread(
    app_factory: Callable[[], web.Application],
    *,
    handler_cancellation: bool = False,
    port: int = 0,
) -> Iterator[str]:
    """Serve the factory's app on 127.0.0.1 (`port`, 0: an ephemeral one) in its own loop; yield
    the base URL. A port given again after its server stopped restarts a server there.

    `handler_cancellation=True` stops a request whose client hung up, as `serve` does
    (server/serving.py): a live stream is freed then, not at its next write.
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    state: dict[str, object] = {}

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        runner = web.AppRunner(app_factory(), handler_cancellation=handler_cancellation)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            server = site._server  # the only way aiohttp exposes the bound port
            sockets = getattr(server, "sockets", None) or []
            state["port"] = sockets[0].getsockname()[1]
            ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # surfaced to the caller below
            state["error"] = exc
        finally:
            ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=target, name="aiohttp-test-server", daemon=True)
    thread.start()
    if not ready.wait(_READY_TIMEOUT_S) or "port" not in state:
        raise RuntimeError(f"test server did not start: {state.get('error')!r}")
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        if stop is not None and thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(_READY_TIMEOUT_S)
