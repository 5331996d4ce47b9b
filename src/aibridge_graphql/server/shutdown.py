"""Graceful shutdown of `serve`: not ready first, then no new connections, then the grace.

On the first SIGTERM/SIGINT: `/readyz` answers 503 and gRPC health NOT_SERVING at once; both
faces keep serving for `shutdown_drain_delay` (every HTTP response then closes its connection);
the listeners close; requests and calls in flight get `shutdown_grace` seconds, after which HTTP
requests are answered 503 and gRPC calls cancelled. A second signal cuts the drain and the grace
short. The caller then closes the upstream pool; the process exits 0 either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from aiohttp import web
from aiohttp.typedefs import Handler

if TYPE_CHECKING:
    from aibridge_graphql.core.live import LiveHub
    from aibridge_graphql.grpc.server import GrpcServer

logger = logging.getLogger("aibridge_graphql.shutdown")

SHUTTING_DOWN = "The gateway is shutting down; retry the request."
# Cancelled handlers unwind at their next await; this only bounds a pathological one.
_CANCEL_WAIT_S = 5.0


class Draining:
    """The HTTP face's shutdown state: whether it began, and the requests in flight (to await
    them, and past the grace to cancel them with a 503)."""

    def __init__(self) -> None:
        self.started = False
        self._expired = False
        self._requests: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        """Not ready from now on; every response closes its connection."""
        self.started = True

    @property
    def in_flight(self) -> int:
        """Requests being handled now."""
        return len(self._requests)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Track the request; once draining, close its connection after the response."""
        task = asyncio.current_task()
        assert task is not None  # aiohttp runs every handler in a task
        self._requests.add(task)
        self._idle.clear()
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            # Ours alone (not also a client hang-up): answer, so the client sees a clean 503.
            if not (self._expired and task.cancelling() == 1):
                raise
            task.uncancel()
            response = _shutting_down_response()
        finally:
            self._requests.discard(task)
            if not self._requests:
                self._idle.set()
        if self.started:
            response.force_close()
        return response

    async def wait_idle(self) -> None:
        """Return once no request is in flight."""
        await self._idle.wait()

    async def cancel_in_flight(self) -> int:
        """Cancel the requests still running (each answers 503); how many there were."""
        self._expired = True
        remaining = list(self._requests)
        for task in remaining:
            task.cancel()
        if remaining:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_idle(), _CANCEL_WAIT_S)
        return len(remaining)


def _shutting_down_response() -> web.Response:
    error = {"message": SHUTTING_DOWN, "extensions": {"code": "SERVICE_UNAVAILABLE"}}
    return web.json_response({"errors": [error]}, status=503)


STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


@dataclass
class ShutdownSignals:
    """SIGINT/SIGTERM on the running loop: the first asks for a graceful stop, a second for an
    immediate one. A supervisor's request (`ask`) sets the same events."""

    requested: asyncio.Event = field(default_factory=asyncio.Event)
    urgent: asyncio.Event = field(default_factory=asyncio.Event)

    def _received(self, sig: signal.Signals) -> None:
        if self.requested.is_set():
            logger.info("%s again: stopping now", sig.name)
            self.urgent.set()
            return
        logger.info("%s: shutting down gracefully", sig.name)
        self.requested.set()

    def ask(self, *, urgent: bool, why: str) -> None:
        """Stop gracefully (or now, when `urgent`), as the supervisor asks; unlike a signal, asking
        twice for a graceful stop is still a graceful stop."""
        if urgent and not self.urgent.is_set():
            logger.info("%s: stopping now", why)
            self.requested.set()
            self.urgent.set()
        elif not self.requested.is_set():
            logger.info("%s: shutting down gracefully", why)
            self.requested.set()

    @contextlib.contextmanager
    def installed(
        self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS
    ) -> Iterator[ShutdownSignals]:
        """Handle `signals` while inside; the previous handlers come back after."""
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, self._received, sig)
        try:
            yield self
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)


async def _unless_urgent(urgent: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `urgent` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(urgent.wait(), seconds)


@dataclass(frozen=True)
class GracefulStop:
    """What one graceful stop closes: the HTTP runner and its draining state, the gRPC server."""

    runner: web.AppRunner
    draining: Draining
    grpc: GrpcServer | None
    drain_delay: float
    grace: float
    # Its streams complete once the drain delay is over: clients reconnect to another replica.
    live: LiveHub | None = None

    async def run(self, urgent: asyncio.Event) -> None:
        """Not ready, drain, close the listeners, give in-flight work the grace, cancel the rest.

        The runner's cleanup (app hooks) is left to the caller; this returns with no request or
        call running.
        """
        self.draining.start()
        if self.grpc is not None:
            await self.grpc.health.drain()
        logger.info(
            "not ready; closing the listeners in %gs, then %gs for work in flight",
            self.drain_delay,
            self.grace,
        )
        await _unless_urgent(urgent, self.drain_delay)
        if self.live is not None:
            self.live.close()
        grace = 0.0 if urgent.is_set() else self.grace
        # gRPC: the listener closes and new calls are refused at once (GOAWAY on open
        # connections); calls running get the grace, then are cancelled.
        grpc_stopped = (
            asyncio.ensure_future(self.grpc.stop(grace)) if self.grpc is not None else None
        )
        for site in list(self.runner.sites):
            await site.stop()
        # Requests in flight finish, each closing its connection after the response. Only then
        # are idle keep-alive connections closed: aiohttp's `pre_shutdown` also drops the rest of
        # a body still arriving, which left a request sent at the close waiting for it until the
        # grace ran out.
        idle = asyncio.ensure_future(self.draining.wait_idle())
        await _first_of(idle, urgent, grace)
        idle.cancel()
        server = self.runner.server
        if server is not None:
            server.pre_shutdown()
        if self.draining.in_flight:
            cancelled = await self.draining.cancel_in_flight()
            logger.info("grace over: %d HTTP request(s) answered 503", cancelled)
        if grpc_stopped is not None and self.grpc is not None:
            # grpc returns once its calls are done, or cancelled at the end of the grace.
            await _first_of(grpc_stopped, urgent, None)
            if not grpc_stopped.done():
                # A smaller grace in a second call wins: cancel what is left now.
                await self.grpc.stop(None)
            await grpc_stopped
        logger.info("stopped serving")


async def _first_of(
    work: asyncio.Future[None], urgent: asyncio.Event, seconds: float | None
) -> None:
    """Wait for `work` (left running), at most `seconds`, no longer once `urgent` is set."""
    alarm = asyncio.ensure_future(_set(urgent))
    try:
        await asyncio.wait({work, alarm}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        alarm.cancel()
        await asyncio.gather(alarm, return_exceptions=True)


async def _set(event: asyncio.Event) -> None:
    await event.wait()
