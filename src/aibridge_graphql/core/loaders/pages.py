"""`Loaders`: one request's page API, what the resolvers and the services call.

Each method is one page (or one lookup) of the upstream, loaded through the request's DataLoaders
(dataloaders.py) under its resources (resources.py), with what it loads noted for the by-id
lookups (`user`, `session`, `interception`, `thread`; index.py). `close()` ends all of it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from aiodataloader import DataLoader

from aibridge_graphql.core.cache import CacheView
from aibridge_graphql.core.call_budget import CallBudget
from aibridge_graphql.core.errors import NotFound, UpstreamUnsupported
from aibridge_graphql.core.loaders.dataloaders import UpstreamLoaders, drop
from aibridge_graphql.core.loaders.index import EntityIndex
from aibridge_graphql.core.loaders.limits import LIST_LIMIT_MAX, MAX_LOOKUP_PAGES
from aibridge_graphql.core.loaders.resources import RequestResources
from aibridge_graphql.core.loaders.writes import BudgetWrites, GatewayKeys
from aibridge_graphql.core.pricing import Pricer
from aibridge_graphql.core.refs import InterceptionRef, SessionRef, ThreadRef
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.capabilities import Capabilities
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.deadline import Deadline
from aibridge_graphql.upstream.errors import (
    DeadlineExceeded,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamUnauthorized,
)
from aibridge_graphql.upstream.requests import (
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

# Coder's 404 of `GET /sessions/{id}` when its sessions query finds none (docs/upstream.md).
_DETAIL_NOT_FOUND = "Session not found."


class Loaders:
    """The per-request page API over the request's DataLoaders (see the module docstring)."""

    def __init__(
        self,
        client: UpstreamClient,
        credentials: Credentials | None,
        *,
        concurrency: int,
        deadline: Deadline | None = None,
        call_budget: CallBudget | None = None,
        pricer: Pricer | None = None,
        cache: CacheView | None = None,
        skip_records: frozenset[str] = frozenset(),
    ) -> None:
        # The process's pricer (built once at start); the library's prices when none is given.
        self.pricer = pricer or default_pricer()
        self._resources = RequestResources(
            client,
            credentials,
            concurrency=concurrency,
            deadline=deadline,
            call_budget=call_budget,
            cache=cache,
        )
        self._index = EntityIndex()
        self._upstream = UpstreamLoaders(self._resources, self._index, skip_records)
        # The first session-detail load of each session id: the network fields read it.
        self._details: dict[str, asyncio.Future[m.SessionThreadsResponse]] = {}

    # -- by-id lookups (index.py), each loader built on first use -----------------------------

    @functools.cached_property
    def user(self) -> DataLoader[UUID, m.MinimalUser]:
        return self._upstream.each("user", functools.partial(self._index.lookup_user, self))

    @functools.cached_property
    def session(self) -> DataLoader[SessionRef, m.Session]:
        return self._upstream.each("session", functools.partial(self._index.lookup_session, self))

    @functools.cached_property
    def interception(self) -> DataLoader[InterceptionRef, m.Interception]:
        return self._upstream.each(
            "interception", functools.partial(self._index.lookup_interception, self)
        )

    @functools.cached_property
    def thread(self) -> DataLoader[ThreadRef, m.Thread]:
        return self._upstream.each("thread", functools.partial(self._index.lookup_thread, self))

    @functools.cached_property
    def budget_writes(self) -> BudgetWrites:
        """Coder's budget writes with this request's token, deadline, budget and cache view."""
        return BudgetWrites(self._resources)

    @functools.cached_property
    def gateway_keys(self) -> GatewayKeys:
        """Coder's AI Gateway keys (list, create, delete) with this request's token and limits."""
        return GatewayKeys(self._resources)

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Cancel the upstream work still running (the request is over or was cancelled).

        It also drops what the request loaded and the loaders themselves: their batch functions
        refer back to these objects (reference cycles), so without this the request's pages,
        models and futures would wait for the cycle collector; dropped, they are freed at once.
        """
        self._resources.cancel()
        self._upstream.clear()
        drop(self)
        self._index.clear()
        self._details.clear()

    async def capabilities(self) -> Capabilities:
        """What the upstream serves (detected once per process, re-checked when stale)."""
        return await self._resources.capabilities()

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
            self._index.selects_whole_sessions(request)
        return await self._index.track(self._upstream.sessions.load(request))

    async def interceptions_page(
        self, interception_filter: InterceptionFilter, *, limit: int, after_id: UUID | None = None
    ) -> m.ListInterceptionsResponse:
        """One page of `GET /interceptions`; `UpstreamUnsupported` on a Coder without it."""
        if (await self._resources.capabilities()).interceptions is False:
            raise UpstreamUnsupported(
                "This Coder release has no `GET /interceptions` (removed with the AI Gateway "
                "API in mid-2026): query `sessions` and their `threads` instead.",
                missing="GET /interceptions",
                instead="sessions",
            )
        request = interceptions_request(
            interception_filter, limit=limit, after_id=str(after_id) if after_id else None
        )
        return await self._index.track(self._upstream.interceptions.load(request))

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
        future = self._index.track(self._upstream.session_threads.load(request))
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

    async def user_ai_spend(self, user: str) -> m.UserAISpendStatus:
        """Coder's spend status of a user (id, username or `me`): `GET /api/v2/users/{u}/ai/spend`.

        `UpstreamUnsupported` on a sessions-era Coder, which has no spend routes.
        """
        return await self._upstream.ai_spend.load(user_ai_spend_request(user))

    async def groups_spend(
        self, organization: str, group_ids: Sequence[str]
    ) -> m.OrganizationGroupsAISpend:
        """Coder's spend and budgets of an organization's groups (ids sorted, deduplicated)."""
        ids = sorted(set(group_ids))
        return await self._upstream.groups_ai_spend.load(groups_ai_spend_request(organization, ids))

    async def provider_list(self) -> list[m.Provider]:
        """`GET /providers`, as objects whichever shape the upstream answers."""
        return await self._upstream.providers.load(providers_request())

    async def strings(self, kind: str, prefix: str | None) -> list[str]:
        """Every model (`kind="models"`) or client name, paging by `offset` until exhausted."""
        upstream = self._upstream
        loader, build = (
            (upstream.models, models_request)
            if kind == "models"
            else (upstream.clients, clients_request)
        )
        out: list[str] = []
        for page in range(MAX_LOOKUP_PAGES):
            offset = page * LIST_LIMIT_MAX
            batch = await loader.load(build(prefix, limit=LIST_LIMIT_MAX, offset=offset or None))
            out.extend(batch)
            if len(batch) < LIST_LIMIT_MAX:
                break
        return out


@functools.cache
def default_pricer() -> Pricer:
    """One shared genai-prices pricer for loaders built without one (tests, tools)."""
    return Pricer()


def _session_not_found(session_id: str) -> NotFound:
    return NotFound(f"Session {session_id!r} not found.")


def _observe(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
