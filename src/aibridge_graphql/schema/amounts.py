"""The GraphQL form of `pricing.Cost`: exact micros as a string-encoded scalar, never a float.

GraphQL's `Int` is 32-bit: a month of a team's spend in micro-dollars passes 2^31 (about
$2,147) easily, so amounts are `Micros` and summed token counts `BigInt`, both integers sent
as JSON strings (`"12345678901"`) so no client parses them through a double.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from aibridge_graphql.core.pricing import Cost as CostValue
from aibridge_graphql.core.pricing import TokenCounts


def _parse_integer(value: object) -> int:
    # Outputs only today, but a scalar must parse: accept an integer or its decimal string.
    if isinstance(value, bool):
        raise ValueError("expected an integer or a string of digits")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise ValueError("expected an integer or a string of digits")


_MICROS_DESCRIPTION = (
    "An exact amount in millionths of the currency unit (micro-dollars for USD, as Coder's "
    '`cost_micros`), sent as a string of digits (e.g. `"1234567"` is 1.234567) because '
    "amounts exceed GraphQL's 32-bit Int."
)
_BIGINT_DESCRIPTION = "An integer that may exceed 32 bits, sent as a string of digits."

Micros = NewType("Micros", int)
BigInt = NewType("BigInt", int)

# The schema maps the two types to these (`StrawberryConfig.scalar_map`, see schema/__init__).
SCALAR_MAP: dict[object, ScalarDefinition] = {
    Micros: strawberry.scalar(
        name="Micros",
        description=_MICROS_DESCRIPTION,
        serialize=str,
        parse_value=_parse_integer,
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        description=_BIGINT_DESCRIPTION,
        serialize=str,
        parse_value=_parse_integer,
    ),
}


@strawberry.enum(description="Who priced a cost.")
class CostSource(Enum):
    GATEWAY = strawberry.enum_value("gateway", description="The gateway, with genai-prices.")
    OVERRIDE = strawberry.enum_value("override", description="The prices file (negotiated).")
    CODER = strawberry.enum_value("coder", description="Coder itself (`cost_micros`).")
    MIXED = strawberry.enum_value("mixed", description="A sum of parts priced by several.")


@strawberry.enum(description="Why usage could not be priced (it is unpriced, never free).")
class UnpricedReason(Enum):
    UNKNOWN_PROVIDER = strawberry.enum_value(
        "UNKNOWN_PROVIDER", description="No price list maps the provider."
    )
    UNKNOWN_MODEL = strawberry.enum_value(
        "UNKNOWN_MODEL", description="The provider is known but the model is not."
    )
    NO_TOKEN_PRICES = strawberry.enum_value(
        "NO_TOKEN_PRICES",
        description="The model is priced in other units (requests, audio), not tokens.",
    )
    CURRENCY_MISMATCH = strawberry.enum_value(
        "CURRENCY_MISMATCH", description="Priced in another currency than the rest of the sum."
    )
    INVALID_USAGE = strawberry.enum_value(
        "INVALID_USAGE", description="Negative token counts: nothing sensible to price."
    )


@strawberry.type(description="Micro-units per token kind.")
class CostBreakdown:
    input: Micros = strawberry.field(description="Input tokens (cache excluded).")
    output: Micros = strawberry.field(description="Output tokens.")
    cache_read: Micros = strawberry.field(description="Cache-read input tokens.")
    cache_write: Micros = strawberry.field(description="Cache-write input tokens.")


@strawberry.type(description="Token counts per kind (of what could not be priced).")
class TokenCountsByKind:
    input: BigInt = strawberry.field(description="Input tokens (cache excluded).")
    output: BigInt = strawberry.field(description="Output tokens.")
    cache_read: BigInt = strawberry.field(description="Cache-read input tokens.")
    cache_write: BigInt = strawberry.field(description="Cache-write input tokens.")
    total: BigInt = strawberry.field(description="All of them.")

    @classmethod
    def of(cls, tokens: TokenCounts) -> TokenCountsByKind:
        return cls(
            input=BigInt(tokens.input),
            output=BigInt(tokens.output),
            cache_read=BigInt(tokens.cache_read),
            cache_write=BigInt(tokens.cache_write),
            total=BigInt(tokens.total),
        )


@strawberry.type(description="How many usages had one reason to be unpriced.")
class UnpricedCount:
    reason: UnpricedReason = strawberry.field(description="The reason.")
    usages: int = strawberry.field(description="How many usages.")


@strawberry.type(
    description=(
        "The cost of a usage or a sum of usages, exact. Unpriced is never 0: when nothing of it "
        "could be priced, `micros` and `amount` are null and `reason` says why; a partly priced "
        "sum has the priced amount, `complete: false` and the unpriced tokens and usages."
    )
)
class Cost:
    micros: Micros | None = strawberry.field(
        description="The priced amount in micro-units; null when none of it could be priced."
    )
    amount: Decimal | None = strawberry.field(
        description="`micros` as an exact decimal in currency units (a string, e.g. `1.234567`)."
    )
    currency: str = strawberry.field(description="ISO 4217 code (USD for genai-prices).")
    breakdown: CostBreakdown | None = strawberry.field(
        description="Per token kind; null when unpriced or when a part came as Coder's total."
    )
    source: CostSource | None = strawberry.field(
        description="Who priced it (MIXED for sums of several); null when nothing was priced."
    )
    complete: bool = strawberry.field(description="Whether every usage in it was priced.")
    priced_usages: int = strawberry.field(description="Usages priced.")
    unpriced_usages: int = strawberry.field(description="Usages that could not be priced.")
    unpriced_tokens: TokenCountsByKind = strawberry.field(
        description="Tokens that could not be priced (not counted in the amount)."
    )
    reason: UnpricedReason | None = strawberry.field(
        description="Why it is unpriced, when all its unpriced usages share one reason."
    )
    unpriced_reasons: list[UnpricedCount] = strawberry.field(
        description="Every reason with its count of unpriced usages."
    )

    @classmethod
    def of(cls, cost: CostValue) -> Cost:
        """The GraphQL view of a pricing `Cost`."""
        kinds = cost.breakdown
        return cls(
            micros=None if cost.micros is None else Micros(cost.micros),
            amount=cost.decimal,
            currency=cost.currency,
            breakdown=None
            if kinds is None
            else CostBreakdown(
                input=Micros(kinds.input),
                output=Micros(kinds.output),
                cache_read=Micros(kinds.cache_read),
                cache_write=Micros(kinds.cache_write),
            ),
            source=None if cost.source is None else CostSource(cost.source),
            complete=cost.complete,
            priced_usages=cost.priced_usages,
            unpriced_usages=cost.unpriced_usages,
            unpriced_tokens=TokenCountsByKind.of(cost.unpriced_tokens),
            reason=None if cost.reason is None else UnpricedReason(cost.reason.value),
            unpriced_reasons=[
                UnpricedCount(reason=UnpricedReason(reason.value), usages=count)
                for reason, count in cost.unpriced_reasons
            ],
        )
