"""`Thread` (a root interception and its agentic continuations) and its connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Protocol, cast
from uuid import UUID

import strawberry

from aibridge_graphql.core.loaders import THREADS_LIMIT_MAX, Loaders
from aibridge_graphql.core.refs import SessionRef, ThreadRef
from aibridge_graphql.schema.engine.needs import FieldEstimate, needs, per_item
from aibridge_graphql.schema.ids import cursor_uuid, encode_cursor, encode_global_id
from aibridge_graphql.schema.node import LIST_ONLY, SAME_SESSION, Node, computed, resolver
from aibridge_graphql.schema.pagination import (
    Backward,
    Forward,
    Page,
    PageInfo,
    forward_page,
    page_info,
)
from aibridge_graphql.schema.usage import AgenticAction, TokenUsageSummary
from aibridge_graphql.upstream import models as m

if TYPE_CHECKING:
    from aibridge_graphql.schema.session import Session

_AI_GATEWAY_ONLY = (
    "Null when there is none, and always on Coder releases before the AI Gateway API (mid-2026)."
)
SessionType = Annotated["Session", strawberry.lazy("aibridge_graphql.schema.session")]


def _total_count_calls(estimate: FieldEstimate) -> int:
    # Free from a whole session's list item; a filtered list's sessions are refetched whole.
    return 0 if estimate.scope.exact else 1


class ParentSession(Protocol):
    """What a thread needs of its session (the `Session` type, without importing it)."""

    @property
    def ref(self) -> SessionRef: ...

    @property
    def session_id(self) -> str: ...

    async def exact_thread_count(self, loaders: Loaders) -> int: ...


def _agentic_actions(root: Thread) -> list[AgenticAction]:
    return [AgenticAction.from_model(a, root.raw) for a in root.raw.agentic_actions]


# What the `computed` fields of a Thread make of its `raw`, when selected.
def _global_id(root: Thread) -> strawberry.ID:
    return strawberry.ID(encode_global_id(ThreadRef(root.parent.ref, root.raw.id)))


def _thread_id(root: Thread) -> strawberry.ID:
    return strawberry.ID(str(root.raw.id))


def _token_usage(root: Thread) -> TokenUsageSummary:
    return TokenUsageSummary.of_thread(root.raw)


def _firewall_session_id(root: Thread) -> strawberry.ID | None:
    value = root.raw.agent_firewall_session_id
    return None if value is None else strawberry.ID(str(value))


@strawberry.type(
    description=(
        "A thread of a session: a root interception and the agentic-loop interceptions that "
        "continue it. Refetchable with `node(id:)`."
    )
)
class Thread(Node):
    # `computed` fields are made from `raw` only when selected.
    id: strawberry.ID = computed(_global_id, "The opaque global ID.")
    thread_id: strawberry.ID = computed(
        _thread_id, "The upstream thread id: the root interception's UUID."
    )
    prompt: str | None = strawberry.field(description="The first user prompt, if any.")
    model: str = strawberry.field(description="The root interception's model.")
    provider: str = strawberry.field(description="The root interception's provider type.")
    credential_kind: str = strawberry.field(description="How the provider was authenticated.")
    credential_hint: str = strawberry.field(
        description="A masked hint of the credential, e.g. `sk-a...efgh`."
    )
    started_at: datetime = strawberry.field(description="When the thread started.")
    ended_at: datetime | None = strawberry.field(description="When its last interception ended.")
    token_usage: TokenUsageSummary = computed(
        _token_usage, "Tokens used over all interceptions of the thread."
    )
    # A resolver, declared in the field's place (the schema's order): built only when selected.
    agentic_actions: list[AgenticAction] = strawberry.field(
        resolver=_agentic_actions,
        description="One action per interception that called tools, in order.",
        metadata=needs(reads=frozenset({"agentic_actions"})),
    )
    error_type: str | None = strawberry.field(
        description="The kind of error the thread ended with, if any. " + _AI_GATEWAY_ONLY
    )
    error_message: str | None = strawberry.field(
        description="The error's message, if any. " + _AI_GATEWAY_ONLY
    )
    agent_firewall_session_id: strawberry.ID | None = computed(
        _firewall_session_id,
        "The agent-firewall session of its network calls (`NetworkCall.firewallSessionId`). "
        + _AI_GATEWAY_ONLY,
    )
    agent_firewall_sequence_number: int | None = strawberry.field(
        description="Where the thread sits in that firewall session. " + _AI_GATEWAY_ONLY
    )
    parent: strawberry.Private[ParentSession]
    raw: strawberry.Private[m.Thread]

    @resolver("The session this thread belongs to.", needs(marks=SAME_SESSION))
    def session(self) -> SessionType:
        return cast("Session", self.parent)

    @classmethod
    def from_model(cls, raw: m.Thread, parent: ParentSession) -> Thread:
        return cls(
            prompt=raw.prompt,
            model=raw.model,
            provider=raw.provider,
            credential_kind=raw.credential_kind,
            credential_hint=raw.credential_hint,
            started_at=raw.started_at,
            ended_at=raw.ended_at,
            error_type=raw.error_type,
            error_message=raw.error_message,
            agent_firewall_sequence_number=raw.agent_firewall_sequence_number,
            parent=parent,
            raw=raw,
        )


def _edge_cursor(edge: ThreadEdge) -> str:
    return encode_cursor("Thread", str(edge.node.raw.id))


@strawberry.type(description="An edge of a thread connection.")
class ThreadEdge:
    # Made when selected (or for `pageInfo`'s first and last): the upstream `after_id` value.
    cursor: str = computed(_edge_cursor, "Opaque cursor of this edge.")
    node: Thread = strawberry.field(description="The thread.", metadata=needs(marks=SAME_SESSION))


@strawberry.type(
    description="A page of a session's threads, oldest first (`started_at ASC, id ASC` upstream)."
)
class ThreadConnection:
    edges: list[ThreadEdge] = strawberry.field(
        description="The edges of this page.", metadata=needs(per_item, marks=SAME_SESSION)
    )
    page_info: PageInfo = strawberry.field(description="Exact page information.")
    count_source: strawberry.Private[Callable[[], Awaitable[int]]]

    @resolver("The threads of this page (the edges' nodes).", needs(per_item, marks=SAME_SESSION))
    def nodes(self) -> list[Thread]:
        return [edge.node for edge in self.edges]

    @resolver(
        "How many threads the session has. Free when the session came unfiltered; after a "
        "filtered `sessions` list (whose counts cover only the matching interceptions) it "
        "costs one `GET /sessions?q=session_id:...` call.",
        needs(_total_count_calls, marks=LIST_ONLY),
    )
    async def total_count(self) -> int:
        return await self.count_source()


async def _threads_before(
    loaders: Loaders, session_id: str, last: int, before: UUID | None
) -> Page[m.Thread]:
    """The `last` threads before `before` (or the end), exactly, despite the upstream quirk.

    `before_id` returns the first N threads before the cursor counted from the session start, so
    one call of 200 covers sessions of up to 200 earlier threads; beyond that the walk continues
    forward with `after_id` until the cursor is reached, keeping only a window of `last + 1`.
    """
    window: list[m.Thread] = []
    after: UUID | None = None
    if before is not None:
        page = await loaders.threads_page(session_id, limit=THREADS_LIMIT_MAX, before_id=before)
        window = list(page.threads)
        if len(page.threads) < THREADS_LIMIT_MAX:
            return _tail(window, last, has_next=True)
        after = page.threads[-1].id
    while True:
        page = await loaders.threads_page(session_id, limit=THREADS_LIMIT_MAX, after_id=after)
        ids = [thread.id for thread in page.threads]
        if before is not None and before in ids:
            window.extend(page.threads[: ids.index(before)])
            return _tail(window, last, has_next=True)
        window.extend(page.threads)
        window = window[-(last + 1) :]
        if len(page.threads) < THREADS_LIMIT_MAX:
            # Reached the end: without `before` that is the point; with it, the cursor vanished.
            return _tail(window, last, has_next=False)
        after = page.threads[-1].id


def _tail(window: list[m.Thread], last: int, *, has_next: bool) -> Page[m.Thread]:
    items = window[max(0, len(window) - last) :]
    return Page(items=items, has_next_page=has_next, has_previous_page=len(window) > last)


async def thread_connection(
    loaders: Loaders, parent: ParentSession, args: Forward | Backward
) -> ThreadConnection:
    """The connection of `parent`'s threads for validated arguments."""
    session_id = parent.session_id
    if isinstance(args, Forward):
        after = cursor_uuid("Thread", args.after)
        response = await loaders.threads_page(session_id, limit=args.limit, after_id=after)
        page = forward_page(response.threads, args)
    else:
        page = await _threads_before(
            loaders, session_id, args.last, cursor_uuid("Thread", args.before)
        )
    edges = [ThreadEdge(node=Thread.from_model(raw, parent)) for raw in page.items]

    async def count() -> int:
        return await parent.exact_thread_count(loaders)

    return ThreadConnection(edges=edges, page_info=page_info(edges, page), count_source=count)
