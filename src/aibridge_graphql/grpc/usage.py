"""`aibridge.v1.UsageService`: the usage report of core/usage, as GraphQL's `usage` gives it.

The same `aggregate_usage` and `source_for` as the GraphQL face, with the same allowance rule
(`max_upstream_calls` within 1..budget, 0 the whole budget), so the rows are the same for the
same arguments and a call costs the upstream what the GraphQL field does.
"""

from __future__ import annotations

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.pricing import Cost, TokenCounts
from aibridge_graphql.core.usage import (
    Dimension,
    UsageReport,
    UsageRow,
    aggregate_usage,
    source_for,
)
from aibridge_graphql.grpc import convert
from aibridge_graphql.grpc.gen.aibridge.v1 import usage_service_pb2 as usage_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import usage_service_pb2_grpc as usage_grpc
from aibridge_graphql.grpc.services import Context, Face

_DIMENSIONS: dict[usage_pb.UsageDimension.ValueType, Dimension] = {
    usage_pb.USAGE_DIMENSION_USER: Dimension.USER,
    usage_pb.USAGE_DIMENSION_MODEL: Dimension.MODEL,
    usage_pb.USAGE_DIMENSION_PROVIDER: Dimension.PROVIDER,
    usage_pb.USAGE_DIMENSION_PROVIDER_NAME: Dimension.PROVIDER_NAME,
    usage_pb.USAGE_DIMENSION_CLIENT: Dimension.CLIENT,
    usage_pb.USAGE_DIMENSION_DAY: Dimension.DAY,
}
_DIMENSION_VALUES = {dim: value for value, dim in _DIMENSIONS.items()}
_SOURCES = {
    "interceptions": usage_pb.USAGE_SOURCE_INTERCEPTIONS,
    "sessions": usage_pb.USAGE_SOURCE_SESSIONS,
}
_COST_SOURCES = {
    "gateway": usage_pb.COST_SOURCE_GATEWAY,
    "override": usage_pb.COST_SOURCE_OVERRIDE,
    "coder": usage_pb.COST_SOURCE_CODER,
    "mixed": usage_pb.COST_SOURCE_MIXED,
}


def _invalid(field: str, detail: str) -> BadUserInput:
    return BadUserInput(
        f"`{field}` {detail}.", extensions={"validations": [{"field": field, "detail": detail}]}
    )


def dimensions(values: list[usage_pb.UsageDimension.ValueType]) -> list[Dimension]:
    """The request's `group_by`; an unspecified or unknown value is INVALID_ARGUMENT."""
    out = []
    for value in values:
        dim = _DIMENSIONS.get(value)
        if dim is None:
            raise _invalid("group_by", f"holds {value}, which is not a usage dimension")
        out.append(dim)
    return out


def max_calls(value: int, call_budget: int) -> int:
    """The scan's allowance: 0 is the call budget, else within 1..call_budget (as GraphQL's)."""
    if value == 0:
        return call_budget
    if value < 1 or value > call_budget:
        raise _invalid("max_upstream_calls", f"must be between 1 and {call_budget} (got {value})")
    return value


def tokens(counts: TokenCounts) -> usage_pb.TokenCounts:
    """Token counts per kind."""
    return usage_pb.TokenCounts(
        input=counts.input,
        output=counts.output,
        cache_read=counts.cache_read,
        cache_write=counts.cache_write,
        total=counts.total,
    )


def cost(value: Cost) -> usage_pb.Cost:
    """A pricing `Cost` as the message (micros unset when nothing was priced)."""
    message = usage_pb.Cost(
        currency=value.currency,
        source=_COST_SOURCES.get(value.source or "", usage_pb.COST_SOURCE_UNSPECIFIED),
        complete=value.complete,
        priced_usages=value.priced_usages,
        unpriced_usages=value.unpriced_usages,
        unpriced_tokens=tokens(value.unpriced_tokens),
        unpriced_reasons=[
            usage_pb.UnpricedCount(
                reason=usage_pb.UnpricedReason.Value(f"UNPRICED_REASON_{reason.value}"),
                usages=count,
            )
            for reason, count in value.unpriced_reasons
        ],
    )
    if value.micros is not None:
        message.micros = value.micros
        message.amount = str(value.decimal)
    kinds = value.breakdown
    if kinds is not None:
        message.breakdown.CopyFrom(
            usage_pb.CostBreakdown(
                input_micros=kinds.input,
                output_micros=kinds.output,
                cache_read_micros=kinds.cache_read,
                cache_write_micros=kinds.cache_write,
            )
        )
    return message


def row(value: UsageRow) -> usage_pb.UsageRow:
    """One group (or the totals): unset dimensions and counts stay unset."""
    key = value.key
    message = usage_pb.UsageRow(tokens=tokens(value.tokens), cost=cost(value.cost))
    texts = {
        "user_id": str(key.user_id) if key.user_id else None,
        "username": key.username,
        "model": key.model,
        "provider": key.provider,
        "provider_name": key.provider_name,
        "client": key.client,
        "day": key.day.isoformat() if key.day else None,
    }
    for name, text in texts.items():
        if text is not None:
            setattr(message, name, text)
    counts = {
        "sessions": value.sessions,
        "threads": value.threads,
        "interceptions": value.interceptions,
    }
    for name, count in counts.items():
        if count is not None:
            setattr(message, name, count)
    return message


def report(value: UsageReport) -> usage_pb.GetUsageResponse:
    """The whole report."""
    scanned = value.scanned
    return usage_pb.GetUsageResponse(
        group_by=[_DIMENSION_VALUES[dim] for dim in value.group_by],
        source=_SOURCES[value.source],
        rows=[row(item) for item in value.rows],
        totals=row(value.totals),
        complete=value.complete,
        incomplete_reason=value.incomplete_reason or "",
        scanned=usage_pb.UsageScan(
            upstream_calls=scanned.upstream_calls,
            interceptions=scanned.interceptions,
            sessions=scanned.sessions,
            threads=scanned.threads,
        ),
    )


class UsageService(usage_grpc.UsageServiceServicer):
    """`aibridge.v1.UsageService`."""

    def __init__(self, face: Face) -> None:
        self._face = face

    async def GetUsage(
        self, request: usage_pb.GetUsageRequest, context: Context
    ) -> usage_pb.GetUsageResponse:
        face = self._face
        search = convert.session_filter(request.filter)
        group_by = dimensions(list(request.group_by))
        allowance = max_calls(request.max_upstream_calls, face.settings.upstream_call_budget)
        loaders = face.loaders(context)
        result = await aggregate_usage(
            loaders,
            search,
            group_by,
            source=await source_for(loaders),
            max_calls=allowance,
        )
        return report(result)
