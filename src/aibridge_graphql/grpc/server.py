"""The gRPC server of the face: services, reflection, health, limits, on the serving loop.

`start_grpc(...)` binds `settings.host:settings.grpc_port` (0: any free port) on the running
event loop — the same one the aiohttp app runs on — and returns a `GrpcServer` to stop later;
`prepare_grpc(...).listen(port)` does it in two steps, so a busy port can be retried with another.
Health: the standard `grpc.health.v1.Health`; `Check` pings the upstream (as `/readyz` does) and
answers SERVING only when it is reachable, for the whole server ("") and each service; before
the first Check, Watch streams see UNKNOWN. The live watches (WatchSessions, WatchSession) use
the `LiveHub` given: the process's one, shared with the GraphQL face (`SharedServing.live`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from aibridge_graphql.core.live import LiveHub
from aibridge_graphql.core.metrics import GatewayMetrics
from aibridge_graphql.core.pricing import Pricer
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2 as catalog_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2_grpc as catalog_grpc
from aibridge_graphql.grpc.gen.aibridge.v1 import interception_service_pb2 as interception_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import (
    interception_service_pb2_grpc as interception_grpc,
)
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from aibridge_graphql.grpc.gen.aibridge.v1 import usage_service_pb2 as usage_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import usage_service_pb2_grpc as usage_grpc
from aibridge_graphql.grpc.interceptors import ObservingInterceptor
from aibridge_graphql.grpc.services import CatalogService, Face, InterceptionService, SessionService
from aibridge_graphql.grpc.usage import UsageService
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient

if TYPE_CHECKING:
    from aibridge_graphql.core.tracing import Tracing

logger = logging.getLogger("aibridge_graphql.grpc")

SERVICE_NAMES = (
    session_pb.DESCRIPTOR.services_by_name["SessionService"].full_name,
    interception_pb.DESCRIPTOR.services_by_name["InterceptionService"].full_name,
    catalog_pb.DESCRIPTOR.services_by_name["CatalogService"].full_name,
    usage_pb.DESCRIPTOR.services_by_name["UsageService"].full_name,
)
_MS = 1000


def server_options(settings: Settings, *, reuse_port: bool = False) -> list[tuple[str, Any]]:
    """Channel arguments: message size, concurrent streams, keepalive and its enforcement;
    `reuse_port` for a `serve` worker sharing the port with its siblings (server/workers.py)."""
    return [
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_concurrent_streams", settings.grpc_max_concurrent_streams),
        # The server pings idle connections, and drops them when a ping goes unanswered.
        ("grpc.keepalive_time_ms", int(settings.grpc_keepalive_time * _MS)),
        ("grpc.keepalive_timeout_ms", int(settings.grpc_keepalive_timeout * _MS)),
        # Enforcement: clients pinging more often than this get GOAWAY (too_many_pings) after
        # `max_ping_strikes` strikes; pings without calls are a strike unless permitted.
        (
            "grpc.http2.min_recv_ping_interval_without_data_ms",
            int(settings.grpc_keepalive_min_ping_interval * _MS),
        ),
        ("grpc.http2.max_ping_strikes", 2),
        (
            "grpc.keepalive_permit_without_calls",
            int(settings.grpc_keepalive_permit_without_calls),
        ),
        # A port already in use must fail the start, not be shared silently; workers share it
        # on purpose (their supervisor checked it was free and holds it).
        ("grpc.so_reuseport", int(reuse_port)),
    ]


class UpstreamHealth(health.aio.HealthServicer):
    """The standard health service; each `Check` asks the upstream first (like `/readyz`).

    Watch streams end (OK) once they have sent NOT_SERVING at shutdown: the stock Watch never
    ends, so every watcher would hold the shutdown grace open to its last second.
    """

    def __init__(self, client: UpstreamClient) -> None:
        super().__init__()
        self._client = client
        self._draining = False
        # What Watch streams report, beside the base class's own map (private to it).
        self._statuses: dict[str, Any] = {"": health_pb2.HealthCheckResponse.SERVING}
        self._changed = asyncio.Condition()

    async def set(self, service: str, status: Any) -> None:
        """Publish `status` for `service` to Check and Watch (ignored once draining)."""
        if self._draining:
            return
        await super().set(service, status)
        async with self._changed:
            self._statuses[service] = status
            self._changed.notify_all()

    async def drain(self) -> None:
        """NOT_SERVING for good, Watch streams told at once: the process is shutting down."""
        self._draining = True
        await self.enter_graceful_shutdown()
        async with self._changed:
            for service in self._statuses:
                self._statuses[service] = health_pb2.HealthCheckResponse.NOT_SERVING
            self._changed.notify_all()

    async def Watch(self, request: Any, context: Any) -> None:
        last = None
        while True:
            async with self._changed:
                while (status := self._watched(request.service)) == last and not self._draining:
                    await self._changed.wait()
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            # Draining, and the last word sent is still the status: nothing more will change.
            if self._draining and self._watched(request.service) == last:
                return

    def _watched(self, service: str) -> Any:
        return self._statuses.get(service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)

    async def refresh(self) -> bool:
        """Ping the upstream and publish the result for "" and every service."""
        if self._draining:
            return False
        try:
            ready = await self._client.ping()
        except Exception:  # a failing probe means "not ready", whatever the reason
            logger.warning("gRPC health probe failed", exc_info=True)
            ready = False
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await self.set(name, status)
        return ready

    async def Check(self, request: Any, context: Any) -> Any:
        await self.refresh()
        return await super().Check(request, context)


@dataclass
class GrpcServer:
    """A started gRPC server, its health service and the port it listens on."""

    server: grpc.aio.Server
    health: UpstreamHealth
    host: str
    port: int

    @property
    def address(self) -> str:
        """`host:port` as gRPC clients take it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop taking calls; running ones get `grace` seconds (None: cancelled at once)."""
        await self.server.stop(grace)


def _known_methods() -> frozenset[str]:
    methods = set()
    for module in (session_pb, interception_pb, catalog_pb, usage_pb):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods.add(f"/{service.full_name}/{method.name}")
    methods.add("/grpc.health.v1.Health/Check")
    return frozenset(methods)


def build_server(
    settings: Settings,
    client: UpstreamClient,
    metrics: GatewayMetrics,
    tracing: Tracing | None = None,
    pricer: Pricer | None = None,
    *,
    live: LiveHub,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, UpstreamHealth]:
    """The server with the four services, health and reflection (not yet bound or started);
    its watches stream `live`'s pollers."""
    server = grpc.aio.server(
        interceptors=[ObservingInterceptor(metrics, tracing, _known_methods())],
        options=server_options(settings, reuse_port=reuse_port),
        maximum_concurrent_rpcs=None,
    )
    face = Face(settings, client, pricer, live=live)
    session_grpc.add_SessionServiceServicer_to_server(SessionService(face), server)
    interception_grpc.add_InterceptionServiceServicer_to_server(InterceptionService(face), server)
    catalog_grpc.add_CatalogServiceServicer_to_server(CatalogService(face), server)
    usage_grpc.add_UsageServiceServicer_to_server(UsageService(face), server)
    health_servicer = UpstreamHealth(client)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return server, health_servicer


def _address_in_use(host: str, port: int) -> bool:
    """Whether binding `host:port` fails because the address is taken (as gRPC binds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As gRPC binds: a port left in TIME_WAIT is not in use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


@dataclass
class PreparedGrpc:
    """A built gRPC server (services, health, reflection) that listens nowhere yet."""

    server: grpc.aio.Server
    health: UpstreamHealth
    host: str

    async def listen(self, port: int) -> GrpcServer:
        """Bind `host:port` (0: any) and start serving on the running loop.

        An `OSError` (errno EADDRINUSE when the port is taken) leaves the server unbound and
        unstarted, so another port can be tried.
        """
        host = self.host
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = self.server.add_insecure_port(bind)
        except RuntimeError as error:
            message = f"cannot listen on {bind}: {error}"
            # gRPC's error does not say why; EADDRINUSE when the port is taken, so callers can
            # tell.
            if port != 0 and _address_in_use(host, port):
                raise OSError(errno.EADDRINUSE, message) from None
            raise OSError(message) from None
        # No upstream call at start: Watch streams see UNKNOWN ("not probed yet") until a Check
        # asks the upstream; each Check refreshes the status.
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.UNKNOWN)
        await self.server.start()
        return GrpcServer(self.server, self.health, host, bound)


def prepare_grpc(
    settings: Settings,
    client: UpstreamClient,
    metrics: GatewayMetrics,
    tracing: Tracing | None = None,
    pricer: Pricer | None = None,
    *,
    live: LiveHub,
    reuse_port: bool = False,
) -> PreparedGrpc:
    """The server for `settings.host`, built once (its metrics are registered once)."""
    server, health_servicer = build_server(
        settings, client, metrics, tracing, pricer, live=live, reuse_port=reuse_port
    )
    return PreparedGrpc(server, health_servicer, settings.host)


async def start_grpc(
    settings: Settings,
    client: UpstreamClient,
    metrics: GatewayMetrics,
    tracing: Tracing | None = None,
    pricer: Pricer | None = None,
    *,
    live: LiveHub,
) -> GrpcServer:
    """Bind `settings.host:settings.grpc_port` (0: any) and start serving on the running loop."""
    prepared = prepare_grpc(settings, client, metrics, tracing, pricer, live=live)
    return await prepared.listen(settings.grpc_port)
