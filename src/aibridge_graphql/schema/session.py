"""The `Session` entity (a (session id, initiator) group of interceptions) and its connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from graphql import (
    FieldNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    SelectionSetNode,
    get_named_type,
)
from strawberry.scalars import JSON

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.loaders import LIST_LIMIT_MAX, THREADS_LIMIT_MAX, Loaders
from aibridge_graphql.core.refs import SessionRef
from aibridge_graphql.schema.engine.compat import (
    convert_node_arguments,
    convert_node_directives,
    raw_info,
)
from aibridge_graphql.schema.engine.needs import Estimator, FieldEstimate, needs, needs_of, per_item
from aibridge_graphql.schema.engine.selections import Selection, collect_fields
from aibridge_graphql.schema.filters import SessionFilter
from aibridge_graphql.schema.ids import (
    cursor_offset,
    cursor_uuid,
    decode_typed_global_id,
    encode_cursor,
    encode_global_id,
)
from aibridge_graphql.schema.network import (
    ERA_NOTE,
    NETWORK_CALL_LOGS_CAP,
    NETWORK_CURSOR,
    NetworkCallConnection,
    NetworkCallCounts,
    NetworkDomain,
    network_call_connection,
)
from aibridge_graphql.schema.node import (
    LIST_ONLY,
    SAME_SESSION,
    SESSION_DETAIL,
    Info,
    Node,
    computed,
    json_value,
    loaders_of,
    resolver,
)
from aibridge_graphql.schema.pagination import (
    After,
    Before,
    First,
    Forward,
    Last,
    PageInfo,
    both_ways_args,
    forward_args,
    forward_page,
    page_info,
)
from aibridge_graphql.schema.thread import ThreadConnection, thread_connection
from aibridge_graphql.schema.usage import TokenUsageSummary
from aibridge_graphql.schema.user import User
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.requests import session_path_exact

V = TypeVar("V")
_THREADS_DESCRIPTION = (
    "The session's threads, oldest first. Pages forwards (`first`/`after`, one "
    "`GET /sessions/{id}` call) and backwards (`last`/`before`, exact despite the upstream "
    "`before_id` counting from the session start: one call for sessions of up to 200 earlier "
    "threads, one more per further 200). `last` without `before` returns the session's last "
    "threads. Null with an error when the upstream call fails."
)


def _threads_calls(estimate: FieldEstimate) -> int:
    # Its page is a session-detail call (which the network fields then read); its threads are
    # the page's items.
    return 1 + estimate.children(page=estimate.page("first", "last"))


def session_by_detail(estimate: FieldEstimate) -> bool:
    """Whether this `session(sessionId:)` field is answered by its `GET /sessions/{id}` alone.

    True when no `initiator` is given (the detail shows the session a `session_id` lookup finds:
    Coder looks it up the same way), the id reaches the handler unchanged by path, and what is
    selected of the session (through its threads back to it too) is in the detail response: no
    field marked `LIST_ONLY`. The estimate and the resolver decide with this one function, so
    the count is what runs.
    """
    session_id = estimate.arg("sessionId")
    return (
        estimate.arg("initiator") is None
        and isinstance(session_id, str)
        and bool(session_id)
        and session_path_exact(session_id)
        and _detail_answers(estimate.estimator, estimate.sets)
    )


def _detail_answers(estimator: Estimator, sets: Sequence[SelectionSetNode]) -> bool:
    """Whether the session-detail call these selections of a `Session` make anyway (a forward
    `threads` page, or the network fields) also answers everything else they read of it."""
    session = estimator.object_type("Session")
    fields = estimator.fields(sets, session)
    makes_detail_call = any(
        _shares_detail(session, node)
        and estimator.arg(node, "last") is None
        and estimator.arg(node, "before") is None
        for nodes in fields.values()
        for node in nodes
    )
    return makes_detail_call and not _reads_list_only(estimator, sets, session)


def _shares_detail(type_: GraphQLObjectType, node: FieldNode) -> bool:
    definition = type_.fields.get(node.name.value)
    declared = needs_of(definition) if definition is not None else None
    return declared is not None and SESSION_DETAIL in (declared.shares, declared.makes)


def _reads_list_only(
    estimator: Estimator, sets: Sequence[SelectionSetNode], type_: GraphQLObjectType
) -> bool:
    """Whether `sets` read, of this session or of it reached again, what only a list has."""
    for nodes in estimator.fields(sets, type_).values():
        definition = type_.fields.get(nodes[0].name.value)
        declared = needs_of(definition) if definition is not None else None
        if definition is None or declared is None:
            continue
        if declared.marks & LIST_ONLY:
            return True
        child = get_named_type(definition.type)
        if declared.marks & SAME_SESSION and isinstance(child, GraphQLObjectType):
            subsets = [node.selection_set for node in nodes if node.selection_set]
            if _reads_list_only(estimator, subsets, child):
                return True
    return False


# What the `computed` fields of a Session make of its `raw`, when selected.
def _global_id(session: Session) -> strawberry.ID:
    return strawberry.ID(encode_global_id(session.ref))


def _initiator(session: Session) -> User:
    return User.from_model(session.raw.initiator)


def _providers(session: Session) -> list[str]:
    return session.raw.providers


def _models(session: Session) -> list[str]:
    return session.raw.models


def _token_usage(session: Session) -> TokenUsageSummary:
    return TokenUsageSummary.from_session(session.raw.token_usage_summary, session.raw.id)


def _metadata(session: Session) -> JSON | None:
    return json_value(session.raw.metadata)


def _network_calls(session: Session) -> NetworkCallCounts | None:
    return NetworkCallCounts.from_model(session.raw.network_calls)


def _listed(read: Callable[[m.Session], V]) -> Callable[[Session], V]:
    """A field only a `GET /sessions` item carries (marked `LIST_ONLY`). A session taken from
    its detail response never has one selected: `session_by_detail` leaves such documents to
    the lookup."""

    def compute(session: Session) -> V:
        if not isinstance(session.raw, m.Session):
            raise AssertionError("a list-only field of a session taken from its detail")
        return read(session.raw)

    return compute


@strawberry.federation.type(
    keys=["id"],
    description=(
        "An AI Bridge session: the interceptions one user made under one client session id (or a "
        "lone interception). Federation key: the global `id` (it carries the initiator, which the "
        "session id alone does not determine)."
    ),
)
class Session(Node):
    # `computed` fields are made from `raw` only when selected (most views select few of them).
    id: strawberry.ID = computed(_global_id, "The opaque global ID.")
    session_id: str = strawberry.field(
        description="The upstream session id: the client's session id or the interception UUID."
    )
    client: str | None = strawberry.field(description="The client of its first interception.")
    initiator: User = computed(_initiator, "Who made the session.")
    providers: list[str] = computed(_providers, "Provider types used, sorted.")
    models: list[str] = computed(_models, "Models used, sorted.")
    started_at: datetime = strawberry.field(description="Start of its first interception.")
    ended_at: datetime | None = strawberry.field(description="End of its last interception.")
    last_active_at: datetime | None = computed(
        _listed(lambda raw: raw.last_active_at),
        "Time of its latest prompt (or its start); sessions are listed by it.",
        needs(marks=LIST_ONLY),
    )
    last_prompt: str | None = computed(
        _listed(lambda raw: raw.last_prompt),
        "Its latest user prompt, if any.",
        needs(marks=LIST_ONLY),
    )
    thread_count: int = computed(
        _listed(lambda raw: raw.threads),
        "How many threads (root interceptions).",
        needs(marks=LIST_ONLY),
    )
    token_usage: TokenUsageSummary = computed(
        _token_usage,
        "Tokens used over the whole session (`metadata` is null: not listed upstream).",
        # Its `cost` walks the session's threads: one call per 200 threads (one counted).
        needs(lambda estimate: int(estimate.selects("cost")) + estimate.children()),
    )
    metadata: JSON | None = computed(_metadata, "Metadata of its first interception.")
    network_calls: NetworkCallCounts | None = computed(
        _network_calls,
        "Its agent-firewall network calls, counted (free: in the list item). " + ERA_NOTE,
    )
    # A `GET /sessions` item, or the header of a `GET /sessions/{id}` page (`from_detail`).
    raw: strawberry.Private[m.Session | m.SessionThreadsResponse]
    exact: strawberry.Private[bool]

    @classmethod
    def from_model(cls, raw: m.Session | m.SessionThreadsResponse, *, exact: bool) -> Session:
        """`exact` says the aggregates cover the whole session (no interception filter)."""
        return cls(
            session_id=raw.id,
            client=raw.client,
            started_at=raw.started_at,
            ended_at=raw.ended_at,
            raw=raw,
            exact=exact,
        )

    @classmethod
    def from_detail(cls, raw: m.SessionThreadsResponse | m.Session) -> Session:
        """The session from what `Loaders.session_by_detail` found (whole, never filtered)."""
        return cls.from_model(raw, exact=True)

    @property
    def ref(self) -> SessionRef:
        """The by-id key of this session."""
        return SessionRef(self.raw.id, self.raw.initiator.id)

    async def exact_thread_count(self, loaders: Loaders) -> int:
        """The session's thread count, refetched unfiltered when this copy was filtered (or is
        a detail response, which has none)."""
        if self.exact and isinstance(self.raw, m.Session):
            return self.raw.threads
        return (await loaders.session.load(self.ref)).threads

    @resolver(
        _THREADS_DESCRIPTION,
        needs(_threads_calls, makes=SESSION_DETAIL, marks=SAME_SESSION),
    )
    async def threads(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> ThreadConnection | None:
        args = both_ways_args(
            "Thread",
            first,
            after,
            last,
            before,
            settings=info.context.settings,
            upstream_max=THREADS_LIMIT_MAX,
        )
        return await thread_connection(loaders_of(info), self, args)

    @resolver(
        f"The session's agent-firewall network calls, in the upstream's order (at most "
        f"{NETWORK_CALL_LOGS_CAP}, as Coder caps them). All network fields of a session come "
        "from one `GET /sessions/{id}` call, the one its `threads` page makes when also "
        "selected. " + ERA_NOTE,
        needs(shares=SESSION_DETAIL),
    )
    async def network_call_logs(
        self, info: Info, first: First = None, after: After = None
    ) -> NetworkCallConnection | None:
        args = forward_args(
            NETWORK_CURSOR,
            first,
            after,
            settings=info.context.settings,
            upstream_max=NETWORK_CALL_LOGS_CAP + 1,
        )
        detail = await loaders_of(info).session_detail(self.session_id)
        if detail.network_call_logs is None:
            return None
        return network_call_connection(detail.network_call_logs, args)

    @resolver(
        "The domains its network calls went to most (Coder reports at most one), from the "
        "session-detail call. " + ERA_NOTE,
        needs(shares=SESSION_DETAIL),
    )
    async def network_top_domains(self, info: Info) -> list[NetworkDomain] | None:
        detail = await loaders_of(info).session_detail(self.session_id)
        if detail.network_top_domains is None:
            return None
        return [NetworkDomain(domain=d.domain, count=d.count) for d in detail.network_top_domains]

    @resolver(
        "How many distinct domains its network calls went to, from the session-detail call. "
        + ERA_NOTE,
        needs(shares=SESSION_DETAIL),
    )
    async def network_domain_count(self, info: Info) -> int | None:
        return (await loaders_of(info).session_detail(self.session_id)).network_domain_count

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Session:
        """Federation: resolve a `Session` representation through the loaders."""
        ref = decode_typed_global_id(str(id), SessionRef)
        return cls.from_model(await loaders_of(info).session.load(ref), exact=True)


def _edge_cursor(edge: SessionEdge) -> str:
    return encode_cursor(edge.kind, edge.cursor_value)


@strawberry.type(description="An edge of a session connection.")
class SessionEdge:
    # Made when selected (or for `pageInfo`'s first and last).
    cursor: str = computed(_edge_cursor, "Opaque cursor of this edge.")
    node: Session = strawberry.field(description="The session.")
    # The cursor's kind and upstream value (the session id, or an offset under a filter).
    kind: strawberry.Private[str]
    cursor_value: strawberry.Private[str]


@strawberry.type(
    description="A page of sessions, most recently active first (`last_active_at DESC` upstream)."
)
class SessionConnection:
    edges: list[SessionEdge] = strawberry.field(
        description="The edges of this page.", metadata=needs(per_item)
    )
    page_info: PageInfo = strawberry.field(description="Exact page information.")
    total_count: int = strawberry.field(
        description="How many sessions match the filter (the upstream `count`)."
    )

    @resolver("The sessions of this page (the edges' nodes).", needs(per_item))
    def nodes(self) -> list[Session]:
        return [edge.node for edge in self.edges]


def session_edge(raw: m.Session, kind: str, cursor_value: str, *, exact: bool) -> SessionEdge:
    """An edge of a sessions connection, its cursor `kind` wrapping `cursor_value`."""
    return SessionEdge(
        node=Session.from_model(raw, exact=exact), kind=kind, cursor_value=cursor_value
    )


async def sessions_connection(
    loaders: Loaders,
    settings: Settings,
    first: int | None,
    after: str | None,
    session_filter: SessionFilter | None,
) -> SessionConnection:
    """A page of `GET /sessions` as a Relay connection.

    A filter on anything but the initiator or session id pages by `offset`, not by
    `after_session_id`: Coder orders such a list by the filtered `last_active_at` but places the
    cursor by the whole session's, so a cursor walk would repeat or skip sessions.
    """
    gql_filter = session_filter or SessionFilter()
    whole = gql_filter.selects_whole_sessions
    kind = "Session" if whole else "FilteredSession"
    args = forward_args(kind, first, after, settings=settings, upstream_max=LIST_LIMIT_MAX)
    offset = 0 if whole else cursor_offset(args.after)
    response = await loaders.sessions_page(
        gql_filter.to_upstream(),
        limit=args.limit,
        after_session_id=args.after if whole else None,
        offset=offset,
        whole_sessions=whole,
    )
    page = forward_page(response.sessions, args)
    edges = [
        session_edge(raw, kind, raw.id if whole else str(offset + n), exact=whole)
        for n, raw in enumerate(page.items, start=1)
    ]
    return SessionConnection(
        edges=edges,
        page_info=page_info(edges, page),
        total_count=response.count,
    )


def _included(info: GraphQLResolveInfo[Any], node: Selection) -> bool:
    directives = convert_node_directives(info, node.directives)
    return directives.get("skip", {}).get("if") is not True and (
        directives.get("include", {}).get("if") is not False
    )


def _threads_arguments(info: GraphQLResolveInfo[Any]) -> Iterator[dict[str, Any]]:
    """The arguments of the `threads` fields this field (`session`, or `node` of a session id)
    selects of a Session, through fragments, unless skipped (graphql-core's nodes: Strawberry's
    `selected_fields` would convert the whole tree)."""
    session = info.schema.get_type("Session")
    assert isinstance(session, GraphQLObjectType)
    fields: dict[str, list[FieldNode]] = {}
    seen: set[str] = set()
    for root in info.field_nodes:
        if root.selection_set is not None:
            collect_fields(
                info.schema,
                info.fragments,
                session,
                root.selection_set,
                fields,
                lambda node: _included(info, node),
                seen,
            )
    for nodes in fields.values():
        for node in nodes:
            if node.name.value == "threads":
                yield convert_node_arguments(info, node.arguments)


def _int(value: object) -> int | None:
    # Literal arguments arrive as their source text, variables as Python values.
    return None if value is None else int(str(value))


def prefetch_threads(info: Info, session_id: str) -> None:
    """Start the forward `threads` pages the query asks of this session, before it resolves.

    `GET /sessions/{id}` needs only the session id, so a `session(sessionId:) { threads }` query
    costs one round trip of two concurrent calls instead of two in a row. Arguments that do not
    validate are left to the `threads` resolver to report.
    """
    loaders = loaders_of(info)
    for args in _threads_arguments(raw_info(info)):
        try:
            parsed = both_ways_args(
                "Thread",
                _int(args.get("first")),
                args.get("after"),
                _int(args.get("last")),
                args.get("before"),
                settings=info.context.settings,
                upstream_max=THREADS_LIMIT_MAX,
            )
            if not isinstance(parsed, Forward):
                continue
            after = cursor_uuid("Thread", parsed.after)
        except BadUserInput:
            continue
        loaders.prefetch_threads(session_id, limit=parsed.limit, after_id=after)
