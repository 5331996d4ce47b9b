"""The gRPC face in `make bench`: the same frontend views as `aibridge.v1` calls (grpc.aio client).

Each view is the gRPC call(s) a backend would make for the data of the GraphQL query of the same
name (the dashboard through `ListSessions` with a `read_mask` naming `threads`). A view's answer
and the GraphQL answer are reduced to the same digest (ids, counts, names), so the bench can check
that both faces answered the same question before it compares their cost.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2 as catalog_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2_grpc as catalog_grpc
from aibridge_graphql.grpc.gen.aibridge.v1 import interception_service_pb2 as interception_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import (
    interception_service_pb2_grpc as interception_grpc,
)
from aibridge_graphql.grpc.gen.aibridge.v1 import resources_pb2 as pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc

T = TypeVar("T")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
# What `serve --grpc-port 0` prints once the face listens.
LISTENING = re.compile(r"gRPC listening on (\S+:\d+)")
CALL_TIMEOUT_S = 30.0
# ListModels/ListClients page size: the gateway's maximum, so one page holds every name.
NAMES_PAGE = 100

# The Session fields each GraphQL query selects (threads are the ones that cost calls).
DASHBOARD_MASK = [
    "session_id",
    "client",
    "models",
    "providers",
    "last_active_time",
    "last_prompt",
    "thread_count",
    "initiator",
    "token_usage",
    "threads",
]
DETAIL_MASK = [*DASHBOARD_MASK, "start_time", "end_time", "metadata"]

Digest = dict[str, Any]
# A view's gRPC call(s): a coroutine answering the view's digest.
ViewCall = Callable[["Stubs"], Coroutine[Any, Any, Digest]]


@dataclass(frozen=True)
class Stubs:
    """The three services over one channel, and the caller's credentials as metadata."""

    sessions: session_grpc.SessionServiceAsyncStub
    interceptions: interception_grpc.InterceptionServiceAsyncStub
    catalog: catalog_grpc.CatalogServiceAsyncStub
    metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GrpcView:
    """A view as gRPC calls: how many it makes (concurrently) and the digest of their answers."""

    name: str
    rpcs: int
    call: ViewCall


# ---------------------------------------------------------------------------------------------
# Digests: the same reduction of a GraphQL answer and of a gRPC answer.


def graphql_digest(name: str, body: dict[str, Any]) -> Digest:
    """The digest of the GraphQL answer of the view `name`."""
    data = body["data"]
    if name == "sessions dashboard":
        page = data["sessions"]
        return {
            "total": page["totalCount"],
            "sessions": [
                [s["sessionId"], s["threadCount"], [t["threadId"] for t in s["threads"]["nodes"]]]
                for s in page["nodes"]
            ],
        }
    if name == "session detail":
        session = data["session"]
        threads = session["threads"]
        return {
            "session": session["sessionId"],
            "thread_count": session["threadCount"],
            "threads": [[t["threadId"], len(t["agenticActions"])] for t in threads["nodes"]],
            "more": threads["pageInfo"]["hasNextPage"],
        }
    if name == "interceptions table":
        page = data["interceptions"]
        return {
            "total": page["totalCount"],
            "interceptions": [i["interceptionId"] for i in page["nodes"]],
            "more": page["pageInfo"]["hasNextPage"],
            "models": data["models"],
            "clients": data["clients"],
        }
    if name == "single resource (models)":
        return {"models": data["models"]}
    raise KeyError(f"no digest for the view {name!r}")


def _session_threads(session: pb.Session) -> list[str]:
    return [t.thread_id for t in session.threads]


async def dashboard(stubs: Stubs) -> Digest:
    """One ListSessions: 20 sessions, each with its first three threads (read_mask `threads`)."""
    response = await stubs.sessions.ListSessions(
        session_pb.ListSessionsRequest(
            page_size=20, read_mask=FieldMask(paths=DASHBOARD_MASK), thread_page_size=3
        ),
        metadata=stubs.metadata,
        timeout=CALL_TIMEOUT_S,
    )
    return {
        "total": response.total_size,
        "sessions": [
            [s.session_id, s.thread_count, _session_threads(s)] for s in response.sessions
        ],
    }


def session_detail(session_id: str) -> ViewCall:
    """One GetSession with its first 20 threads (read_mask `threads`)."""

    async def call(stubs: Stubs) -> Digest:
        response = await stubs.sessions.GetSession(
            session_pb.GetSessionRequest(
                session_id=session_id, read_mask=FieldMask(paths=DETAIL_MASK), thread_page_size=20
            ),
            metadata=stubs.metadata,
            timeout=CALL_TIMEOUT_S,
        )
        session = response.session
        return {
            "session": session.session_id,
            "thread_count": session.thread_count,
            "threads": [[t.thread_id, len(t.agentic_actions)] for t in session.threads],
            "more": bool(session.threads_next_page_token),
        }

    return call


def interceptions_table(provider: str) -> ViewCall:
    """ListInterceptions (25, filtered) with ListModels and ListClients for the drop-downs, all
    three at once, as a backend builds the table's page."""

    async def call(stubs: Stubs) -> Digest:
        page, models, clients = await asyncio.gather(
            stubs.interceptions.ListInterceptions(
                interception_pb.ListInterceptionsRequest(
                    page_size=25, filter=interception_pb.InterceptionFilter(provider=provider)
                ),
                metadata=stubs.metadata,
                timeout=CALL_TIMEOUT_S,
            ),
            stubs.catalog.ListModels(
                catalog_pb.ListModelsRequest(page_size=NAMES_PAGE),
                metadata=stubs.metadata,
                timeout=CALL_TIMEOUT_S,
            ),
            stubs.catalog.ListClients(
                catalog_pb.ListClientsRequest(page_size=NAMES_PAGE),
                metadata=stubs.metadata,
                timeout=CALL_TIMEOUT_S,
            ),
        )
        return {
            "total": page.total_size,
            "interceptions": [i.id for i in page.interceptions],
            "more": bool(page.next_page_token),
            "models": list(models.models),
            "clients": list(clients.clients),
        }

    return call


async def models(stubs: Stubs) -> Digest:
    """One ListModels."""
    response = await stubs.catalog.ListModels(
        catalog_pb.ListModelsRequest(page_size=NAMES_PAGE),
        metadata=stubs.metadata,
        timeout=CALL_TIMEOUT_S,
    )
    return {"models": list(response.models)}


def grpc_view(name: str, variables: dict[str, Any]) -> GrpcView:
    """The gRPC twin of the GraphQL view `name` with its `variables` (same session, same filter)."""
    if name == "sessions dashboard":
        return GrpcView(name, 1, dashboard)
    if name == "session detail":
        return GrpcView(name, 1, session_detail(str(variables["id"])))
    if name == "interceptions table":
        return GrpcView(name, 3, interceptions_table(str(variables["filter"]["provider"])))
    if name == "single resource (models)":
        return GrpcView(name, 1, models)
    raise KeyError(f"no gRPC twin for the view {name!r}")


# ---------------------------------------------------------------------------------------------
# The client: a grpc.aio channel on an event loop this (synchronous) bench drives call by call.


class NetworkDelay(grpc.aio.UnaryUnaryClientInterceptor):
    """Makes every call pay one emulated network round trip first (calls made at once pay it
    at once, as concurrent requests on one HTTP/2 connection do)."""

    def __init__(self, rtt_ms: float) -> None:
        self._seconds = rtt_ms / 1000

    async def intercept_unary_unary(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, Req], Awaitable[grpc.aio.UnaryUnaryCall[Req, Resp]]
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Req,
    ) -> Resp | grpc.aio.UnaryUnaryCall[Req, Resp]:
        await asyncio.sleep(self._seconds)  # the emulated round trip, not a wait for a server
        return await continuation(client_call_details, request)


class GrpcClient:
    """A grpc.aio channel to one gateway's gRPC face, with the caller's token as metadata
    (`rtt_ms`: every call first pays that emulated round trip)."""

    def __init__(self, address: str, token: str, rtt_ms: float = 0.0) -> None:
        self._loop = asyncio.new_event_loop()
        # The channel binds to the loop it is created on.
        self._channel = self._run(self._open(address, rtt_ms))
        self._stubs = Stubs(
            session_grpc.SessionServiceStub(self._channel),
            interception_grpc.InterceptionServiceStub(self._channel),
            catalog_grpc.CatalogServiceStub(self._channel),
            (("coder-session-token", token),),
        )

    @staticmethod
    async def _open(address: str, rtt_ms: float) -> grpc.aio.Channel:
        interceptors = [NetworkDelay(rtt_ms)] if rtt_ms > 0 else None
        channel = grpc.aio.insecure_channel(address, interceptors=interceptors)
        await asyncio.wait_for(channel.channel_ready(), CALL_TIMEOUT_S)
        return channel

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def answer(self, view: GrpcView) -> Digest:
        """The view's digest (one execution)."""
        return self._run(view.call(self._stubs))

    def timed(self, view: GrpcView) -> float:
        """Milliseconds one execution of the view takes, from first request to last answer."""

        async def once() -> float:
            start = time.perf_counter()
            await view.call(self._stubs)
            return (time.perf_counter() - start) * 1000

        return self._run(once())

    def close(self) -> None:
        """Close the channel and the loop."""
        self._run(self._channel.close())
        self._loop.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def grpc_address(log: Path, alive: Callable[[], bool], timeout: float) -> str:
    """The `HOST:PORT` a `serve --grpc-port 0` process printed to its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if match := LISTENING.search(log.read_text(errors="replace")):
            return match.group(1)
        if not alive():
            break
        time.sleep(0.05)  # a pause between reads of the log, bounded by the deadline
    raise RuntimeError(f"no 'gRPC listening on' line in {log}")
