"""The entities a request has loaded, for its by-id lookups (user, session, interception, thread).

A lookup looks first in the list responses the request has loaded (indexed on the first lookup,
not for every page), after waiting for the list loads still in flight, since the entity may be in
one of them; it falls back to one targeted list query when the entity was not seen yet (the API
has no get-by-id for interceptions, users or threads). Those queries go through the request's
page API (`Pages`, which `Loaders` is), so they are de-duplicated and counted like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol, TypeVar
from uuid import UUID

from aibridge_graphql.core.errors import NotFound
from aibridge_graphql.core.loaders.limits import (
    LIST_LIMIT_MAX,
    MAX_LOOKUP_PAGES,
    THREADS_LIMIT_MAX,
)
from aibridge_graphql.core.refs import InterceptionRef, SessionRef, ThreadRef
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.requests import UpstreamRequest
from aibridge_graphql.upstream.search_query import InterceptionFilter, SessionFilter

V = TypeVar("V")


class Pages(Protocol):
    """The page queries a lookup falls back to (`Loaders` has them)."""

    async def sessions_page(
        self,
        session_filter: SessionFilter,
        *,
        limit: int,
        after_session_id: str | None = None,
        offset: int | None = None,
        whole_sessions: bool = False,
    ) -> m.ListSessionsResponse: ...

    async def interceptions_page(
        self, interception_filter: InterceptionFilter, *, limit: int, after_id: UUID | None = None
    ) -> m.ListInterceptionsResponse: ...

    async def threads_page(
        self,
        session_id: str,
        *,
        limit: int,
        after_id: UUID | None = None,
        before_id: UUID | None = None,
    ) -> m.SessionThreadsResponse: ...

    async def find_session(self, session_id: str, initiator: str | None) -> m.Session: ...


class EntityIndex:
    """What one request has seen, by id, and the list loads it may still see things in."""

    __slots__ = (
        "_inflight",
        "_interceptions",
        "_sessions",
        "_threads",
        "_unindexed",
        "_users",
        "_whole_session_requests",
    )

    def __init__(self) -> None:
        # List loads in flight: a by-id lookup waits for them before its own fallback call,
        # since the entity it wants may be in one of them.
        self._inflight: set[asyncio.Future[Any]] = set()
        # `GET /sessions` requests whose filter selects whole sessions (exact aggregates).
        self._whole_session_requests: set[UpstreamRequest] = set()
        self._users: dict[UUID, m.MinimalUser] = {}
        self._sessions: dict[SessionRef, m.Session] = {}
        self._interceptions: dict[InterceptionRef, m.Interception] = {}
        self._threads: dict[ThreadRef, m.Thread] = {}
        # Pages loaded since the last by-id lookup, not yet in the indexes.
        self._unindexed: list[Callable[[], None]] = []

    # -- what the loads report ----------------------------------------------------------------

    def track(self, future: asyncio.Future[V]) -> asyncio.Future[V]:
        """A list load in flight, which lookups wait for."""
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return future

    def note(self, index_later: Callable[[], None]) -> None:
        """A page loaded, indexed only when a by-id lookup runs (rare), not for every page."""
        self._unindexed.append(index_later)

    def selects_whole_sessions(self, request: UpstreamRequest) -> None:
        """The sessions of this `GET /sessions` are whole: by-id session lookups may use them."""
        self._whole_session_requests.add(request)

    def saw_sessions(self, request: UpstreamRequest, response: m.ListSessionsResponse) -> None:
        whole = request in self._whole_session_requests
        for session in response.sessions:
            self._saw_user(session.initiator)
            if whole:
                ref = SessionRef(session.id, session.initiator.id)
                self._sessions.setdefault(ref, session)

    def saw_interceptions(self, _: UpstreamRequest, response: m.ListInterceptionsResponse) -> None:
        for item in response.results:
            self._saw_user(item.initiator)
            ref = InterceptionRef(item.id, item.initiator.id, item.started_at)
            self._interceptions.setdefault(ref, item)

    def saw_threads(self, _: UpstreamRequest, response: m.SessionThreadsResponse) -> None:
        self._saw_user(response.initiator)
        session = SessionRef(response.id, response.initiator.id)
        for thread in response.threads:
            ref = ThreadRef(session, thread.id)
            self._threads.setdefault(ref, thread)

    def _saw_user(self, user: m.MinimalUser) -> None:
        self._users.setdefault(user.id, user)

    def clear(self) -> None:
        """Drop all of it (the request is over)."""
        self._inflight.clear()
        self._whole_session_requests.clear()
        self._users.clear()
        self._sessions.clear()
        self._interceptions.clear()
        self._threads.clear()
        self._unindexed.clear()

    async def _settled(self) -> None:
        """Wait for the list loads in flight, then index every page loaded so far."""
        pending = [future for future in self._inflight if not future.done()]
        if pending:
            # Their failures are their awaiters' business.
            await asyncio.wait(pending)
        unindexed, self._unindexed = self._unindexed, []
        for index in unindexed:
            index()

    # -- by-id lookups, with their fallback queries -------------------------------------------

    async def lookup_user(self, pages: Pages, user_id: UUID) -> m.MinimalUser:
        await self._settled()
        if user_id in self._users:
            return self._users[user_id]
        # No users endpoint in the AI Bridge API: a user is known through their sessions.
        page = await pages.sessions_page(SessionFilter(initiator=str(user_id)), limit=1)
        if not page.sessions:
            raise NotFound(f"User {user_id} not found (no AI Bridge sessions visible).")
        return page.sessions[0].initiator

    async def lookup_session(self, pages: Pages, ref: SessionRef) -> m.Session:
        await self._settled()
        if ref in self._sessions:
            return self._sessions[ref]
        return await pages.find_session(ref.session_id, str(ref.initiator_id))

    async def lookup_interception(self, pages: Pages, ref: InterceptionRef) -> m.Interception:
        await self._settled()
        if ref in self._interceptions:
            return self._interceptions[ref]
        # Bounds are inclusive and started_before must be strictly after started_after.
        window = InterceptionFilter(
            initiator=str(ref.initiator_id),
            started_after=ref.started_at,
            started_before=ref.started_at + timedelta(microseconds=1),
        )
        after: UUID | None = None
        for _ in range(MAX_LOOKUP_PAGES):
            page = await pages.interceptions_page(window, limit=LIST_LIMIT_MAX, after_id=after)
            for item in page.results:
                if item.id == ref.id:
                    return item
            if len(page.results) < LIST_LIMIT_MAX:
                break
            after = page.results[-1].id
        raise NotFound(f"Interception {ref.id} not found.")

    async def lookup_thread(self, pages: Pages, ref: ThreadRef) -> m.Thread:
        await self._settled()
        if ref in self._threads:
            return self._threads[ref]
        after: UUID | None = None
        for _ in range(MAX_LOOKUP_PAGES * 20):
            page = await pages.threads_page(
                ref.session.session_id, limit=THREADS_LIMIT_MAX, after_id=after
            )
            found = _first(page.threads, lambda t: t.id == ref.thread_id)
            if found is not None:
                return found
            if len(page.threads) < THREADS_LIMIT_MAX:
                break
            after = page.threads[-1].id
        raise NotFound(f"Thread {ref.thread_id} not found in session {ref.session.session_id!r}.")


def _first(items: Sequence[V], predicate: Callable[[V], bool]) -> V | None:
    return next((item for item in items if predicate(item)), None)
