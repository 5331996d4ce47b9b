"""Per-request data loaders: one upstream request at most once per GraphQL request.

`Loaders` is built for each HTTP request (aiodataloader grabs the running loop) and holds:
- one list loader per upstream resource, keyed by the normalized `UpstreamRequest`: the same key
  costs one call however many fields ask for it; distinct keys of one tick go out concurrently,
  bounded by a semaphore (`settings.upstream_concurrency`); a failing key fails only itself;
- by-id loaders (user, session, interception, thread) that look first in the list responses the
  request has loaded (indexed on the first lookup), falling back to one targeted list query when
  an entity was not seen yet (the API has no get-by-id for interceptions, users or threads).
The caller's credentials live here and die with the request, and so does its `Deadline`: every
upstream call (and the wait for a concurrency slot) runs under it. `close()` cancels the upstream
calls still running, for a request that ended or was cancelled (its client went away).
Each call they send spends from the request's `CallBudget` (core/call_budget.py); an answer the
shared response cache holds (core/cache.py, opt-in) is no call and spends nothing.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

from aiodataloader import DataLoader
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from aibridge_graphql.core.cache import Bypass, CacheView, cache_for
from aibridge_graphql.core.call_budget import CallBudget
from aibridge_graphql.core.errors import NotFound, UpstreamUnsupported
from aibridge_graphql.core.pricing import Pricer
from aibridge_graphql.core.refs import InterceptionRef, SessionRef, ThreadRef
from aibridge_graphql.core.scope import observe_batch
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.capabilities import Capabilities
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.deadline import Deadline, within
from aibridge_graphql.upstream.errors import (
    DeadlineExceeded,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamUnauthorized,
)
from aibridge_graphql.upstream.observe import endpoint_template, report_deadline
from aibridge_graphql.upstream.requests import (
    UpstreamRequest,
    clients_request,
    groups_ai_spend_request,
    interceptions_request,
    models_request,
    providers_request,
    session_threads_request,
    sessions_request,
    user_ai_spend_request,
)
from aibridge_graphql.upstream.search_query import InterceptionFilter, SessionFilter

K = TypeVar("K")
V = TypeVar("V")
ModelT = TypeVar("ModelT", bound=BaseModel)

# The upstream's hard limits (CONTRACT.md): list endpoints take at most 1000, threads 200.
LIST_LIMIT_MAX = 1000
THREADS_LIMIT_MAX = 200
# Bounds on the fallback walks, so a lookup can never loop without end.
_MAX_LOOKUP_PAGES = 50
# `GET /providers` answers bare names (generated docs) or objects (after coder/coder#28966).
_PROVIDERS = TypeAdapter(list[m.Provider | str])
# Coder's 404 of `GET /sessions/{id}` when its sessions query finds none (CONTRACT.md).
_DETAIL_NOT_FOUND = "Session not found."


class RequestCancelled(Exception):
    """The value of a key whose upstream call `Loaders.close()` cancelled (nobody reads it)."""


def _loader(
    name: str, batch: Callable[[list[K]], Awaitable[list[V | Exception]]]
) -> DataLoader[K, V]:
    async def batch_load(keys: list[K]) -> list[V]:
        observe_batch(name, len(keys))
        # aiodataloader fails a key whose value is an Exception; its types do not say so.
        return cast(list[V], await batch(keys))

    return DataLoader(batch_load_fn=batch_load)


class Loaders:
    """The per-request registry of data loaders (see the module docstring)."""

    def __init__(
        self,
        client: UpstreamClient,
        credentials: Credentials | None,
        *,
        concurrency: int,
        deadline: Deadline | None = None,
        budget: CallBudget | None = None,
        pricer: Pricer | None = None,
        cache: CacheView | None = None,
    ) -> None:
        self._client = client
        # This caller's view of the shared response cache (None: off, or an anonymous caller).
        self._cache = cache
        # The process's pricer (built once at start); the library's prices when none is given.
        self.pricer = pricer or default_pricer()
        self._credentials = credentials
        self.deadline = deadline
        # Every call the loaders send spends from it; de-duplicated loads never reach it.
        self._budget = budget or CallBudget(None)
        self._slots = asyncio.Semaphore(concurrency)
        # Every task running upstream work for this request, so that `close()` can cancel them.
        self._tasks: set[asyncio.Task[Any]] = set()
        # List loads in flight: a by-id lookup waits for them before its own fallback call,
        # since the entity it wants may be in one of them.
        self._inflight: set[asyncio.Future[Any]] = set()
        # `GET /sessions` requests whose filter selects whole sessions (exact aggregates).
        self._whole_session_requests: set[UpstreamRequest] = set()
        self._seen_users: dict[UUID, m.MinimalUser] = {}
        self._seen_sessions: dict[SessionRef, m.Session] = {}
        self._seen_interceptions: dict[InterceptionRef, m.Interception] = {}
        self._seen_threads: dict[ThreadRef, m.Thread] = {}
        # Pages loaded since the last by-id lookup, not yet in the `_seen_*` indexes.
        self._unindexed: list[Callable[[], None]] = []

        # The first session-detail load of each session id: the network fields read it.
        self._details: dict[str, asyncio.Future[m.SessionThreadsResponse]] = {}
        # Record lists (upstream/projection.py) this request never reads: its pages are parsed
        # without them. A face that knows what the request selects narrows it before loading.
        self.skip_records: frozenset[str] = frozenset()

    @classmethod
    def for_request(
        cls,
        client: UpstreamClient,
        credentials: Credentials | None,
        settings: Settings,
        *,
        pricer: Pricer | None = None,
        within_seconds: float | None = None,
        bypass: Bypass = Bypass.NONE,
    ) -> Loaders:
        """Fresh loaders for one request or call, whatever the face: the caller's credentials,
        the settings' concurrency and call budget, one deadline (`request_deadline`, or
        `within_seconds` when the caller's own is sooner) and the response cache when it is on
        (`bypass`: what the request's `Cache-Control` asks of it)."""
        seconds = settings.request_deadline
        if within_seconds is not None:
            seconds = min(seconds, within_seconds)
        shared = cache_for(client, settings)
        return cls(
            client,
            credentials,
            concurrency=settings.upstream_concurrency,
            deadline=Deadline.after(seconds),
            budget=CallBudget(settings.upstream_call_budget),
            pricer=pricer,
            cache=shared.view(client, credentials, bypass) if shared is not None else None,
        )

    # -- the loaders, each built on first use: most requests need one or two ------------------

    @functools.cached_property
    def interceptions(self) -> DataLoader[UpstreamRequest, m.ListInterceptionsResponse]:
        return _loader(
            "interceptions", self._model_batch(m.ListInterceptionsResponse, self._saw_interceptions)
        )

    @functools.cached_property
    def sessions(self) -> DataLoader[UpstreamRequest, m.ListSessionsResponse]:
        return _loader("sessions", self._model_batch(m.ListSessionsResponse, self._saw_sessions))

    @functools.cached_property
    def session_threads(self) -> DataLoader[UpstreamRequest, m.SessionThreadsResponse]:
        return _loader(
            "session_threads", self._model_batch(m.SessionThreadsResponse, self._saw_threads)
        )

    @functools.cached_property
    def models(self) -> DataLoader[UpstreamRequest, list[str]]:
        return _loader("models", self._strings_batch)

    @functools.cached_property
    def clients(self) -> DataLoader[UpstreamRequest, list[str]]:
        return _loader("clients", self._strings_batch)

    @functools.cached_property
    def providers(self) -> DataLoader[UpstreamRequest, list[m.Provider]]:
        return _loader("providers", self._batch_each(self._fetch_providers))

    @functools.cached_property
    def ai_spend(self) -> DataLoader[UpstreamRequest, m.UserAISpendStatus]:
        # Coder's spend routes (AI Gateway era, outside its prefix), one call per distinct key.
        return _loader("ai_spend", self._batch_each(self._spend_fetcher(m.UserAISpendStatus)))

    @functools.cached_property
    def groups_ai_spend(self) -> DataLoader[UpstreamRequest, m.OrganizationGroupsAISpend]:
        return _loader(
            "groups_ai_spend", self._batch_each(self._spend_fetcher(m.OrganizationGroupsAISpend))
        )

    @functools.cached_property
    def user(self) -> DataLoader[UUID, m.MinimalUser]:
        return _loader("user", self._batch_each(self._find_user))

    @functools.cached_property
    def session(self) -> DataLoader[SessionRef, m.Session]:
        return _loader("session", self._batch_each(self._find_session))

    @functools.cached_property
    def interception(self) -> DataLoader[InterceptionRef, m.Interception]:
        return _loader("interception", self._batch_each(self._find_interception))

    @functools.cached_property
    def thread(self) -> DataLoader[ThreadRef, m.Thread]:
        return _loader("thread", self._batch_each(self._find_thread))

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Cancel the upstream work still running (the request is over or was cancelled).

        It also drops what the request loaded and the loaders themselves: their batch functions
        refer back to this object (a reference cycle), so without this the request's pages,
        models and futures would wait for the cycle collector; dropped, they are freed at once.
        """
        for task in list(self._tasks):
            task.cancel()
        for name, loader in list(vars(self).items()):
            if isinstance(loader, DataLoader):
                loader.clear_all()
                del self.__dict__[name]
        self._inflight.clear()
        self._whole_session_requests.clear()
        self._seen_users.clear()
        self._seen_sessions.clear()
        self._seen_interceptions.clear()
        self._seen_threads.clear()
        self._unindexed.clear()
        self._details.clear()

    async def _settle(self, awaitables: Iterable[Coroutine[Any, Any, V]]) -> list[V | Exception]:
        """Await all; an `Exception` becomes that key's value, cancellation still propagates.

        A call that `close()` cancelled resolves its key with `RequestCancelled`, so that nothing
        waits for it forever.
        """
        tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
        self._tasks.update(tasks)
        for task in tasks:
            task.add_done_callback(self._tasks.discard)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        out: list[V | Exception] = []
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                out.append(RequestCancelled("the request was cancelled"))
            elif isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            else:
                out.append(result)
        return out

    # -- raw upstream calls -------------------------------------------------------------------

    async def capabilities(self) -> Capabilities:
        """What the upstream serves (detected once per process, re-checked when stale)."""
        found = await self._client.capabilities.ensure()
        if found.status == "no-api":
            raise UpstreamUnsupported(
                found.reason or "The upstream serves no AI Bridge API.", missing="the AI Bridge API"
            )
        return found

    async def _slot(self, request: UpstreamRequest) -> None:
        """Take a concurrency slot, waiting no longer than the deadline."""
        if not self._slots.locked():
            # A free slot is taken without waiting: no deadline timer to arm and cancel.
            await self._slots.acquire()
            return
        try:
            async with within(self.deadline):
                await self._slots.acquire()
        except DeadlineExceeded as exc:
            first = self.deadline.first_report() if self.deadline is not None else False
            report_deadline(request, exc.seconds, first)
            raise

    async def _load(self, request: UpstreamRequest, parse: Callable[[bytes], V]) -> V:
        """`parse` of the raw body of `request`: from the response cache when it holds it (then
        no call, no budget, no slot), else from the upstream (stored once it parsed)."""
        await self.capabilities()
        if self._cache is None:
            return parse(await self._upstream_bytes(request))
        return await self._cache.fetch(request, self._upstream_bytes, parse)

    async def _upstream_bytes(self, request: UpstreamRequest) -> bytes:
        self._budget.spend()
        await self._slot(request)
        try:
            return await self._client.get_bytes(request, self._credentials, deadline=self.deadline)
        finally:
            self._slots.release()

    async def _fetch(self, request: UpstreamRequest, model_type: type[ModelT]) -> ModelT:
        return await self._load(
            request,
            lambda content: self._client.parse_model(
                request, content, model_type, self.skip_records
            ),
        )

    def _model_batch(
        self, model_type: type[ModelT], saw: Callable[[UpstreamRequest, ModelT], None]
    ) -> Callable[[list[UpstreamRequest]], Awaitable[list[ModelT | Exception]]]:
        async def fetch_and_note(request: UpstreamRequest) -> ModelT:
            response = await self._fetch(request, model_type)
            # Noted before the key's future resolves, so waiting lookups find the entities;
            # indexed only when a by-id lookup runs (rare), not for every list page.
            self._unindexed.append(functools.partial(saw, request, response))
            return response

        async def batch(keys: list[UpstreamRequest]) -> list[ModelT | Exception]:
            return await self._settle(fetch_and_note(key) for key in keys)

        return batch

    async def _fetch_strings(self, request: UpstreamRequest) -> list[str]:
        return await self._load(request, functools.partial(self._client.parse_strings, request))

    async def _fetch_providers(self, request: UpstreamRequest) -> list[m.Provider]:
        if (await self.capabilities()).providers is False:
            raise UpstreamUnsupported(
                "This Coder release has no `GET /providers` (added with the AI Gateway API); "
                "the providers in use are listed on each session (`Session.providers`).",
                missing="GET /providers",
                instead="sessions",
            )

        def parse(content: bytes) -> list[m.Provider]:
            try:
                items = _PROVIDERS.validate_python(self._client.parse_json(request, content))
            except PydanticValidationError:
                raise UpstreamProtocolError("upstream /providers: not a provider list") from None
            return [m.Provider(name=item) if isinstance(item, str) else item for item in items]

        return await self._load(request, parse)

    def _spend_fetcher(
        self, model_type: type[ModelT]
    ) -> Callable[[UpstreamRequest], Coroutine[Any, Any, ModelT]]:
        async def fetch(request: UpstreamRequest) -> ModelT:
            if (await self.capabilities()).interceptions is True:
                # The sessions era predates Coder's AI spend and budgets: nothing to ask.
                raise UpstreamUnsupported(
                    "This Coder release has no AI spend or budgets (added with the AI Gateway "
                    f"API, enterprise): `GET {endpoint_of(request)}` is missing.",
                    missing=f"GET {endpoint_of(request)}",
                )
            return await self._fetch(request, model_type)

        return fetch

    async def _strings_batch(self, keys: list[UpstreamRequest]) -> list[list[str] | Exception]:
        return await self._settle(self._fetch_strings(key) for key in keys)

    def _batch_each(
        self,
        find: Callable[[K], Coroutine[Any, Any, V]],
    ) -> Callable[[list[K]], Awaitable[list[V | Exception]]]:
        async def batch(keys: list[K]) -> list[V | Exception]:
            return await self._settle(find(key) for key in keys)

        return batch

    # -- what the request has seen, for by-id lookups -------------------------------------------

    async def _settled_index(self) -> None:
        """Wait for the list loads in flight, then index every page loaded so far."""
        await self._quiesce()
        unindexed, self._unindexed = self._unindexed, []
        for index in unindexed:
            index()

    def _saw_user(self, user: m.MinimalUser) -> None:
        self._seen_users.setdefault(user.id, user)

    def _saw_sessions(self, request: UpstreamRequest, response: m.ListSessionsResponse) -> None:
        whole = request in self._whole_session_requests
        for session in response.sessions:
            self._saw_user(session.initiator)
            if whole:
                ref = SessionRef(session.id, session.initiator.id)
                self._seen_sessions.setdefault(ref, session)

    def _saw_interceptions(self, _: UpstreamRequest, response: m.ListInterceptionsResponse) -> None:
        for item in response.results:
            self._saw_user(item.initiator)
            ref = InterceptionRef(item.id, item.initiator.id, item.started_at)
            self._seen_interceptions.setdefault(ref, item)

    def _saw_threads(self, _: UpstreamRequest, response: m.SessionThreadsResponse) -> None:
        self._saw_user(response.initiator)
        session = SessionRef(response.id, response.initiator.id)
        for thread in response.threads:
            ref = ThreadRef(session, thread.id)
            self._seen_threads.setdefault(ref, thread)

    def _track(self, future: asyncio.Future[V]) -> asyncio.Future[V]:
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return future

    async def _quiesce(self) -> None:
        """Wait for the list loads in flight (their failures are their awaiters' business)."""
        pending = [future for future in self._inflight if not future.done()]
        if pending:
            await asyncio.wait(pending)

    # -- pages --------------------------------------------------------------------------------

    async def sessions_page(
        self,
        session_filter: SessionFilter,
        *,
        limit: int,
        after_session_id: str | None = None,
        offset: int | None = None,
        whole_sessions: bool = False,
    ) -> m.ListSessionsResponse:
        """One page of `GET /sessions`.

        `whole_sessions` says the filter selects whole sessions (only initiator/session id), so
        the aggregates are exact and by-id session lookups may use them.
        """
        request = sessions_request(
            session_filter, limit=limit, after_session_id=after_session_id, offset=offset
        )
        if whole_sessions:
            self._whole_session_requests.add(request)
        return await self._track(self.sessions.load(request))

    async def interceptions_page(
        self, interception_filter: InterceptionFilter, *, limit: int, after_id: UUID | None = None
    ) -> m.ListInterceptionsResponse:
        """One page of `GET /interceptions`; `UpstreamUnsupported` on a Coder without it."""
        if (await self.capabilities()).interceptions is False:
            raise UpstreamUnsupported(
                "This Coder release has no `GET /interceptions` (removed with the AI Gateway "
                "API in mid-2026): query `sessions` and their `threads` instead.",
                missing="GET /interceptions",
                instead="sessions",
            )
        request = interceptions_request(
            interception_filter, limit=limit, after_id=str(after_id) if after_id else None
        )
        return await self._track(self.interceptions.load(request))

    async def threads_page(
        self,
        session_id: str,
        *,
        limit: int,
        after_id: UUID | None = None,
        before_id: UUID | None = None,
    ) -> m.SessionThreadsResponse:
        """One page of `GET /sessions/{id}`."""
        return await self._threads_future(session_id, limit, after_id, before_id)

    def prefetch_threads(self, session_id: str, *, limit: int, after_id: UUID | None) -> None:
        """Start loading a forward threads page now; `threads_page` later finds it loaded.

        Nobody may ask for it after all (the session may turn out not to exist), so its failure
        is observed here rather than reported by asyncio as never retrieved.
        """
        self._threads_future(session_id, limit, after_id, None).add_done_callback(_observe)

    def _threads_future(
        self, session_id: str, limit: int, after_id: UUID | None, before_id: UUID | None
    ) -> asyncio.Future[m.SessionThreadsResponse]:
        request = session_threads_request(
            session_id,
            limit=limit,
            after_id=str(after_id) if after_id else None,
            before_id=str(before_id) if before_id else None,
        )
        future = self._track(self.session_threads.load(request))
        self._details.setdefault(session_id, future)
        return future

    async def session_detail(self, session_id: str) -> m.SessionThreadsResponse:
        """The session-level part of `GET /sessions/{id}` (network calls...), from any load of it.

        Every page of the endpoint carries the same session header, so a threads page this
        request loads anyway serves; the one yield lets sibling `threads` fields of the same
        tick start theirs first. Only without one does it load a page of one thread.
        """
        if session_id not in self._details:
            await asyncio.sleep(0)
        if session_id not in self._details:
            self._threads_future(session_id, 1, None, None)
        return await self._details[session_id]

    async def session_by_detail(self, session_id: str) -> m.SessionThreadsResponse | m.Session:
        """The session a lookup by id alone finds, from the session-detail page (`session_detail`)
        when it answers, for an id that reaches Coder's handler unchanged (`session_path_exact`).

        Coder's handler finds the session as `find_session(session_id, None)` does (its sessions
        query filtered by the id, the most recently active first), so its "Session not found." is
        that lookup's NotFound. A detail failing where the lookup may not (a bad thread cursor, a
        5xx, a body too large or malformed, another 404) leaves the session to the lookup, as
        when both ran: the threads then carry the detail's error.
        """
        try:
            return await self.session_detail(session_id)
        except UpstreamNotFound as exc:
            if exc.message == _DETAIL_NOT_FOUND:
                raise _session_not_found(session_id) from None
        except (UpstreamUnauthorized, UpstreamForbidden, DeadlineExceeded):
            raise  # the lookup's answer would be the same
        except UpstreamError:
            pass
        return await self.find_session(session_id, None)

    async def user_ai_spend(self, user: str) -> m.UserAISpendStatus:
        """Coder's spend status of a user (id, username or `me`): `GET /api/v2/users/{u}/ai/spend`.

        `UpstreamUnsupported` on a sessions-era Coder, which has no spend routes.
        """
        return await self.ai_spend.load(user_ai_spend_request(user))

    async def groups_spend(
        self, organization: str, group_ids: Sequence[str]
    ) -> m.OrganizationGroupsAISpend:
        """Coder's spend and budgets of an organization's groups (ids sorted, deduplicated)."""
        ids = sorted(set(group_ids))
        return await self.groups_ai_spend.load(groups_ai_spend_request(organization, ids))

    async def provider_list(self) -> list[m.Provider]:
        """`GET /providers`, as objects whichever shape the upstream answers."""
        return await self.providers.load(providers_request())

    async def strings(self, kind: str, prefix: str | None) -> list[str]:
        """Every model (`kind="models"`) or client name, paging by `offset` until exhausted."""
        loader, build = (
            (self.models, models_request) if kind == "models" else (self.clients, clients_request)
        )
        out: list[str] = []
        for page in range(_MAX_LOOKUP_PAGES):
            offset = page * LIST_LIMIT_MAX
            batch = await loader.load(build(prefix, limit=LIST_LIMIT_MAX, offset=offset or None))
            out.extend(batch)
            if len(batch) < LIST_LIMIT_MAX:
                break
        return out

    # -- by-id fallbacks ----------------------------------------------------------------------

    async def _find_user(self, user_id: UUID) -> m.MinimalUser:
        await self._settled_index()
        if user_id in self._seen_users:
            return self._seen_users[user_id]
        # No users endpoint in the AI Bridge API: a user is known through their sessions.
        page = await self.sessions_page(SessionFilter(initiator=str(user_id)), limit=1)
        if not page.sessions:
            raise NotFound(f"User {user_id} not found (no AI Bridge sessions visible).")
        return page.sessions[0].initiator

    async def find_session(self, session_id: str, initiator: str | None) -> m.Session:
        """The session with this id (of this initiator, if given): one `GET /sessions` call."""
        page = await self.sessions_page(
            SessionFilter(session_id=session_id, initiator=initiator),
            limit=1,
            whole_sessions=True,
        )
        if not page.sessions:
            raise _session_not_found(session_id)
        return page.sessions[0]

    async def _find_session(self, ref: SessionRef) -> m.Session:
        await self._settled_index()
        if ref in self._seen_sessions:
            return self._seen_sessions[ref]
        return await self.find_session(ref.session_id, str(ref.initiator_id))

    async def _find_interception(self, ref: InterceptionRef) -> m.Interception:
        await self._settled_index()
        if ref in self._seen_interceptions:
            return self._seen_interceptions[ref]
        # Bounds are inclusive and started_before must be strictly after started_after.
        window = InterceptionFilter(
            initiator=str(ref.initiator_id),
            started_after=ref.started_at,
            started_before=ref.started_at + timedelta(microseconds=1),
        )
        after: UUID | None = None
        for _ in range(_MAX_LOOKUP_PAGES):
            page = await self.interceptions_page(window, limit=LIST_LIMIT_MAX, after_id=after)
            for item in page.results:
                if item.id == ref.id:
                    return item
            if len(page.results) < LIST_LIMIT_MAX:
                break
            after = page.results[-1].id
        raise NotFound(f"Interception {ref.id} not found.")

    async def _find_thread(self, ref: ThreadRef) -> m.Thread:
        await self._settled_index()
        if ref in self._seen_threads:
            return self._seen_threads[ref]
        after: UUID | None = None
        for _ in range(_MAX_LOOKUP_PAGES * 20):
            page = await self.threads_page(
                ref.session.session_id, limit=THREADS_LIMIT_MAX, after_id=after
            )
            found = _first(page.threads, lambda t: t.id == ref.thread_id)
            if found is not None:
                return found
            if len(page.threads) < THREADS_LIMIT_MAX:
                break
            after = page.threads[-1].id
        raise NotFound(f"Thread {ref.thread_id} not found in session {ref.session.session_id!r}.")


def endpoint_of(request: UpstreamRequest) -> str:
    """The route's template (no ids), for messages and `extensions.missing`."""
    return endpoint_template(request.path)


@functools.cache
def default_pricer() -> Pricer:
    """One shared genai-prices pricer for loaders built without one (tests, tools)."""
    return Pricer()


def _session_not_found(session_id: str) -> NotFound:
    return NotFound(f"Session {session_id!r} not found.")


def _observe(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _first(items: Sequence[V], predicate: Callable[[V], bool]) -> V | None:
    return next((item for item in items if predicate(item)), None)
