"""Coder's AI spend and budgets (enterprise, AI Gateway era): views of its figures (the budget
writes are schema/mutation.py's).

The routes live outside the AI Gateway prefix (`/api/v2/users/{user}/ai/spend`,
`/api/v2/organizations/{org}/groups/ai/spend`); the loaders reach them on the configured
upstream with the caller's token. The amounts are Coder's own (`source: CODER`), in micro-dollars.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated
from uuid import UUID

import strawberry

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.inputs import checked_text
from aibridge_graphql.schema.amounts import CostSource, Micros
from aibridge_graphql.schema.node import Info, loaders_of
from aibridge_graphql.upstream import models as m

# Coder refuses more (`group_ids has N entries, maximum is 100.`); refused here without a call.
MAX_GROUP_IDS = 100
# Coder's spend figures are micro-dollars (`*_micros`); it names no other currency.
CODER_CURRENCY = "USD"
_MICRO = Decimal(1_000_000)

SPEND_ERA = (
    " Coder's enterprise AI Gateway API only: on a Coder without it (the sessions era) it is "
    "null with UPSTREAM_UNSUPPORTED (`extensions.missing` names the route), with no upstream call."
)
UserArg = Annotated[
    str,
    strawberry.argument(description="The user: Coder UUID, username, or `me` (the caller)."),
]
OrganizationArg = Annotated[
    str, strawberry.argument(description="The organization: Coder UUID or name (e.g. `coder`).")
]
GroupIdsArg = Annotated[
    list[strawberry.ID],
    strawberry.argument(description=f"1 to {MAX_GROUP_IDS} group UUIDs (Coder's group ids)."),
]


@strawberry.type(description="An amount of money as Coder reports it: exact micro-units.")
class CoderAmount:
    micros: Micros = strawberry.field(description="The amount in micro-units (Coder's `_micros`).")
    amount: Decimal = strawberry.field(
        description="`micros` as an exact decimal in currency units (a string, e.g. `1.234567`)."
    )
    currency: str = strawberry.field(description="ISO 4217 code (USD: Coder counts micro-dollars).")
    source: CostSource = strawberry.field(description="Who computed it: always CODER here.")

    @classmethod
    def of(cls, micros: int) -> CoderAmount:
        """Coder's figure in micro-dollars."""
        return cls(
            micros=Micros(micros),
            amount=Decimal(micros) / _MICRO,
            currency=CODER_CURRENCY,
            source=CostSource.CODER,
        )


def _amount(micros: int | None) -> CoderAmount | None:
    return None if micros is None else CoderAmount.of(micros)


def _percent(spent: int, limit: int | None) -> float | None:
    # Undefined without a limit, and for a zero limit (any spend is "over" it, by how much is
    # not a percentage); rounded to hundredths, enough for a progress bar.
    if limit is None or limit <= 0:
        return None
    return round(spent * 100 / limit, 2)


@strawberry.enum(description="Where a user's effective AI budget comes from.")
class AIBudgetSource(Enum):
    GROUP = strawberry.enum_value(
        "group", description="A group's budget (the highest among the user's groups)."
    )
    USER_OVERRIDE = strawberry.enum_value(
        "user_override", description="An override set for this user."
    )
    OTHER = strawberry.enum_value(
        "other", description="A source this gateway does not know (see `limitSource`)."
    )


@strawberry.type(description="The budget in force for a user this period.")
class AIBudget:
    spend_limit: CoderAmount = strawberry.field(description="The period's spend limit.")
    source: AIBudgetSource = strawberry.field(description="Where the limit comes from.")
    limit_source: str = strawberry.field(
        description="Coder's `limit_source` as sent (`group`, `user_override`)."
    )

    @classmethod
    def from_model(cls, raw: m.AIBudgetLimit) -> AIBudget:
        known = {"group": AIBudgetSource.GROUP, "user_override": AIBudgetSource.USER_OVERRIDE}
        source = known.get(raw.limit_source, AIBudgetSource.OTHER)
        return cls(
            spend_limit=CoderAmount.of(raw.spend_limit_micros),
            source=source,
            limit_source=raw.limit_source,
        )


@strawberry.type(
    description=(
        "A user's AI spend in the current budget period, as Coder computes it "
        "(`GET /api/v2/users/{user}/ai/spend`)."
    )
)
class AISpendStatus:
    user_id: strawberry.ID = strawberry.field(description="The user's Coder UUID.")
    current_spend: CoderAmount = strawberry.field(description="Spent in the period so far.")
    period_start: datetime = strawberry.field(description="When the period began.")
    period_end: datetime = strawberry.field(description="When the period ends.")
    effective_budget: AIBudget | None = strawberry.field(
        description="The budget in force; null when the user has no limit."
    )
    effective_group_id: strawberry.ID | None = strawberry.field(
        description="The group whose budget (or override) counts the user's spend; may be null."
    )
    percent_used: float | None = strawberry.field(
        description=(
            "`currentSpend` as a percentage of the limit (hundredths; over 100 when exceeded); "
            "null without a budget or with a zero limit."
        )
    )
    remaining: CoderAmount | None = strawberry.field(
        description="What is left of the limit (0 once exceeded); null without a budget."
    )

    @classmethod
    def from_model(cls, raw: m.UserAISpendStatus) -> AISpendStatus:
        budget = raw.effective_budget
        limit = None if budget is None else budget.spend_limit_micros
        return cls(
            user_id=strawberry.ID(str(raw.user_id)),
            current_spend=CoderAmount.of(raw.current_spend_micros),
            period_start=raw.period_start,
            period_end=raw.period_end,
            effective_budget=None if budget is None else AIBudget.from_model(budget),
            effective_group_id=None
            if raw.effective_group_id is None
            else strawberry.ID(str(raw.effective_group_id)),
            percent_used=_percent(raw.current_spend_micros, limit),
            remaining=None
            if limit is None
            else CoderAmount.of(max(0, limit - raw.current_spend_micros)),
        )


@strawberry.type(description="One group's budget and spend in the period, as Coder computes it.")
class AIGroupSpend:
    group_id: strawberry.ID = strawberry.field(description="The group's Coder UUID.")
    spend_limit: CoderAmount | None = strawberry.field(
        description="The group's per-member budget; null when the group has none."
    )
    total_spend_limit: CoderAmount | None = strawberry.field(
        description=(
            "The group's limit summed over the members it budgets (overrides replacing their "
            "share), Coder's `total_spend_limit_micros`; null when the group has no budget."
        )
    )
    current_spend: CoderAmount = strawberry.field(
        description="Spend attributed to the group in the period."
    )
    percent_used: float | None = strawberry.field(
        description="`currentSpend` as a percentage of `totalSpendLimit`; null without one."
    )

    @classmethod
    def from_model(cls, raw: m.OrganizationGroupAISpend) -> AIGroupSpend:
        return cls(
            group_id=strawberry.ID(str(raw.group_id)),
            spend_limit=_amount(raw.spend_limit_micros),
            total_spend_limit=_amount(raw.total_spend_limit_micros),
            current_spend=CoderAmount.of(raw.current_spend_micros),
            percent_used=_percent(raw.current_spend_micros, raw.total_spend_limit_micros),
        )


@strawberry.type(
    description=(
        "Groups' budgets and spend in the current period "
        "(`GET /api/v2/organizations/{org}/groups/ai/spend`). Groups the caller may not read "
        "are left out, as Coder does (a member of the organization reads its groups)."
    )
)
class AIGroupSpendReport:
    period_start: datetime = strawberry.field(description="When the period began.")
    period_end: datetime = strawberry.field(description="When the period ends.")
    groups: list[AIGroupSpend] = strawberry.field(
        description="The requested groups the caller may read, in Coder's order."
    )

    @classmethod
    def from_model(cls, raw: m.OrganizationGroupsAISpend) -> AIGroupSpendReport:
        return cls(
            period_start=raw.period_start,
            period_end=raw.period_end,
            groups=[AIGroupSpend.from_model(group) for group in raw.groups],
        )


def checked_name(name: str, value: str) -> str:
    """A user or organization name as a path segment: bounded, not empty, not `.` or `..`."""
    checked = checked_text(name, value)
    if not checked or checked in (".", ".."):
        raise BadUserInput(f"`{name}` must not be empty.", extensions={"field": name})
    return checked


def _group_ids(values: list[strawberry.ID]) -> list[str]:
    if not values:
        raise BadUserInput(
            "`groupIds` needs at least one group id.", extensions={"field": "groupIds"}
        )
    if len(values) > MAX_GROUP_IDS:
        raise BadUserInput(
            f"`groupIds` takes at most {MAX_GROUP_IDS} ids (got {len(values)}).",
            extensions={"field": "groupIds"},
        )
    out = []
    for value in values:
        try:
            out.append(str(UUID(str(value))))
        except ValueError:
            raise BadUserInput(
                f"`groupIds` holds {str(value)[:64]!r}, which is not a UUID.",
                extensions={"field": "groupIds"},
            ) from None
    return out


async def user_spend(info: Info, user: str) -> AISpendStatus:
    """The spend status of `user` (id, username or `me`) through the request's loaders."""
    raw = await loaders_of(info).user_ai_spend(checked_name("user", user))
    return AISpendStatus.from_model(raw)


async def group_spend(
    info: Info, organization: str, group_ids: list[strawberry.ID]
) -> AIGroupSpendReport:
    """The groups' budgets and spend of an organization through the request's loaders."""
    checked = checked_name("organization", organization)
    raw = await loaders_of(info).groups_spend(checked, _group_ids(group_ids))
    return AIGroupSpendReport.from_model(raw)


USER_SPEND_DESCRIPTION = (
    "This user's AI spend and effective budget in the current period, Coder's own figures "
    "(`GET /api/v2/users/{user}/ai/spend`, one call). Members may read only their own "
    "(another user's is NOT_FOUND, as from Coder)." + SPEND_ERA
)
