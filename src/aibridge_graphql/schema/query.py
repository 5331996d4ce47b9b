"""The root `Query`: Relay `node`/`nodes`, the session and interception lists, models, clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated

import strawberry

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.inputs import checked_text
from aibridge_graphql.core.loaders import Loaders
from aibridge_graphql.core.refs import InterceptionRef, SessionRef, ThreadRef, UserRef
from aibridge_graphql.schema.engine.compat import raw_info
from aibridge_graphql.schema.engine.needs import FieldEstimate, estimator_for, needs
from aibridge_graphql.schema.filters import (
    INTERCEPTIONS_CALLS,
    SESSIONS_CALLS,
    InterceptionFilter,
    SessionFilter,
)
from aibridge_graphql.schema.gateway_keys import KEYS_RULES, AIGatewayKey
from aibridge_graphql.schema.ids import (
    decode_global_id,
)
from aibridge_graphql.schema.interception import (
    Interception,
    InterceptionConnection,
    interceptions_connection,
)
from aibridge_graphql.schema.network import Provider
from aibridge_graphql.schema.node import NODE_DESCRIPTION, Info, Node, loaders_of, resolver
from aibridge_graphql.schema.pagination import After, First
from aibridge_graphql.schema.session import (
    Session,
    SessionConnection,
    prefetch_threads,
    session_by_detail,
    sessions_connection,
)
from aibridge_graphql.schema.spend import (
    SPEND_ERA,
    AIGroupSpendReport,
    AISpendStatus,
    GroupIdsArg,
    OrganizationArg,
    UserArg,
    group_spend,
    user_spend,
)
from aibridge_graphql.schema.thread import Thread
from aibridge_graphql.schema.usage_report import (
    USAGE_DESCRIPTION,
    GroupBy,
    MaxCalls,
    Usage,
    resolve_usage,
)
from aibridge_graphql.schema.user import User
from aibridge_graphql.upstream.projection import ALL_RECORDS

_PARTIAL = " Null with an error when the upstream call fails; sibling fields are unaffected."
# Said wherever interceptions are read: Coder removed the endpoint in mid-2026.
INTERCEPTIONS_ERA = (
    " On a Coder without `GET /interceptions` (the AI Gateway API, mid-2026 on) it is null "
    "with UPSTREAM_UNSUPPORTED, and the upstream is not called: use `sessions` and their "
    "`threads`."
)
_MAX_NODES = 100

GlobalId = Annotated[strawberry.ID, strawberry.argument(description="A global ID (`Node.id`).")]
GlobalIds = Annotated[
    list[strawberry.ID],
    strawberry.argument(description=f"Up to {_MAX_NODES} global IDs (`Node.id`)."),
]
Prefix = Annotated[
    str | None, strawberry.argument(description="Only names starting with this (case-sensitive).")
]
SessionIdArg = Annotated[
    str, strawberry.argument(description="The upstream session id (`Session.sessionId`).")
]
InitiatorArg = Annotated[
    str | None,
    strawberry.argument(description="The session's user: Coder UUID, username, or `me`."),
]
SessionFilterArg = Annotated[
    SessionFilter | None, strawberry.argument(description="Narrow the list (all keys ANDed).")
]
InterceptionFilterArg = Annotated[
    InterceptionFilter | None,
    strawberry.argument(description="Narrow the list (all keys ANDed)."),
]


# What a lookup by global ID costs, by the type the ID names (`resolve_node`): the calls, and the
# type whose selections follow. A Thread's takes its page and its session's.
_LOOKUP_CALLS: dict[type[object], tuple[str, int]] = {
    UserRef: ("User", 1),
    SessionRef: ("Session", 1),
    InterceptionRef: ("Interception", 1),
    ThreadRef: ("Thread", 2),
}


def lookup_calls(estimate: FieldEstimate, global_id: object) -> int:
    """The calls of `resolve_node(global_id)` with what the field selects of the object."""
    if not isinstance(global_id, str):
        return 0  # refused by input coercion
    try:
        ref = decode_global_id(global_id)
    except BadUserInput:
        return 0  # refused by the resolver before any call
    type_name, calls = _LOOKUP_CALLS[type(ref)]
    return calls + estimate.cost_as(type_name)


def _nodes_calls(estimate: FieldEstimate) -> int:
    ids = estimate.list_arg("ids")
    if len(ids) > _MAX_NODES:
        return 0  # refused without calling upstream
    return sum(lookup_calls(estimate, global_id) for global_id in ids)


def _session_calls(estimate: FieldEstimate) -> int:
    # The lookup's call, unless the session-detail call its selections make answers it.
    return (0 if session_by_detail(estimate) else 1) + estimate.children()


def _usage_calls(estimate: FieldEstimate) -> int:
    # The scan's allowance is its most: `maxUpstreamCalls`, else the whole budget.
    budget = estimate.estimator.settings.upstream_call_budget
    value = estimate.arg("maxUpstreamCalls")
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, min(value, budget))
    return budget


async def resolve_node(loaders: Loaders, global_id: str) -> Node:
    """Fetch any entity by its global ID through the request's loaders."""
    ref = decode_global_id(global_id)
    match ref:
        case UserRef():
            return User.from_model(await loaders.user.load(ref.id))
        case SessionRef():
            return Session.from_model(await loaders.session.load(ref), exact=True)
        case InterceptionRef():
            return Interception.from_model(await loaders.interception.load(ref))
        case ThreadRef():
            # Both lookups run together; settle both so no failure goes unobserved.
            raw_thread, raw_session = await asyncio.gather(
                loaders.thread.load(ref), loaders.session.load(ref.session), return_exceptions=True
            )
            if isinstance(raw_thread, BaseException):
                raise raw_thread
            if isinstance(raw_session, BaseException):
                raise raw_session
            return Thread.from_model(raw_thread, Session.from_model(raw_session, exact=True))
    raise BadUserInput(f"Malformed node ID: {global_id!r}.")  # pragma: no cover


def _nodes(loaders: Loaders, ids: list[strawberry.ID]) -> list[Awaitable[Node]]:
    if len(ids) > _MAX_NODES:
        raise BadUserInput(f"`ids` takes at most {_MAX_NODES} IDs (got {len(ids)}).")
    # One awaitable per item: a failing ID becomes a null item with its own error.
    return [resolve_node(loaders, str(global_id)) for global_id in ids]


@strawberry.type(
    description=(
        "The AI Bridge API as a graph. Every field forwards your Coder token. A request may make "
        "a bounded number of upstream calls (the gateway's upstream-call budget): a document "
        "whose estimate exceeds it is refused with COST_ESTIMATED_TOO_EXPENSIVE before it runs, "
        "and a call beyond it fails its field with UPSTREAM_CALL_BUDGET_EXCEEDED. A list's items "
        "multiply what is selected under them: each session's `threads` is one more call."
    )
)
class Query:
    @resolver(
        f"Fetch any object by its global ID. {NODE_DESCRIPTION} Malformed IDs give "
        "BAD_USER_INPUT; unknown or invisible ones null with NOT_FOUND. An Interception ID on "
        "a Coder without `GET /interceptions` gives UPSTREAM_UNSUPPORTED.",
        needs(lambda estimate: lookup_calls(estimate, estimate.arg("id"))),
    )
    async def node(self, info: Info, id: GlobalId) -> Node | None:
        ref = decode_global_id(str(id))
        if isinstance(ref, SessionRef):
            prefetch_threads(info, ref.session_id)
        return await resolve_node(loaders_of(info), str(id))

    @resolver(
        f"Fetch up to {_MAX_NODES} objects by global ID, in order; each failing ID "
        "is a null item with its own error (UPSTREAM_UNSUPPORTED for Interception IDs on a "
        "Coder without `GET /interceptions`).",
        needs(_nodes_calls),
    )
    def nodes(self, info: Info, ids: GlobalIds) -> list[Node | None]:
        return _nodes(loaders_of(info), ids)  # type: ignore[return-value]

    @resolver(
        "Sessions, most recently active first (`GET /sessions`, one call per page). Filtered "
        "on anything but `initiator` or `sessionId`, pages follow the upstream `offset` instead "
        "of its session cursor, which is inexact under such filters; a session that becomes "
        "active during such a walk can shift the rest by one place." + _PARTIAL,
        SESSIONS_CALLS,
    )
    async def sessions(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: SessionFilterArg = None,
    ) -> SessionConnection | None:
        return await sessions_connection(
            loaders_of(info), info.context.settings, first, after, filter
        )

    @resolver(
        "One session by its upstream session id (one `GET /sessions` call). When several "
        "users share a client session id, pass `initiator` (UUID or username) or use "
        "`node(id:)`; otherwise the most recently active one is returned. Its forward "
        "`threads` pages are fetched alongside the lookup, not after it; without `initiator`, "
        "when nothing selected needs the list item (`lastActiveAt`, `lastPrompt`, "
        "`threadCount`, `threads.totalCount`), their `GET /sessions/{id}` is the lookup and "
        "the only call. Null with NOT_FOUND when there is none.",
        needs(_session_calls),
    )
    async def session(
        self, info: Info, session_id: SessionIdArg, initiator: InitiatorArg = None
    ) -> Session | None:
        if not session_id:
            # Coder reads an empty `session_id` filter as none: it would return any session.
            raise BadUserInput("`sessionId` must not be empty.")
        checked_text("sessionId", session_id)
        checked_text("initiator", initiator)
        loaders = loaders_of(info)
        prefetch_threads(info, session_id)
        # Strawberry's `Info` wraps graphql-core's, which the estimate's walk reads.
        if session_by_detail(estimator_for(raw_info(info), info.context.settings)):
            return Session.from_detail(await loaders.session_by_detail(session_id))
        return Session.from_model(await loaders.find_session(session_id, initiator), exact=True)

    @resolver(
        "Interceptions, newest first (`GET /interceptions`, one call per page)."
        + _PARTIAL
        + INTERCEPTIONS_ERA,
        INTERCEPTIONS_CALLS,
    )
    async def interceptions(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: InterceptionFilterArg = None,
    ) -> InterceptionConnection | None:
        return await interceptions_connection(
            loaders_of(info), info.context.settings, first, after, filter
        )

    @resolver(USAGE_DESCRIPTION, needs(_usage_calls, reads=ALL_RECORDS))
    async def usage(
        self,
        info: Info,
        group_by: GroupBy,
        filter: SessionFilterArg = None,
        max_upstream_calls: MaxCalls = None,
    ) -> Usage | None:
        return await resolve_usage(info, filter, group_by, max_upstream_calls)

    @resolver(
        "Every model seen, sorted, optionally by name prefix (`GET /models`, paged "
        "by 1000 until exhausted)." + _PARTIAL,
        needs(1),  # further pages are left to the run-time cap
    )
    async def models(self, info: Info, prefix: Prefix = None) -> list[str] | None:
        return await loaders_of(info).strings("models", checked_text("prefix", prefix))

    @resolver(
        "Every client seen (`Unknown` for none), optionally by name prefix "
        "(`GET /clients`, paged by 1000 until exhausted)." + _PARTIAL,
        needs(1),
    )
    async def clients(self, info: Info, prefix: Prefix = None) -> list[str] | None:
        return await loaders_of(info).strings("clients", checked_text("prefix", prefix))

    @resolver(
        "The LLM providers configured in the AI Gateway (`GET /providers`, owners and "
        "auditors; members get NOT_FOUND). Coder releases before it give UPSTREAM_UNSUPPORTED "
        "(each session lists its `providers`)." + _PARTIAL,
        needs(1),
    )
    async def providers(self, info: Info) -> list[Provider] | None:
        return [Provider.from_model(raw) for raw in await loaders_of(info).provider_list()]

    @resolver(
        "A user's AI spend and effective budget in the current period, Coder's own figures "
        "(`GET /api/v2/users/{user}/ai/spend`, one call); `me` (the default) is the caller, "
        "which is how a member reads their own. Another user's is NOT_FOUND for a member, as "
        "from Coder." + SPEND_ERA + _PARTIAL,
        needs(1),
    )
    async def ai_spend(self, info: Info, user: UserArg = "me") -> AISpendStatus | None:
        return await user_spend(info, user)

    @resolver(
        "Groups' budgets and spend in the current period, Coder's own figures "
        "(`GET /api/v2/organizations/{organization}/groups/ai/spend?group_ids=`, one call for "
        "the whole list). Groups the caller may not read are left out, as Coder "
        "does (a member of the organization reads its groups)." + SPEND_ERA + _PARTIAL,
        needs(1),
    )
    async def ai_group_spend(
        self, info: Info, organization: OrganizationArg, group_ids: GroupIdsArg
    ) -> AIGroupSpendReport | None:
        return await group_spend(info, organization, group_ids)

    @resolver(
        "The AI Gateway keys of standalone AI Gateway replicas, oldest first "
        "(`GET /api/v2/ai-gateway/keys`, one call, never cached); never a secret."
        + KEYS_RULES
        + _PARTIAL,
        needs(1),
    )
    async def ai_gateway_keys(self, info: Info) -> list[AIGatewayKey] | None:
        raw = await loaders_of(info).gateway_keys.list()
        return [AIGatewayKey.from_model(key) for key in raw]
