"""Running the apps: start a site (port 0 allowed), the resources both faces share, poll
readiness, wait for a signal."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx
from aiohttp import web

from aibridge_graphql.core.cache import close_cache
from aibridge_graphql.core.live import LiveHub
from aibridge_graphql.core.pricing import Pricer, pricer_from_settings
from aibridge_graphql.server.app import create_app
from aibridge_graphql.server.graphiql import OfflineGraphiQL, offline_graphiql
from aibridge_graphql.server.keys import DRAINING_KEY
from aibridge_graphql.server.looplag import LoopLagMonitor
from aibridge_graphql.server.observability import Observability
from aibridge_graphql.server.shutdown import STOP_SIGNALS, GracefulStop, ShutdownSignals
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient

if TYPE_CHECKING:
    from aibridge_graphql.grpc.server import GrpcServer, PreparedGrpc


@dataclass(frozen=True)
class Started:
    """A started app: its runner (to clean up) and the address it listens on."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """`http://host:port` of the app."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def build_gateway(
    settings: Settings,
    graphiql: OfflineGraphiQL | None = None,
    *,
    client: UpstreamClient | None = None,
    observability: Observability | None = None,
    pricer: Pricer | None = None,
    live: LiveHub | None = None,
) -> web.Application:
    """The gateway app as `serve` and `demo` run it: GraphiQL from local assets when installed,
    and the event-loop lag monitor in `/metrics`."""
    graphiql = graphiql or offline_graphiql(settings)
    observability = observability or Observability(settings)
    monitor = LoopLagMonitor(observability.metrics.registry)
    app = create_app(
        settings,
        client=client,
        observability=observability,
        pricer=pricer,
        live=live,
        ide_html=graphiql.ide_html,
        setup=[graphiql.setup],
    )
    app.cleanup_ctx.append(monitor.lifecycle)
    return app


async def setup_runner(app: web.Application, shutdown_timeout: float = 60.0) -> web.AppRunner:
    """`app`'s runner, set up (its start-up hooks run) but listening nowhere yet; its cleanup
    gives requests in flight `shutdown_timeout` seconds."""
    # handler_cancellation: a request whose client hung up stops, and with it its upstream calls.
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    return runner


async def listen(
    runner: web.AppRunner, host: str, port: int, *, reuse_port: bool = False
) -> Started:
    """Listen on `host:port` (0 picks a free port); on an `OSError` (e.g. the port is busy) the
    runner is left as it was, to try another port or clean up. `reuse_port`: share the port with
    sibling workers (SO_REUSEPORT; server/workers.py)."""
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    try:
        await site.start()
    except BaseException:
        await site.stop()
        raise
    bound = runner.addresses[0]
    return Started(runner, host, int(bound[1]))


async def start_app(
    app: web.Application,
    host: str,
    port: int,
    shutdown_timeout: float = 60.0,
    *,
    reuse_port: bool = False,
) -> Started:
    """Start `app` on `host:port` (0 picks a free port) and return where it listens."""
    runner = await setup_runner(app, shutdown_timeout)
    try:
        return await listen(runner, host, port, reuse_port=reuse_port)
    except BaseException:
        await runner.cleanup()
        raise


async def wait_until_ok(
    url: str, *, headers: Mapping[str, str] | None = None, within: float = 15.0
) -> None:
    """Poll `url` until it answers 200, or raise `TimeoutError` after `within` seconds."""
    deadline = time.monotonic() + within
    last = "no answer"
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get(url, headers=dict(headers or {}))
            except httpx.TransportError as error:
                last = type(error).__name__
            else:
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            # A short pause between polls; the loop is bounded by the deadline.
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {within:g}s ({last})")


async def wait_for_shutdown_signal() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def freeze_startup_heap() -> None:
    """Move what start-up built (modules, schemas, models: ~100k objects) out of the collector's
    sight, so that its full collections walk only what requests allocate.

    Under load requests in flight keep being promoted to the oldest generation, so full
    collections run a few times a second whatever the thresholds; each walked the whole start-up
    heap (~60 ms, 40% of the gateway's CPU at 16 concurrent list requests). Frozen objects are
    still freed by reference counting; only cycles among them would stay, and start-up leaves
    none that matter.
    """
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class SharedServing:
    """What the two faces of one process share: one pooled upstream client, one observability
    stack (the gRPC metrics appear in the same `/metrics`), one pricer and one live hub (a view
    watched from both faces is polled once)."""

    settings: Settings
    client: UpstreamClient
    observability: Observability
    pricer: Pricer
    live: LiveHub

    def gateway_app(self, graphiql: OfflineGraphiQL | None = None) -> web.Application:
        """The GraphQL face's app over the shared client (not yet started)."""
        return build_gateway(
            self.settings,
            graphiql,
            client=self.client,
            observability=self.observability,
            pricer=self.pricer,
            live=self.live,
        )

    def prepare_grpc(self, *, reuse_port: bool = False) -> PreparedGrpc:
        """The gRPC face over the shared client and live hub, built but listening nowhere yet."""
        from aibridge_graphql.grpc.server import prepare_grpc

        observability = self.observability
        return prepare_grpc(
            self.settings,
            self.client,
            observability.metrics,
            observability.tracing,
            self.pricer,
            live=self.live,
            reuse_port=reuse_port,
        )

    async def start_grpc(self, *, reuse_port: bool = False) -> GrpcServer:
        """The gRPC face, listening on `settings.host:grpc_port` (0: any)."""
        return await self.prepare_grpc(reuse_port=reuse_port).listen(self.settings.grpc_port)


@contextlib.asynccontextmanager
async def shared_serving(
    settings: Settings, pricer: Pricer | None = None
) -> AsyncIterator[SharedServing]:
    """The shared resources of `serve` and `demo`; the upstream client (and its cache) closed
    at the end, after the faces built on it have stopped."""
    client = UpstreamClient(settings)
    observability = Observability(settings)
    pricer = pricer or pricer_from_settings(settings)
    live = LiveHub(client, settings, pricer=pricer, metrics=observability.metrics)
    try:
        yield SharedServing(settings, client, observability, pricer, live)
    finally:
        live.close()
        await close_cache(client)
        await client.aclose()


class Supervisor(Protocol):
    """What a worker of `serve --workers N` tells that it serves, and hears a stop from (the
    master process, server/workers.py)."""

    def ready(self) -> None:
        """Both faces listen: the master may count this worker in."""

    def follow(self, signals: ShutdownSignals) -> contextlib.AbstractContextManager[None]:
        """While inside, a stop the master asks for (or its death) reaches `signals`."""


def _announce(started: Started, grpc_server: GrpcServer | None) -> None:
    # One line a script (or a test) can read to find the port when it asked for 0.
    print(f"Gateway listening on {started.base_url}/graphql", flush=True)
    if grpc_server is not None:
        print(f"gRPC listening on {grpc_server.address}", flush=True)


async def run_gateway(
    settings: Settings, pricer: Pricer | None = None, supervisor: Supervisor | None = None
) -> None:
    """Serve the gateway on `settings.host:port` (and gRPC on `grpc_port`) until SIGINT/SIGTERM,
    then stop gracefully (server/shutdown.py).

    Both faces share one event loop, one pooled upstream client and one observability stack
    (`SharedServing`). As one of `serve --workers N` (`supervisor` given) both ports are shared
    with the sibling workers, the master announces them, and SIGINT is left to the master.
    """
    reuse_port = supervisor is not None
    # CPython's default GC thresholds are kept on purpose: raising them bought a faster dashboard
    # p95 but let RSS grow to ~600 MB under load, then froze the loop for seconds when the
    # collector finally ran (issue 7).
    async with shared_serving(settings, pricer) as shared:
        grpc_server: GrpcServer | None = None
        started: Started | None = None
        try:
            app = shared.gateway_app()
            started = await start_app(
                app, settings.host, settings.port, settings.shutdown_grace, reuse_port=reuse_port
            )
            if settings.grpc_enabled:
                grpc_server = await shared.start_grpc(reuse_port=reuse_port)
            freeze_startup_heap()
            handled = STOP_SIGNALS if supervisor is None else (signal.SIGTERM,)
            with contextlib.ExitStack() as stack:
                signals = stack.enter_context(ShutdownSignals().installed(handled))
                if supervisor is None:
                    _announce(started, grpc_server)
                else:
                    stack.enter_context(supervisor.follow(signals))
                    supervisor.ready()
                await signals.requested.wait()
                stop = GracefulStop(
                    started.runner,
                    app[DRAINING_KEY],
                    grpc_server,
                    live=shared.live,
                    drain_delay=settings.shutdown_drain_delay,
                    grace=settings.shutdown_grace,
                )
                await stop.run(signals.urgent)
        finally:
            if grpc_server is not None:
                await grpc_server.stop()
            if started is not None:
                await started.runner.cleanup()
