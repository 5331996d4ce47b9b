"""`Subscription`: live views of sessions, one session's timeline and the caller's spend.

Each subscription is a stream of a shared poller's changes (core/live/, docs/live.md). Every
event runs in a scope of its own: fresh loaders (the request deadline and call budget start
again), so a field selected beyond what the poll answered (a session's `threads`, say) is
fetched for that event only, with the subscriber's own token.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, TypeVar, cast

import strawberry

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.inputs import checked_text
from aibridge_graphql.core.live import (
    Change,
    SessionsView,
    SpendView,
    TimelineView,
    View,
)
from aibridge_graphql.core.loaders import LIST_LIMIT_MAX
from aibridge_graphql.schema.engine.needs import FieldEstimate, needs
from aibridge_graphql.schema.filters import SessionFilter
from aibridge_graphql.schema.node import Info
from aibridge_graphql.schema.session import Session
from aibridge_graphql.schema.spend import SPEND_ERA, AISpendStatus, UserArg, checked_name
from aibridge_graphql.schema.thread import Thread

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E")
_DEFAULT_WATCHED = 100
_EXISTING = "Send the view's current records first (kind `EXISTING`), once the first poll answered."


@strawberry.enum(description="What happened to a session of a watched list.")
class SessionEventKind(Enum):
    EXISTING = strawberry.enum_value("EXISTING", description="In the list when subscribing.")
    ADDED = strawberry.enum_value("ADDED", description="A session that started since.")
    UPDATED = strawberry.enum_value(
        "UPDATED",
        description="New activity: last activity, tokens, threads or network calls changed "
        "(also a session that rose into the watched list).",
    )
    ENDED = strawberry.enum_value(
        "ENDED",
        description="No new activity for `AIBRIDGE_LIVE_SESSION_IDLE` seconds (Coder has no end "
        "marker: a session stops growing). New activity later makes it UPDATED again.",
    )


@strawberry.type(description="One change of a watched sessions list.")
class SessionEvent:
    kind: SessionEventKind = strawberry.field(description="What happened.")
    session: Session = strawberry.field(description="The session as the upstream lists it now.")
    observed_at: datetime = strawberry.field(description="When the gateway's poll saw it.")


@strawberry.enum(description="What happened in a watched session.")
class TimelineEventKind(Enum):
    EXISTING = strawberry.enum_value("EXISTING", description="A thread when subscribing.")
    ADDED = strawberry.enum_value("ADDED", description="A new thread.")
    UPDATED = strawberry.enum_value(
        "UPDATED", description="A thread grew: an agentic action, tokens, or its end."
    )
    ENDED = strawberry.enum_value(
        "ENDED",
        description="The session had no new activity for `AIBRIDGE_LIVE_SESSION_IDLE` seconds: "
        "the last event, the stream then completes.",
    )


@strawberry.type(description="One change of a watched session's timeline.")
class SessionTimelineEvent:
    kind: TimelineEventKind = strawberry.field(description="What happened.")
    session: Session = strawberry.field(description="The session (its detail header) now.")
    thread: Thread | None = strawberry.field(description="The thread concerned (null for ENDED).")
    observed_at: datetime = strawberry.field(description="When the gateway's poll saw it.")


@strawberry.enum(description="What changed of a watched spend status.")
class AISpendEventKind(Enum):
    CURRENT = strawberry.enum_value("CURRENT", description="The status when subscribing.")
    CHANGED = strawberry.enum_value("CHANGED", description="Spend or the effective budget changed.")
    THRESHOLD = strawberry.enum_value(
        "THRESHOLD",
        description="Spend reached `threshold` percent of the effective budget (85 or 100, "
        "where Coder notifies), coming from below.",
    )


@strawberry.type(description="One change of a watched spend status.")
class AISpendEvent:
    kind: AISpendEventKind = strawberry.field(description="What changed.")
    status: AISpendStatus = strawberry.field(description="The status now.")
    threshold: int | None = strawberry.field(description="The percent reached, for THRESHOLD.")
    observed_at: datetime = strawberry.field(description="When the gateway's poll saw it.")


FirstWatched = Annotated[
    int,
    strawberry.argument(
        description=f"How many of the most recently active sessions to watch (1 to "
        f"{LIST_LIMIT_MAX}): a session with new activity rises into them."
    ),
]
WatchedFilter = Annotated[
    SessionFilter | None, strawberry.argument(description="Watch only these (all keys ANDed).")
]
IncludeExisting = Annotated[bool, strawberry.argument(description=_EXISTING)]
WatchedSessionId = Annotated[
    str, strawberry.argument(description="The upstream session id (`Session.sessionId`).")
]


def _subscription(description: str) -> Callable[[F], F]:
    """`@strawberry.subscription` (untyped in Strawberry), with the needs of one event."""
    return cast(
        Callable[[F], F],
        strawberry.subscription(description=description, metadata=needs(_event_calls)),
    )


def _event_calls(estimate: FieldEstimate) -> int:
    # Per event: its poll (shared by the view's subscribers) and what its selections fetch.
    return 1 + estimate.children()


async def _watch(
    info: Info, view: View, existing: bool, event: Callable[[Change], E]
) -> AsyncGenerator[E, None]:
    """The caller's stream of `view`, one event per change, each yielded in a fresh scope of the
    subscription's context (`renew`). An error item is yielded as the exception itself:
    graphql-core answers such an event with that error, and the stream goes on."""
    if info.context.watch is None:
        raise BadUserInput("Live views are not served here.")
    async with info.context.watch(view, existing=existing) as stream:
        async for item in stream:
            for change in [item] if isinstance(item, Exception) else item:
                info.context.renew()
                yield cast(E, change) if isinstance(change, Exception) else event(change)


def _idle(info: Info) -> timedelta:
    return timedelta(seconds=info.context.settings.live_session_idle)


def _now() -> datetime:
    return datetime.now(UTC)


def _session_event(change: Change, whole: bool) -> SessionEvent:
    return SessionEvent(
        kind=SessionEventKind(change.kind),
        session=Session.from_model(change.value, exact=whole),
        observed_at=_now(),
    )


def _timeline_event(change: Change) -> SessionTimelineEvent:
    session = Session.from_detail(change.session)
    thread = None if change.value is None else Thread.from_model(change.value, session)
    return SessionTimelineEvent(
        kind=TimelineEventKind(change.kind), session=session, thread=thread, observed_at=_now()
    )


def _spend_event(change: Change) -> AISpendEvent:
    return AISpendEvent(
        kind=AISpendEventKind(change.kind),
        status=AISpendStatus.from_model(change.value),
        threshold=change.threshold,
        observed_at=_now(),
    )


@strawberry.type(
    description="Live views: each a stream of changes of one upstream view, polled once per "
    "`AIBRIDGE_LIVE_POLL_INTERVAL` for all its subscribers with the same token (docs/live.md). "
    "Over SSE (graphql-sse) or multipart HTTP; an upstream error arrives as an event with "
    "`errors` and the stream stays open, a 401/403 ends it."
)
class Subscription:
    @_subscription(
        "Changes of the most recently active sessions matching `filter` "
        "(`GET /sessions`, one call per poll)."
    )
    async def sessions(
        self,
        info: Info,
        filter: WatchedFilter = None,
        first: FirstWatched = _DEFAULT_WATCHED,
        include_existing: IncludeExisting = False,
    ) -> AsyncGenerator[SessionEvent, None]:
        if not 1 <= first <= LIST_LIMIT_MAX:
            raise BadUserInput(f"`first` must be between 1 and {LIST_LIMIT_MAX}.")
        gql_filter = filter or SessionFilter()
        whole = gql_filter.selects_whole_sessions
        view = SessionsView(gql_filter.to_upstream(), first, _idle(info))
        async with aclosing(
            _watch(info, view, include_existing, lambda change: _session_event(change, whole))
        ) as events:
            async for event in events:
                yield event

    @_subscription(
        "New and updated threads of one session (every `GET /sessions/{id}` page per poll, 200 "
        "threads a call); completes after ENDED. NOT_FOUND ends it when there is no such session."
    )
    async def session_timeline(
        self,
        info: Info,
        session_id: WatchedSessionId,
        include_existing: IncludeExisting = False,
    ) -> AsyncGenerator[SessionTimelineEvent, None]:
        if not session_id:
            raise BadUserInput("`sessionId` must not be empty.")
        checked_text("sessionId", session_id)
        view = TimelineView(session_id, _idle(info))
        async with aclosing(_watch(info, view, include_existing, _timeline_event)) as events:
            async for event in events:
                yield event

    @_subscription(
        "A user's AI spend against their effective budget (`GET /api/v2/users/{user}/ai/spend`, "
        "one call per poll): CURRENT first, then CHANGED, and THRESHOLD at 85 % and 100 %."
        + SPEND_ERA
    )
    async def ai_spend(
        self, info: Info, user: UserArg = "me"
    ) -> AsyncGenerator[AISpendEvent, None]:
        view = SpendView(checked_name("user", user))
        async with aclosing(_watch(info, view, True, _spend_event)) as events:
            async for event in events:
                yield event
