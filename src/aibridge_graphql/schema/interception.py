"""The `Interception` entity: one proxied LLM request/response as AI Bridge recorded it."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from aibridge_graphql.core.loaders import LIST_LIMIT_MAX, Loaders
from aibridge_graphql.core.refs import InterceptionRef
from aibridge_graphql.core.usage import interception_cost
from aibridge_graphql.schema.amounts import Cost
from aibridge_graphql.schema.engine.needs import needs, per_item
from aibridge_graphql.schema.filters import InterceptionFilter
from aibridge_graphql.schema.ids import (
    cursor_uuid,
    decode_typed_global_id,
    encode_cursor,
    encode_global_id,
)
from aibridge_graphql.schema.node import Info, Node, computed, json_value, loaders_of, resolver
from aibridge_graphql.schema.pagination import PageInfo, forward_args, forward_page, page_info
from aibridge_graphql.schema.usage import TokenUsage, ToolUsage, UserPrompt
from aibridge_graphql.schema.user import User
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import models as m


# What the `computed` fields of an Interception make of its `raw`, when selected.
def _global_id(item: Interception) -> strawberry.ID:
    raw = item.raw
    return strawberry.ID(
        encode_global_id(InterceptionRef(raw.id, raw.initiator.id, raw.started_at))
    )


def _interception_id(item: Interception) -> strawberry.ID:
    return strawberry.ID(str(item.raw.id))


def _initiator(item: Interception) -> User:
    return User.from_model(item.raw.initiator)


def _metadata(item: Interception) -> JSON | None:
    return json_value(item.raw.metadata)


@strawberry.federation.type(
    keys=["id"],
    description=(
        "One intercepted LLM request (an item of `GET /interceptions`). Its federation key is the "
        "global `id`, not `interceptionId`: the REST API cannot fetch an interception by its UUID "
        "alone, while the global ID also carries the initiator and start time needed to refetch "
        "it with one call. Coder releases without `GET /interceptions` (the AI Gateway API) "
        "cannot resolve it: lookups there give UPSTREAM_UNSUPPORTED."
    ),
)
class Interception(Node):
    # `computed` fields are made from `raw` only when selected (a table shows few of them).
    id: strawberry.ID = computed(_global_id, "The opaque global ID.")
    interception_id: strawberry.ID = computed(_interception_id, "The upstream UUID.")
    api_key_id: str | None = strawberry.field(description="The Coder API key id used, if any.")
    client: str | None = strawberry.field(description="The detected client, e.g. `Claude Code`.")
    initiator: User = computed(_initiator, "Who made the request.")
    provider: str = strawberry.field(description="The runtime provider type, e.g. `anthropic`.")
    provider_name: str = strawberry.field(description="The configured provider's name.")
    model: str = strawberry.field(description="The model asked for.")
    started_at: datetime = strawberry.field(description="When the request started.")
    ended_at: datetime | None = strawberry.field(description="When it ended.")
    metadata: JSON | None = computed(_metadata, "Interception metadata.")
    raw: strawberry.Private[m.Interception]

    # Resolvers, not fields: built only when the document selects them (most views do not).
    @resolver("Token usage, oldest first.", needs(reads=frozenset({"token_usages"})))
    def token_usages(self) -> list[TokenUsage]:
        return [TokenUsage.from_model(item, self.raw) for item in self.raw.token_usages]

    @resolver("User prompts, oldest first.", needs(reads=frozenset({"user_prompts"})))
    def user_prompts(self) -> list[UserPrompt]:
        return [UserPrompt.from_model(item) for item in self.raw.user_prompts]

    @resolver("Tool usages, oldest first.", needs(reads=frozenset({"tool_usages"})))
    def tool_usages(self) -> list[ToolUsage]:
        return [ToolUsage.from_model(item) for item in self.raw.tool_usages]

    @resolver(
        "What it cost: the sum of its token usages' costs (see `Cost`).",
        needs(reads=frozenset({"token_usages"})),
    )
    def cost(self, info: Info) -> Cost | None:
        return Cost.of(interception_cost(loaders_of(info).pricer, self.raw))

    @classmethod
    def from_model(cls, raw: m.Interception) -> Interception:
        return cls(
            api_key_id=raw.api_key_id,
            client=raw.client,
            provider=raw.provider,
            provider_name=raw.provider_name,
            model=raw.model,
            started_at=raw.started_at,
            ended_at=raw.ended_at,
            raw=raw,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Interception:
        """Federation: resolve an `Interception` representation through the loaders."""
        ref = decode_typed_global_id(str(id), InterceptionRef)
        return cls.from_model(await loaders_of(info).interception.load(ref))


def _edge_cursor(edge: InterceptionEdge) -> str:
    return encode_cursor("Interception", str(edge.node.raw.id))


@strawberry.type(description="An edge of an interception connection.")
class InterceptionEdge:
    # Made when selected (or for `pageInfo`'s first and last): the upstream `after_id` value.
    cursor: str = computed(_edge_cursor, "Opaque cursor of this edge.")
    node: Interception = strawberry.field(description="The interception.")


@strawberry.type(
    description="A page of interceptions, newest first (`started_at DESC, id DESC` upstream)."
)
class InterceptionConnection:
    edges: list[InterceptionEdge] = strawberry.field(
        description="The edges of this page.", metadata=needs(per_item)
    )
    page_info: PageInfo = strawberry.field(description="Exact page information.")
    total_count: int = strawberry.field(
        description="How many interceptions match the filter (the upstream `count`)."
    )

    @resolver("The interceptions of this page (the edges' nodes).", needs(per_item))
    def nodes(self) -> list[Interception]:
        return [edge.node for edge in self.edges]


def interception_edge(raw: m.Interception) -> InterceptionEdge:
    """An edge whose cursor is the upstream `after_id` value."""
    return InterceptionEdge(node=Interception.from_model(raw))


async def interceptions_connection(
    loaders: Loaders,
    settings: Settings,
    first: int | None,
    after: str | None,
    interception_filter: InterceptionFilter | None,
) -> InterceptionConnection:
    """A page of `GET /interceptions` as a Relay connection."""
    args = forward_args(
        "Interception", first, after, settings=settings, upstream_max=LIST_LIMIT_MAX
    )
    after_id = cursor_uuid("Interception", args.after)
    gql_filter = interception_filter or InterceptionFilter()
    response = await loaders.interceptions_page(
        gql_filter.to_upstream(), limit=args.limit, after_id=after_id
    )
    page = forward_page(response.results, args)
    edges = [interception_edge(raw) for raw in page.items]
    return InterceptionConnection(
        edges=edges,
        page_info=page_info(edges, page),
        total_count=response.count,
    )
