"""Usage aggregates: tokens and cost grouped by user, model, provider, client and day.

Two upstream sources, the cheapest the era offers:
- `interceptions`: the `GET /interceptions` walk (1000 a call). Every token usage with its
  provider name; the REST shape carries no session or thread links, so rows count
  interceptions and leave sessions and threads unknown (None).
- `sessions`: `GET /sessions` (1000 a call) plus `GET /sessions/{id}` per session (200 threads
  a call), for servers without `/interceptions`. Rows count sessions and threads; threads carry
  no provider name, so `PROVIDER_NAME` cannot be grouped or filtered on.
The walk spends at most `max_calls` upstream calls and stops early, with `complete=False` and the
reason, when that allowance, the request's `CallBudget` or its deadline runs out: a partial
answer always says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from aibridge_graphql.core.call_budget import CallBudgetExceeded
from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.loaders import LIST_LIMIT_MAX, THREADS_LIMIT_MAX, Loaders
from aibridge_graphql.core.pricing import Cost, TokenCounts, remainder_tokens
from aibridge_graphql.core.refs import SessionRef
from aibridge_graphql.core.usage.costs import (
    action_cost,
    coder_cost,
    interception_cost,
    remainder_cost,
)
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.errors import DeadlineExceeded
from aibridge_graphql.upstream.search_query import InterceptionFilter, SessionFilter

ScanSource = Literal["interceptions", "sessions"]
StopReason = Literal["max_calls", "call_budget", "deadline"]


class Dimension(StrEnum):
    """What usage can be grouped by."""

    USER = "USER"
    MODEL = "MODEL"
    PROVIDER = "PROVIDER"
    PROVIDER_NAME = "PROVIDER_NAME"
    CLIENT = "CLIENT"
    DAY = "DAY"


@dataclass(frozen=True, slots=True)
class GroupKey:
    """One row's dimension values; a dimension not grouped by is None."""

    user_id: UUID | None = None
    username: str | None = None
    model: str | None = None
    provider: str | None = None
    provider_name: str | None = None
    client: str | None = None
    day: date | None = None

    def sort_key(self) -> tuple[str, ...]:
        """A total order over keys (None first), so rows come out deterministically."""
        values = (
            self.username,
            str(self.user_id) if self.user_id else None,
            self.model,
            self.provider,
            self.provider_name,
            self.client,
            self.day.isoformat() if self.day else None,
        )
        return tuple("" if v is None else "\x01" + v for v in values)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Totals of one group: counts (None where the source cannot tell), tokens, cost."""

    key: GroupKey
    sessions: int | None
    threads: int | None
    interceptions: int | None
    tokens: TokenCounts
    cost: Cost


@dataclass(frozen=True, slots=True)
class Scanned:
    """What the walk read: upstream calls (= pages) and the records in them."""

    upstream_calls: int = 0
    interceptions: int = 0
    sessions: int = 0
    threads: int = 0


@dataclass(frozen=True, slots=True)
class UsageReport:
    """The rows (sorted by their dimension values), the totals, and whether it is whole."""

    group_by: tuple[Dimension, ...]
    source: ScanSource
    rows: tuple[UsageRow, ...]
    totals: UsageRow
    complete: bool
    stopped: StopReason | None
    scanned: Scanned

    @property
    def incomplete_reason(self) -> str | None:
        """Why the walk stopped early, in words; None when it read everything."""
        return None if self.stopped is None else _STOP_MESSAGES[self.stopped]


_STOP_MESSAGES: dict[StopReason, str] = {
    "max_calls": "The scan reached its allowance of upstream calls before the data ended.",
    "call_budget": "The request's upstream-call budget ran out before the data ended.",
    "deadline": "The request's deadline passed before the data ended.",
}


async def source_for(loaders: Loaders) -> ScanSource:
    """The cheapest upstream source this upstream offers: the `/interceptions` walk where it
    exists (the sessions era), else the sessions and their threads (today's AI Gateway era, or
    an upstream whose routes could not be detected)."""
    capabilities = await loaders.capabilities()
    return "interceptions" if capabilities.interceptions else "sessions"


class _StopScan(Exception):
    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Group:
    sessions: set[SessionRef] = field(default_factory=set)
    threads: set[UUID] = field(default_factory=set)
    interceptions: int = 0
    tokens: TokenCounts = field(default_factory=TokenCounts)
    costs: list[Cost] = field(default_factory=list)


class _Aggregator:
    """Accumulates parts of usage into groups and the totals; counts the calls it spends."""

    def __init__(self, loaders: Loaders, group_by: Sequence[Dimension], max_calls: int) -> None:
        self.loaders = loaders
        self.group_by = frozenset(group_by)
        self.max_calls = max_calls
        self.calls = 0
        self.groups: dict[GroupKey, _Group] = {}
        self.total = _Group()
        self.scanned_interceptions = 0
        self.scanned_sessions = 0
        self.scanned_threads = 0

    def reserve(self) -> None:
        """Account for one more upstream call, or stop when the allowance is used."""
        if self.calls >= self.max_calls:
            raise _StopScan("max_calls")
        self.calls += 1

    def key(
        self,
        user: m.MinimalUser,
        model: str,
        provider: str,
        provider_name: str | None,
        client: str | None,
        at: datetime,
    ) -> GroupKey:
        by = self.group_by
        return GroupKey(
            user_id=user.id if Dimension.USER in by else None,
            username=user.username if Dimension.USER in by else None,
            model=model if Dimension.MODEL in by else None,
            provider=provider if Dimension.PROVIDER in by else None,
            provider_name=provider_name if Dimension.PROVIDER_NAME in by else None,
            client=client if Dimension.CLIENT in by else None,
            day=_utc_day(at) if Dimension.DAY in by else None,
        )

    def add(
        self,
        key: GroupKey,
        tokens: TokenCounts,
        cost: Cost,
        *,
        session: SessionRef | None = None,
        thread: UUID | None = None,
        interceptions: int = 0,
    ) -> None:
        for group in (self.groups.setdefault(key, _Group()), self.total):
            if session is not None:
                group.sessions.add(session)
            if thread is not None:
                group.threads.add(thread)
            group.interceptions += interceptions
            group.tokens = group.tokens + tokens
            group.costs.append(cost)

    def report(
        self, group_by: Sequence[Dimension], source: ScanSource, stopped: StopReason | None
    ) -> UsageReport:
        counted = source == "sessions"

        def row(key: GroupKey, group: _Group) -> UsageRow:
            return UsageRow(
                key=key,
                sessions=len(group.sessions) if counted else None,
                threads=len(group.threads) if counted else None,
                interceptions=None if counted else group.interceptions,
                tokens=group.tokens,
                cost=Cost.sum(group.costs),
            )

        rows = sorted(
            (row(key, group) for key, group in self.groups.items()),
            key=lambda r: r.key.sort_key(),
        )
        return UsageReport(
            group_by=tuple(group_by),
            source=source,
            rows=tuple(rows),
            totals=row(GroupKey(), self.total),
            complete=stopped is None,
            stopped=stopped,
            scanned=Scanned(
                upstream_calls=self.calls,
                interceptions=self.scanned_interceptions,
                sessions=self.scanned_sessions,
                threads=self.scanned_threads,
            ),
        )

    # -- the interceptions walk -----------------------------------------------------------------

    async def walk_interceptions(self, search: InterceptionFilter) -> None:
        after: UUID | None = None
        while True:
            self.reserve()
            page = await self.loaders.interceptions_page(
                search, limit=LIST_LIMIT_MAX, after_id=after
            )
            for item in page.results:
                self.scanned_interceptions += 1
                tokens = sum((TokenCounts.of(u) for u in item.token_usages), TokenCounts())
                key = self.key(
                    item.initiator,
                    item.model,
                    item.provider,
                    item.provider_name,
                    item.client,
                    item.started_at,
                )
                cost = interception_cost(self.loaders.pricer, item)
                self.add(key, tokens, cost, interceptions=1)
            if len(page.results) < LIST_LIMIT_MAX:
                return
            after = page.results[-1].id

    # -- the sessions walk ----------------------------------------------------------------------

    async def walk_sessions(self, search: SessionFilter, *, whole: bool) -> None:
        """Session pages in turn; each page's sessions' threads concurrently."""
        after_session_id: str | None = None
        offset = 0
        while True:
            self.reserve()
            page = await self.loaders.sessions_page(
                search,
                limit=LIST_LIMIT_MAX,
                after_session_id=after_session_id if whole else None,
                offset=None if whole else offset,
                whole_sessions=whole,
            )
            self.scanned_sessions += len(page.sessions)
            await self._threads_of(page.sessions, search)
            if len(page.sessions) < LIST_LIMIT_MAX:
                return
            # A filtered list pages by offset: its cursor is placed by whole-session values.
            after_session_id = page.sessions[-1].id
            offset += len(page.sessions)

    async def _threads_of(self, sessions: Sequence[m.Session], search: SessionFilter) -> None:
        results = await asyncio.gather(
            *(self._session(session, search) for session in sessions), return_exceptions=True
        )
        # A stop wins over nothing, an error over a stop: a failed call fails the answer.
        stop: _StopScan | None = None
        for result in results:
            if isinstance(result, _StopScan):
                stop = stop or result
            elif isinstance(result, BaseException):
                raise result
        if stop is not None:
            raise stop

    async def _session(self, session: m.Session, search: SessionFilter) -> None:
        ref = SessionRef(session.id, session.initiator.id)
        after: UUID | None = None
        while True:
            self.reserve()
            try:
                page = await self.loaders.threads_page(
                    session.id, limit=THREADS_LIMIT_MAX, after_id=after
                )
            except CallBudgetExceeded:
                raise _StopScan("call_budget") from None
            except DeadlineExceeded:
                raise _StopScan("deadline") from None
            for thread in page.threads:
                self.scanned_threads += 1
                self._thread(session, ref, thread, search)
            if len(page.threads) < THREADS_LIMIT_MAX:
                return
            after = page.threads[-1].id

    def _thread(
        self, session: m.Session, ref: SessionRef, thread: m.Thread, search: SessionFilter
    ) -> None:
        # The sessions list filters interceptions, but a session's threads are all of them:
        # apply the thread-level filters here, so both sources answer the same question.
        if search.provider is not None and thread.provider != search.provider:
            return
        if search.started_after is not None and thread.started_at < search.started_after:
            return
        if search.started_before is not None and thread.started_at > search.started_before:
            return
        whole = coder_cost(thread.token_usage)
        if whole is not None:
            parts = [(thread.model, TokenCounts.of(thread.token_usage), whole)]
        else:
            parts = [
                (
                    action.model or thread.model,
                    TokenCounts.of(action.token_usage),
                    action_cost(self.loaders.pricer, action, thread),
                )
                for action in thread.agentic_actions
            ]
            remainder = remainder_cost(self.loaders.pricer, thread)
            if remainder is not None:
                parts.append((thread.model, remainder_tokens(thread), remainder))
        for model, tokens, cost in parts:
            if search.model is not None and model != search.model:
                continue
            key = self.key(
                session.initiator, model, thread.provider, None, session.client, thread.started_at
            )
            self.add(key, tokens, cost, session=ref, thread=thread.id)


def _utc_day(at: datetime) -> date:
    return (at if at.tzinfo is None else at.astimezone(UTC)).date()


def _dedupe(group_by: Iterable[Dimension]) -> tuple[Dimension, ...]:
    return tuple(dict.fromkeys(group_by))


async def aggregate_usage(
    loaders: Loaders,
    search: SessionFilter,
    group_by: Iterable[Dimension],
    *,
    source: ScanSource,
    max_calls: int,
) -> UsageReport:
    """Tokens and cost of the usage `search` selects, grouped by `group_by` (module docstring).

    Upstream errors other than the budget and the deadline propagate: a failed page fails the
    whole answer rather than leaving a silent hole in it.
    """
    dims = _dedupe(group_by)
    if max_calls < 1:
        raise BadUserInput("The usage scan needs at least one upstream call.")
    if source == "sessions" and (
        Dimension.PROVIDER_NAME in dims or search.provider_name is not None
    ):
        raise BadUserInput(
            "Provider names are on interceptions only, and this Coder has no `/interceptions`: "
            "group or filter by PROVIDER (the runtime type) instead.",
            extensions={"field": "providerName"},
        )
    if source == "interceptions" and search.session_id is not None:
        # `/interceptions` cannot filter by session: read that session's threads instead.
        source = "sessions"
    aggregator = _Aggregator(loaders, dims, max_calls)
    stopped: StopReason | None = None
    try:
        if source == "interceptions":
            await aggregator.walk_interceptions(_interception_filter(search))
        else:
            whole = all(
                value is None
                for value in (
                    search.provider,
                    search.provider_name,
                    search.model,
                    search.client,
                    search.started_after,
                    search.started_before,
                )
            )
            await aggregator.walk_sessions(search, whole=whole)
    except _StopScan as stop:
        stopped = stop.reason
    except CallBudgetExceeded:
        stopped = "call_budget"
    except DeadlineExceeded:
        stopped = "deadline"
    return aggregator.report(dims, source, stopped)


def _interception_filter(search: SessionFilter) -> InterceptionFilter:
    return InterceptionFilter(
        initiator=search.initiator,
        provider=search.provider,
        provider_name=search.provider_name,
        model=search.model,
        client=search.client,
        started_after=search.started_after,
        started_before=search.started_before,
    )
