"""`Query.usage`: tokens and cost grouped by user, model, provider, client and day.

The aggregation is protocol-neutral (aibridge_graphql.core.usage); this module maps its
arguments and its report to GraphQL.
"""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated

import strawberry

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.usage import (
    Dimension,
    UsageReport,
    UsageRow,
    aggregate_usage,
    source_for,
)
from aibridge_graphql.schema.amounts import BigInt, Cost
from aibridge_graphql.schema.filters import SessionFilter
from aibridge_graphql.schema.node import Info, loaders_of

USAGE_DESCRIPTION = (
    "Tokens and cost of the usage the filter selects, grouped by `groupBy` (an empty list gives "
    "only the totals). Read from the cheapest upstream source the server offers: the "
    "`GET /interceptions` walk (1000 a call; rows count interceptions, not sessions or threads) "
    "where it exists, else `GET /sessions` plus `GET /sessions/{id}` per session (rows count "
    "sessions and threads; no PROVIDER_NAME). The scan spends at most `maxUpstreamCalls` "
    "upstream calls (counted in full against the request's budget before it runs); when they, "
    "the budget or the deadline run out first, the answer has `complete: false` and the reason. "
    "Null with an error when an upstream call fails."
)

MaxCalls = Annotated[
    int | None,
    strawberry.argument(
        description=(
            "The most upstream calls the scan may make (default and maximum: the gateway's "
            "per-request budget, `AIBRIDGE_UPSTREAM_CALL_BUDGET`)."
        )
    ),
]


GROUP_BY_DESCRIPTION = (
    "The dimensions to group by, in the order the rows' columns take them (duplicates ignored)."
)


@strawberry.enum(description="What usage can be grouped by.")
class UsageDimension(Enum):
    USER = strawberry.enum_value("USER", description="The initiating user (id and username).")
    MODEL = strawberry.enum_value("MODEL", description="The model.")
    PROVIDER = strawberry.enum_value(
        "PROVIDER", description="The runtime provider type (`anthropic`, `openai`, ...)."
    )
    PROVIDER_NAME = strawberry.enum_value(
        "PROVIDER_NAME",
        description="The configured provider's name (interceptions only, not the sessions walk).",
    )
    CLIENT = strawberry.enum_value("CLIENT", description="The client, e.g. `Claude Code`.")
    DAY = strawberry.enum_value("DAY", description="The UTC day the usage started.")


@strawberry.enum(description="Which upstream source a usage report was read from.")
class UsageSource(Enum):
    INTERCEPTIONS = strawberry.enum_value(
        "interceptions", description="The `GET /interceptions` walk."
    )
    SESSIONS = strawberry.enum_value(
        "sessions", description="`GET /sessions` and each session's `GET /sessions/{id}`."
    )


@strawberry.type(
    name="UsageRow",
    description=(
        "One group of usage. A dimension not grouped by is null. Counts the source cannot tell "
        "are null: `sessions`/`threads` from the interceptions walk, `interceptions` from the "
        "sessions walk."
    ),
)
class UsageRowType:
    user_id: strawberry.ID | None = strawberry.field(description="USER: the Coder user UUID.")
    username: str | None = strawberry.field(description="USER: the username.")
    model: str | None = strawberry.field(description="MODEL: the model.")
    provider: str | None = strawberry.field(description="PROVIDER: the runtime provider type.")
    provider_name: str | None = strawberry.field(
        description="PROVIDER_NAME: the configured provider's name."
    )
    client: str | None = strawberry.field(
        description="CLIENT: the client (null for usage without one)."
    )
    day: date | None = strawberry.field(
        description="DAY: the UTC day the interception (or thread) started."
    )
    sessions: int | None = strawberry.field(description="Distinct sessions in the group.")
    threads: int | None = strawberry.field(description="Distinct threads in the group.")
    interceptions: int | None = strawberry.field(description="Interceptions in the group.")
    input_tokens: BigInt = strawberry.field(description="Input tokens (cache excluded).")
    output_tokens: BigInt = strawberry.field(description="Output tokens.")
    cache_read_input_tokens: BigInt = strawberry.field(description="Cache-read input tokens.")
    cache_write_input_tokens: BigInt = strawberry.field(description="Cache-write input tokens.")
    total_tokens: BigInt = strawberry.field(description="All four kinds.")
    cost: Cost = strawberry.field(description="What the group's usage cost.")

    @classmethod
    def of(cls, row: UsageRow) -> UsageRowType:
        key = row.key
        return cls(
            user_id=strawberry.ID(str(key.user_id)) if key.user_id else None,
            username=key.username,
            model=key.model,
            provider=key.provider,
            provider_name=key.provider_name,
            client=key.client,
            day=key.day,
            sessions=row.sessions,
            threads=row.threads,
            interceptions=row.interceptions,
            input_tokens=BigInt(row.tokens.input),
            output_tokens=BigInt(row.tokens.output),
            cache_read_input_tokens=BigInt(row.tokens.cache_read),
            cache_write_input_tokens=BigInt(row.tokens.cache_write),
            total_tokens=BigInt(row.tokens.total),
            cost=Cost.of(row.cost),
        )


GroupBy = Annotated[list[UsageDimension], strawberry.argument(description=GROUP_BY_DESCRIPTION)]


@strawberry.type(description="What a usage scan read.")
class UsageScan:
    upstream_calls: int = strawberry.field(description="Upstream calls (pages) it made.")
    interceptions: int = strawberry.field(description="Interceptions read.")
    sessions: int = strawberry.field(description="Sessions read.")
    threads: int = strawberry.field(description="Threads read.")


@strawberry.type(description="A usage report: the groups, their totals, and whether it is whole.")
class Usage:
    group_by: list[UsageDimension] = strawberry.field(description="The grouping, in order.")
    source: UsageSource = strawberry.field(description="Where the data came from.")
    rows: list[UsageRowType] = strawberry.field(
        description="One row per group, ordered by the dimension values."
    )
    totals: UsageRowType = strawberry.field(description="Everything scanned (dimensions null).")
    complete: bool = strawberry.field(
        description="False when the scan stopped early: the figures are then a lower bound."
    )
    incomplete_reason: str | None = strawberry.field(description="Why it stopped early.")
    scanned: UsageScan = strawberry.field(description="What the scan read.")

    @classmethod
    def of(cls, report: UsageReport) -> Usage:
        scanned = report.scanned
        return cls(
            group_by=[UsageDimension(dim.value) for dim in report.group_by],
            source=UsageSource(report.source),
            rows=[UsageRowType.of(row) for row in report.rows],
            totals=UsageRowType.of(report.totals),
            complete=report.complete,
            incomplete_reason=report.incomplete_reason,
            scanned=UsageScan(
                upstream_calls=scanned.upstream_calls,
                interceptions=scanned.interceptions,
                sessions=scanned.sessions,
                threads=scanned.threads,
            ),
        )


def max_calls_of(value: int | None, call_budget: int) -> int:
    """The scan's allowance: the argument within 1..call_budget, the call budget when omitted."""
    if value is None:
        return call_budget
    if value < 1 or value > call_budget:
        raise BadUserInput(f"`maxUpstreamCalls` must be between 1 and {call_budget} (got {value}).")
    return value


async def resolve_usage(
    info: Info,
    usage_filter: SessionFilter | None,
    group_by: list[UsageDimension],
    max_upstream_calls: int | None,
) -> Usage:
    """The `usage` field: validate, pick the source, aggregate."""
    settings = info.context.settings
    loaders = loaders_of(info)
    report = await aggregate_usage(
        loaders,
        (usage_filter or SessionFilter()).to_upstream(),
        [Dimension(str(dim.value)) for dim in group_by],
        source=await source_for(loaders),
        max_calls=max_calls_of(max_upstream_calls, settings.upstream_call_budget),
    )
    return Usage.of(report)
