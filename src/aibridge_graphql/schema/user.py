"""The `User` entity: a Coder user as AI Bridge reports it (`MinimalUser`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated

import strawberry

from aibridge_graphql.core.refs import UserRef
from aibridge_graphql.schema.engine.needs import needs
from aibridge_graphql.schema.filters import (
    INTERCEPTIONS_CALLS,
    SESSIONS_CALLS,
    InterceptionFilter,
    SessionFilter,
)
from aibridge_graphql.schema.ids import decode_typed_global_id
from aibridge_graphql.schema.node import Info, Node, computed, loaders_of, resolver
from aibridge_graphql.schema.pagination import After, First
from aibridge_graphql.upstream import models as m

if TYPE_CHECKING:
    from aibridge_graphql.schema.interception import InterceptionConnection
    from aibridge_graphql.schema.session import SessionConnection
    from aibridge_graphql.schema.spend import AISpendStatus

_SCHEMA = "aibridge_graphql.schema"
SessionConnectionType = Annotated["SessionConnection", strawberry.lazy(f"{_SCHEMA}.session")]
InterceptionConnectionType = Annotated[
    "InterceptionConnection", strawberry.lazy(f"{_SCHEMA}.interception")
]
AISpendStatusType = Annotated["AISpendStatus", strawberry.lazy(f"{_SCHEMA}.spend")]
# Repeated from schema/spend.py, which imports nothing of this module (no import cycle).
_AI_SPEND = (
    "This user's AI spend and effective budget in the current period, Coder's own figures "
    "(`GET /api/v2/users/{id}/ai/spend`, one call). Members may read only their own (another "
    "user's is NOT_FOUND, as from Coder). Coder's enterprise AI Gateway API only: on a Coder "
    "without it (the sessions era) it is null with UPSTREAM_UNSUPPORTED (`extensions.missing` "
    "names the route), with no upstream call."
)
_FILTER = strawberry.argument(description="Narrow the list (all keys ANDed; `initiator` is set).")
SessionFilterArg = Annotated[SessionFilter | None, _FILTER]
InterceptionFilterArg = Annotated[InterceptionFilter | None, _FILTER]


def _id(user: User) -> strawberry.ID:
    # Made only when selected: `UUID.__str__` is not free, and most views show the username.
    return strawberry.ID(str(user.raw.id))


@strawberry.federation.type(
    keys=["id"],
    description=(
        "A Coder user who initiated AI Bridge traffic. `id` is the user's Coder UUID, which is "
        "also its global Node ID (UUIDs never collide with other types' IDs) and its federation "
        "key, so other subgraphs can extend `User` by the id they already know. Resolving a user "
        "by id alone goes through one `GET /sessions?q=initiator:<id>` call (AI Bridge has no "
        "users endpoint) and yields NOT_FOUND when the caller can see no session of that user."
    ),
)
class User(Node):
    id: strawberry.ID = computed(_id, "The user's Coder UUID (also its Node ID).")
    username: str = strawberry.field(description="The Coder username.")
    name: str = strawberry.field(description="The display name; may be empty.")
    avatar_url: str = strawberry.field(description="The avatar URL; may be empty.")
    raw: strawberry.Private[m.MinimalUser]

    @classmethod
    def from_model(cls, raw: m.MinimalUser) -> User:
        return cls(username=raw.username, name=raw.name, avatar_url=raw.avatar_url, raw=raw)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> User:
        """Federation: resolve a `User` representation through the request's loaders."""
        ref = decode_typed_global_id(str(id), UserRef)
        return cls.from_model(await loaders_of(info).user.load(ref.id))

    @resolver(
        "This user's sessions: `Query.sessions` with `filter.initiator` set to the "
        "user. Null with an error when the upstream call fails.",
        SESSIONS_CALLS,
    )
    async def sessions(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: SessionFilterArg = None,
    ) -> SessionConnectionType | None:
        from aibridge_graphql.schema.session import sessions_connection

        own = dataclasses.replace(filter or SessionFilter(), initiator=str(self.id))
        return await sessions_connection(loaders_of(info), info.context.settings, first, after, own)

    @resolver(
        "This user's interceptions: `Query.interceptions` with `filter.initiator` set "
        "to the user. Null with an error when the upstream call fails; UPSTREAM_UNSUPPORTED "
        "on a Coder without `GET /interceptions` (use `sessions`).",
        INTERCEPTIONS_CALLS,
    )
    async def interceptions(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: InterceptionFilterArg = None,
    ) -> InterceptionConnectionType | None:
        from aibridge_graphql.schema.interception import interceptions_connection

        own = dataclasses.replace(filter or InterceptionFilter(), initiator=str(self.id))
        return await interceptions_connection(
            loaders_of(info), info.context.settings, first, after, own
        )

    @resolver(_AI_SPEND, needs(1))
    async def ai_spend(self, info: Info) -> AISpendStatusType | None:
        from aibridge_graphql.schema.spend import user_spend

        return await user_spend(info, str(self.id))
