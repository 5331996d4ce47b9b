"""The gRPC face on loopback for tests: `start_grpc` on its own event loop in a thread.

Records every upstream request (path and query, token) through the client's `on_response`
hook, so tests can count upstream calls per gRPC call and check whose token each carried. The
face has a live hub of its own (a process has one, shared by both faces: `SharedServing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from aibridge_graphql.core.live import LiveHub
from aibridge_graphql.core.metrics import GatewayMetrics
from aibridge_graphql.grpc.server import GrpcServer, start_grpc
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.capabilities import PROBE_USER_AGENT
from aibridge_graphql.upstream.client import TOKEN_HEADER, UpstreamClient, pooled_transport

_START_TIMEOUT_S = 15.0


def face_settings(standin_url: str, **overrides: object) -> Settings:
    """Settings of a face on 127.0.0.1, any free port, before the stand-in."""
    return Settings(
        upstream_url=standin_url,
        host="127.0.0.1",
        grpc_port=0,
        retries=0,
        **overrides,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One upstream request: its path with query string, and the token it carried."""

    target: str
    token: str | None


class RecordingTransport(httpx.AsyncBaseTransport):
    """The gateway's own transport (aiohttp's pool), recording every upstream request but the
    era probes. Not httpcore's: a call cancelled at the wrong moment there could leave its
    connection open, which the cancellation tests then took for the gateway's doing."""

    def __init__(self, settings: Settings, calls: list[UpstreamCall]) -> None:
        self._inner = pooled_transport(settings)
        self._calls = calls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # The capability probes are the process's, not a call's (no token; once, then cached).
        if request.headers.get("User-Agent") != PROBE_USER_AGENT:
            self._calls.append(
                UpstreamCall(request.url.raw_path.decode(), request.headers.get(TOKEN_HEADER))
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class RunningGrpc:
    """A gRPC face serving in a thread: its address, metrics, the upstream calls it made and
    its live hub (on the server's loop)."""

    address: str
    metrics: GatewayMetrics
    calls: list[UpstreamCall] = field(default_factory=list)
    live: LiveHub | None = None
    loop: asyncio.AbstractEventLoop | None = None

    def live_counts(self) -> tuple[int, int]:
        """(open streams, running pollers) of the hub, read on the server's loop."""
        assert self.live is not None
        assert self.loop is not None
        hub = self.live

        async def read() -> tuple[int, int]:
            return hub.streams, hub.pollers

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(_START_TIMEOUT_S)

    def polls(self, view: str, outcome: str | None = None) -> float:
        """Polls of `view` the hub has made (`outcome`: changed, unchanged, error; None: all)."""
        outcomes = (outcome,) if outcome else ("changed", "unchanged", "error")
        labels = ({"view": view, "outcome": name} for name in outcomes)
        sample = self.metrics.registry.get_sample_value
        return sum(sample("aibridge_live_polls_total", label) or 0.0 for label in labels)

    def wait_polls(
        self, view: str, above: float, outcome: str | None = None, within: float = 20.0
    ) -> float:
        """Wait until `view` had more than `above` polls (of `outcome`); the count then."""
        deadline = time.monotonic() + within
        while (count := self.polls(view, outcome)) <= above:
            assert time.monotonic() < deadline, f"{view} polls ({outcome}) stayed at {count}"
            # A short pause between reads; the loop is bounded by the deadline.
            time.sleep(0.02)
        return count

    def wait_live(self, streams: int, pollers: int, within: float = 10.0) -> None:
        """Wait until the hub has `streams` streams and `pollers` pollers (AssertionError after
        `within` seconds)."""
        deadline = time.monotonic() + within
        counts = self.live_counts()
        while counts != (streams, pollers):
            assert time.monotonic() < deadline, f"hub at {counts}, not {(streams, pollers)}"
            # A short pause between reads; the loop is bounded by the deadline.
            time.sleep(0.02)
            counts = self.live_counts()


@contextlib.contextmanager
def run_grpc_in_thread(settings: Settings) -> Iterator[RunningGrpc]:
    """Serve the gRPC face for `settings` (grpc_port 0 gives a free port) until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, object] = {}
    calls: list[UpstreamCall] = []
    metrics = GatewayMetrics()
    stop = asyncio.Event()

    async def serve() -> None:
        client = UpstreamClient(settings, transport=RecordingTransport(settings, calls))
        hub = LiveHub(client, settings, metrics=metrics)
        server: GrpcServer | None = None
        try:
            server = await start_grpc(settings, client, metrics, live=hub)
            state["address"] = server.address
            state["live"] = hub
            ready.set()
            await stop.wait()
        finally:
            hub.close()
            if server is not None:
                await server.stop(0)
            await client.aclose()

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # surfaced to the caller below
            state["error"] = exc
        finally:
            ready.set()
            loop.close()

    thread = threading.Thread(target=target, name="grpc-test-server", daemon=True)
    thread.start()
    if not ready.wait(_START_TIMEOUT_S) or "address" not in state:
        raise RuntimeError(f"gRPC server did not start: {state.get('error')!r}")
    try:
        hub = state["live"]
        assert isinstance(hub, LiveHub)
        yield RunningGrpc(str(state["address"]), metrics, calls, hub, loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(_START_TIMEOUT_S)
