"""The `aibridge.v1` services: each call builds its own `Loaders` with the caller's credentials.

Calls go through the same loader methods, with the same limits, as the GraphQL face's
resolvers for the same view, so a call costs the upstream what the GraphQL query costs:
ListSessions 1 (+1 per session when read_mask names `threads` or a `network_*` field: the
dashboard's 1 + N), GetSession 1 (+1 concurrent for threads or network detail, none when
its read_mask names nothing only the list item has: the detail is then the lookup),
ListSessionThreads 2 concurrent, ListInterceptions 1, ListModels/ListClients 1 per 1000 names,
ListProviders 1; an endpoint the era lacks 0 (`UpstreamUnsupported` from the loaders). Errors
propagate as exceptions; the interceptor (grpc/interceptors.py) turns them into
`google.rpc.Status`. WatchSessions and WatchSession stream the process's shared pollers
(core/live, grpc/live.py): their polls are the hub's, each event's extra calls its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

import grpc

from aibridge_graphql.core import pagination
from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.inputs import checked_text
from aibridge_graphql.core.live import Change, LiveHub, SessionsView, TimelineView
from aibridge_graphql.core.loaders import (
    LIST_LIMIT_MAX,
    THREADS_LIMIT_MAX,
    Loaders,
    loaders_for_request,
)
from aibridge_graphql.core.pricing import Pricer
from aibridge_graphql.grpc import convert, live, paging
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2 as catalog_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2_grpc as catalog_grpc
from aibridge_graphql.grpc.gen.aibridge.v1 import interception_service_pb2 as interception_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import (
    interception_service_pb2_grpc as interception_grpc,
)
from aibridge_graphql.grpc.gen.aibridge.v1 import resources_pb2 as pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.client import UpstreamClient
from aibridge_graphql.upstream.requests import session_path_exact

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")
# The dashboard's threads per session when the request leaves thread_page_size at 0.
DEFAULT_DASHBOARD_THREADS = 3


def _metadata(context: Context) -> dict[str, str]:
    """The call's text metadata, read as the GraphQL face reads HTTP headers (the credentials
    in `coder-session-token` or `authorization: Bearer …`, `cache-control`)."""
    # gRPC metadata keys are lower-case; binary (`-bin`) values are bytes, never a credential.
    return {
        key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)
    }


class Face:
    """What every service needs: the settings, the process's pooled upstream client and its
    live hub (shared with the GraphQL face, so a view watched from both is polled once)."""

    def __init__(
        self,
        settings: Settings,
        client: UpstreamClient,
        pricer: Pricer | None = None,
        *,
        live: LiveHub,
    ) -> None:
        self.settings = settings
        self.client = client
        self.pricer = pricer
        self.live = live

    def loaders(self, context: Context, skip_records: frozenset[str] = frozenset()) -> Loaders:
        """Fresh loaders holding this call's credentials and `cache-control`, under the caller's
        deadline when it is sooner than the gateway's own, parsing pages without `skip_records`;
        they die with the call's task."""
        return loaders_for_request(
            self.client,
            self.settings,
            _metadata(context),
            pricer=self.pricer,
            within_seconds=context.time_remaining(),
            skip_records=skip_records,
        )

    @contextlib.contextmanager
    def event_loaders(
        self, context: Context, skip_records: frozenset[str] = frozenset()
    ) -> Iterator[Loaders]:
        """Loaders for one event of a stream, closed once it is built: a stream outlives many
        events, each with its own deadline and call budget (as GraphQL's per event)."""
        loaders = loaders_for_request(
            self.client,
            self.settings,
            _metadata(context),
            pricer=self.pricer,
            within_seconds=context.time_remaining(),
            skip_records=skip_records,
            close_with_task=False,
        )
        try:
            yield loaders
        finally:
            loaders.close()

    def size(self, value: int, upstream_max: int, field: str = "page_size") -> int:
        """A page size within the setting and the upstream's cap (as GraphQL's `first`)."""
        maximum = pagination.size_limit(self.settings, upstream_max)
        return paging.page_size(
            value,
            default=min(self.settings.default_page_size, maximum),
            maximum=maximum,
            field=field,
        )


async def _gather(*awaitables: Awaitable[T]) -> list[T]:
    """All results; the first failure is raised once every awaitable has settled."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)  # type: ignore[arg-type]


def _threads_token(session_id: str, threads: list[m.Thread], has_next: bool) -> str:
    if not has_next or not threads:
        return ""
    return paging.encode_token("threads", str(threads[-1].id), paging.fingerprint(session_id))


class SessionService(session_grpc.SessionServiceServicer):
    """`aibridge.v1.SessionService`."""

    def __init__(self, face: Face) -> None:
        self._face = face

    async def _detailed(
        self,
        loaders: Loaders,
        raw: m.Session | m.SessionThreadsResponse,
        window: paging.Window | None,
        network: bool,
    ) -> pb.Session:
        """The session with its first threads (`window`) and/or its network detail: one
        `GET /sessions/{id}` serves both, as for GraphQL's `threads` and `networkCallLogs`."""
        message = convert.session(raw)
        if window is not None:
            page = await loaders.threads_page(raw.id, limit=window.limit)
            cut = paging.cut(page.threads, window)
            message.threads.extend(convert.thread(t) for t in cut.items)
            message.threads_next_page_token = _threads_token(raw.id, list(cut.items), cut.has_next)
        if network:
            convert.add_network_detail(message, await loaders.session_detail(raw.id))
        return message

    def _dashboard_threads(self, mask: Any, thread_page_size: int) -> paging.Window | None:
        """Each session's first threads when the mask names them (0: 3), else None."""
        if not convert.wants_threads(mask):
            return None
        size = self._face.size(
            thread_page_size or DEFAULT_DASHBOARD_THREADS, THREADS_LIMIT_MAX, "thread_page_size"
        )
        return paging.Window(size, None)

    async def ListSessions(
        self, request: session_pb.ListSessionsRequest, context: Context
    ) -> session_pb.ListSessionsResponse:
        face = self._face
        mask = convert.read_mask(request.read_mask, request.HasField("read_mask"))
        search = convert.session_filter(request.filter)
        whole = pagination.selects_whole_sessions(search)
        # A filter on interceptions pages by offset: Coder places its session cursor by the
        # whole session's activity but orders by the filtered one (see GraphQL's `sessions`).
        kind = "sessions" if whole else "filtered_sessions"
        bound = paging.fingerprint(kind, search)
        size = face.size(request.page_size, LIST_LIMIT_MAX)
        after = paging.decode_token(kind, request.page_token, bound)
        window = paging.Window(size, after)
        thread_window = self._dashboard_threads(mask, request.thread_page_size)
        offset = 0 if whole else paging.cursor_offset(after)
        loaders = face.loaders(context, convert.unread_records(mask))
        response = await loaders.sessions_page(
            search,
            limit=window.limit,
            after_session_id=after if whole else None,
            offset=offset,
            whole_sessions=whole,
        )
        cut = paging.cut(response.sessions, window)
        network = convert.wants_network_detail(mask)
        if thread_window is None and not network:
            sessions = [convert.session(raw) for raw in cut.items]
        else:
            sessions = await _gather(
                *(self._detailed(loaders, raw, thread_window, network) for raw in cut.items)
            )
        token = ""
        if cut.has_next and cut.items:
            last = cut.items[-1].id if whole else str(offset + len(cut.items))
            token = paging.encode_token(kind, last, bound)
        return session_pb.ListSessionsResponse(
            sessions=[convert.masked(s, mask) for s in sessions],
            next_page_token=token,
            total_size=response.count,
        )

    async def GetSession(
        self, request: session_pb.GetSessionRequest, context: Context
    ) -> session_pb.GetSessionResponse:
        face = self._face
        if not request.session_id:
            # Coder reads an empty `session_id` filter as none: it would return any session.
            raise _required("session_id")
        checked_text("session_id", request.session_id)
        mask = convert.read_mask(request.read_mask, request.HasField("read_mask"))
        initiator = _initiator(request)
        loaders = face.loaders(context, convert.unread_records(mask))
        network = convert.wants_network_detail(mask)
        if (
            initiator is None
            and convert.detail_answers(mask)
            and session_path_exact(request.session_id)
        ):
            # The session-detail call is the lookup too, as for GraphQL's `session(sessionId:)`.
            window = (
                paging.Window(
                    face.size(request.thread_page_size, THREADS_LIMIT_MAX, "thread_page_size"),
                    None,
                )
                if convert.wants_threads(mask)
                else None
            )
            if window is not None:
                loaders.prefetch_threads(request.session_id, limit=window.limit, after_id=None)
            header = await loaders.session_by_detail(request.session_id)
            message = await self._detailed(loaders, header, window, network)
            return session_pb.GetSessionResponse(session=convert.masked(message, mask))
        if not convert.wants_threads(mask):
            if not network:
                raw = await loaders.find_session(request.session_id, initiator)
                return session_pb.GetSessionResponse(
                    session=convert.masked(convert.session(raw), mask)
                )
            # The lookup and the detail at once; GraphQL makes the same two calls.
            found, detail = await _gather(
                loaders.find_session(request.session_id, initiator),
                loaders.session_detail(request.session_id),
            )
            assert isinstance(found, m.Session)
            assert isinstance(detail, m.SessionThreadsResponse)
            message = convert.session(found)
            convert.add_network_detail(message, detail)
            return session_pb.GetSessionResponse(session=convert.masked(message, mask))
        window = paging.Window(
            face.size(request.thread_page_size, THREADS_LIMIT_MAX, "thread_page_size"), None
        )
        # Both calls at once, as GraphQL's `session(sessionId:) { threads }` prefetches.
        loaders.prefetch_threads(request.session_id, limit=window.limit, after_id=None)
        raw = await loaders.find_session(request.session_id, initiator)
        message = await self._detailed(loaders, raw, window, network)
        return session_pb.GetSessionResponse(session=convert.masked(message, mask))

    async def ListSessionThreads(
        self, request: session_pb.ListSessionThreadsRequest, context: Context
    ) -> session_pb.ListSessionThreadsResponse:
        face = self._face
        if not request.session_id:
            raise _required("session_id")
        checked_text("session_id", request.session_id)
        size = face.size(request.page_size, THREADS_LIMIT_MAX)
        bound = paging.fingerprint(request.session_id)
        after = paging.cursor_uuid(paging.decode_token("threads", request.page_token, bound))
        window = paging.Window(size, str(after) if after else None)
        initiator = _initiator(request)
        loaders = face.loaders(context)
        page, raw = await _gather(
            loaders.threads_page(request.session_id, limit=window.limit, after_id=after),
            loaders.find_session(request.session_id, initiator),
        )
        assert isinstance(page, m.SessionThreadsResponse)
        assert isinstance(raw, m.Session)
        cut = paging.cut(page.threads, window)
        return session_pb.ListSessionThreadsResponse(
            threads=[convert.thread(t) for t in cut.items],
            next_page_token=_threads_token(request.session_id, list(cut.items), cut.has_next),
            total_size=raw.threads,
        )

    async def WatchSessions(
        self, request: session_pb.WatchSessionsRequest, context: Context
    ) -> AsyncIterator[session_pb.WatchSessionsResponse]:
        face = self._face
        mask = convert.read_mask(request.read_mask, request.HasField("read_mask"))
        view = SessionsView(
            convert.session_filter(request.filter),
            live.watched_count(request.session_count),
            live.idle_after(face.settings),
        )
        thread_window = self._dashboard_threads(mask, request.thread_page_size)
        network = convert.wants_network_detail(mask)
        detailed = thread_window is not None or network
        headers = _metadata(context)
        async with face.live.watch(headers, view, existing=request.include_existing) as stream:
            async for item in stream:
                observed = live.now()
                if isinstance(item, Exception):
                    yield live.sessions_error(live.poll_error(item, live.WATCH_SESSIONS), observed)
                    continue
                if not detailed:
                    for change in item:
                        session = convert.masked(convert.session(change.value), mask)
                        yield live.session_event(change.kind, session, observed)
                    continue
                built = await asyncio.gather(
                    *(self._event_session(context, c, mask, thread_window) for c in item),
                    return_exceptions=True,
                )
                for change, result in zip(item, built, strict=True):
                    if isinstance(result, pb.Session):
                        yield live.session_event(change.kind, result, observed)
                    elif isinstance(result, Exception):
                        status = live.event_error(result, live.WATCH_SESSIONS)
                        yield live.sessions_error(status, observed)
                    else:
                        raise result

    async def _event_session(
        self, context: Context, change: Change, mask: Any, window: paging.Window | None
    ) -> pb.Session:
        """A watched session with what its mask adds (threads, network detail): its own calls,
        with fresh loaders."""
        network = convert.wants_network_detail(mask)
        with self._face.event_loaders(context, convert.unread_records(mask)) as loaders:
            message = await self._detailed(loaders, change.value, window, network)
        return convert.masked(message, mask)

    async def WatchSession(
        self, request: session_pb.WatchSessionRequest, context: Context
    ) -> AsyncIterator[session_pb.WatchSessionResponse]:
        face = self._face
        if not request.session_id:
            raise _required("session_id")
        checked_text("session_id", request.session_id)
        mask = live.timeline_mask(
            convert.read_mask(request.read_mask, request.HasField("read_mask"))
        )
        view = TimelineView(request.session_id, live.idle_after(face.settings))
        headers = _metadata(context)
        async with face.live.watch(headers, view, existing=request.include_existing) as stream:
            async for item in stream:
                observed = live.now()
                if isinstance(item, Exception):
                    yield live.timeline_error(live.poll_error(item, live.WATCH_SESSION), observed)
                    continue
                headers_seen: dict[int, pb.Session] = {}
                for change in item:
                    # Changes of one poll share its header: built (and looked up) once.
                    key = id(change.session)
                    if key not in headers_seen:
                        try:
                            headers_seen[key] = await self._timeline_session(
                                context, change.session, mask
                            )
                        except Exception as exc:  # this event fails, the stream goes on
                            status = live.event_error(exc, live.WATCH_SESSION)
                            yield live.timeline_error(status, observed)
                            continue
                    yield live.timeline_event(change, headers_seen[key], observed)

    async def _timeline_session(
        self, context: Context, header: m.SessionThreadsResponse, mask: Any
    ) -> pb.Session:
        """The session of a timeline event: the poll's detail header, its `network_*` fields
        when named, and the list item's own fields (one `GET /sessions`) when named."""
        if live.wants_listed(mask):
            with self._face.event_loaders(context) as loaders:
                found = await loaders.find_session(header.id, str(header.initiator.id))
            message = convert.session(found)
        else:
            message = convert.session(header)
        if convert.wants_network_detail(mask):
            convert.add_network_detail(message, header)
        return convert.masked(message, mask)


class InterceptionService(interception_grpc.InterceptionServiceServicer):
    """`aibridge.v1.InterceptionService`."""

    def __init__(self, face: Face) -> None:
        self._face = face

    async def ListInterceptions(
        self, request: interception_pb.ListInterceptionsRequest, context: Context
    ) -> interception_pb.ListInterceptionsResponse:
        face = self._face
        search = convert.interception_filter(request.filter)
        bound = paging.fingerprint("interceptions", search)
        size = face.size(request.page_size, LIST_LIMIT_MAX)
        after = paging.cursor_uuid(paging.decode_token("interceptions", request.page_token, bound))
        window = paging.Window(size, str(after) if after else None)
        response = await face.loaders(context).interceptions_page(
            search, limit=window.limit, after_id=after
        )
        cut = paging.cut(response.results, window)
        token = ""
        if cut.has_next and cut.items:
            token = paging.encode_token("interceptions", str(cut.items[-1].id), bound)
        return interception_pb.ListInterceptionsResponse(
            interceptions=[convert.interception(raw) for raw in cut.items],
            next_page_token=token,
            total_size=response.count,
        )


def _slice(
    kind: str, names: list[Any], page_size: int, page_token: str, bound: str
) -> tuple[list[Any], str]:
    """A page of an in-memory list (the upstream lists names whole), by offset token."""
    offset = paging.cursor_offset(paging.decode_token(kind, page_token, bound))
    page = names[offset : offset + page_size]
    end = offset + len(page)
    token = paging.encode_token(kind, str(end), bound) if end < len(names) else ""
    return page, token


class CatalogService(catalog_grpc.CatalogServiceServicer):
    """`aibridge.v1.CatalogService`."""

    def __init__(self, face: Face) -> None:
        self._face = face

    async def _names(
        self, kind: str, page_size: int, page_token: str, prefix: str, context: Context
    ) -> tuple[list[str], str, int]:
        size = self._face.size(page_size, LIST_LIMIT_MAX + 1)
        checked_text("prefix", prefix)
        bound = paging.fingerprint(kind, prefix)
        names = await self._face.loaders(context).strings(kind, prefix or None)
        page, token = _slice(kind, names, size, page_token, bound)
        return page, token, len(names)

    async def ListModels(
        self, request: catalog_pb.ListModelsRequest, context: Context
    ) -> catalog_pb.ListModelsResponse:
        page, token, total = await self._names(
            "models", request.page_size, request.page_token, request.prefix, context
        )
        return catalog_pb.ListModelsResponse(models=page, next_page_token=token, total_size=total)

    async def ListClients(
        self, request: catalog_pb.ListClientsRequest, context: Context
    ) -> catalog_pb.ListClientsResponse:
        page, token, total = await self._names(
            "clients", request.page_size, request.page_token, request.prefix, context
        )
        return catalog_pb.ListClientsResponse(clients=page, next_page_token=token, total_size=total)

    async def ListProviders(
        self, request: catalog_pb.ListProvidersRequest, context: Context
    ) -> catalog_pb.ListProvidersResponse:
        face = self._face
        size = face.size(request.page_size, LIST_LIMIT_MAX + 1)
        # The loaders' `GET /providers`: UpstreamUnsupported, with no call, on a sessions-era Coder.
        providers = [convert.provider(item) for item in await face.loaders(context).provider_list()]
        page, token = _slice("providers", providers, size, request.page_token, paging.fingerprint())
        return catalog_pb.ListProvidersResponse(
            providers=page, next_page_token=token, total_size=len(providers)
        )


def _initiator(
    request: session_pb.GetSessionRequest | session_pb.ListSessionThreadsRequest,
) -> str | None:
    """The request's optional initiator, within the limits of every text input."""
    return checked_text("initiator", request.initiator) if request.HasField("initiator") else None


def _required(field: str) -> BadUserInput:
    return BadUserInput(
        f"`{field}` must not be empty.",
        extensions={"validations": [{"field": field, "detail": "must not be empty"}]},
    )
