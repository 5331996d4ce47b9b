"""The `Mutation` root: Coder's budget writes and AI Gateway keys (enterprise, AI Gateway era),
Relay style.

Each mutation takes one `input` (with an optional `clientMutationId`, echoed back) and answers a
payload holding what Coder answered: the budget or override as stored, or that it was cleared
(Coder's DELETE answers 204). Input is checked with Coder's bounds before any call; Coder's own
refusals keep its message (400 BAD_USER_INPUT with its validations, 403 FORBIDDEN, 404
NOT_FOUND, which is also what a caller without the right to write gets). Writes are sent once per
request field, never through the response cache; a successful one invalidates the caller's
cached spend reads (`aiSpend`, `aiGroupSpend`). They run over POST only: GraphQL over HTTP's 405
for a mutation over GET, persisted queries included (server/app.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast
from uuid import UUID

import strawberry

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.inputs import checked_text, preview
from aibridge_graphql.core.loaders.writes import MAX_SPEND_LIMIT_MICROS, MIN_SPEND_LIMIT_MICROS
from aibridge_graphql.schema.amounts import Micros
from aibridge_graphql.schema.engine.needs import needs
from aibridge_graphql.schema.gateway_keys import KEYS_RULES, AIGatewayKey
from aibridge_graphql.schema.node import Info, loaders_of
from aibridge_graphql.schema.spend import SPEND_ERA, CoderAmount
from aibridge_graphql.upstream import models as m

# Relay's `clientMutationId`: any string the client chooses, bounded like every other text.
_CLIENT_ID = "An identifier the client chooses; echoed in the payload (Relay)."
_LIMIT = (
    f"The monthly spend limit in micro-dollars, {MIN_SPEND_LIMIT_MICROS} to "
    f"{MAX_SPEND_LIMIT_MICROS} (Coder's bounds; 0 blocks all spend)."
)
_WRITE_RULES = (
    " One upstream call, sent once per request, never cached; a success makes the caller's "
    "cached `aiSpend`/`aiGroupSpend` answers fresh. Bad input is BAD_USER_INPUT before any "
    "call; Coder's refusals keep its message (400 BAD_USER_INPUT with `validations`, 403 "
    "FORBIDDEN, 404 NOT_FOUND: also what a caller without the right to write gets)."
)
_GROUP_WRITERS = (
    " Coder lets owners, user-admins, and the organization's admins and user-admins write a "
    "group's budget; its members only read it."
)
_OVERRIDE_WRITERS = (
    " Coder lets only site-wide user managers (owners, user-admins) write overrides; "
    "organization admins read them."
)


F = TypeVar("F", bound=Callable[..., Any])
_INPUT = strawberry.argument(description="What to change (Relay: one input object).")


def _mutation(name: str, description: str, declared: dict[str, Any]) -> Callable[[F], F]:
    """A mutation field named with Coder's spelling (`AI`, not `Ai`), with its upstream needs."""
    field = strawberry.mutation(name=name, description=description, metadata=declared)
    return cast(Callable[[F], F], field)


def _uuid(name: str, value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise BadUserInput(
            f"`{name}` holds {preview(value)!r}, which is not a UUID.", extensions={"field": name}
        ) from None


def _user(value: str) -> str:
    checked = checked_text("user", value)
    if not checked or checked in (".", ".."):
        raise BadUserInput("`user` must not be empty.", extensions={"field": "user"})
    return checked


def _limit(value: int) -> int:
    if value < MIN_SPEND_LIMIT_MICROS:
        raise BadUserInput(
            f"`spendLimitMicros` must be at least {MIN_SPEND_LIMIT_MICROS} (got {value}).",
            extensions={"field": "spendLimitMicros"},
        )
    if value > MAX_SPEND_LIMIT_MICROS:
        raise BadUserInput(
            f"`spendLimitMicros` must not exceed {MAX_SPEND_LIMIT_MICROS}.",
            extensions={"field": "spendLimitMicros"},
        )
    return value


def _client_id(value: str | None) -> str | None:
    return checked_text("clientMutationId", value)


@strawberry.type(description="A group's AI budget as Coder stores it (per member, per month).")
class GroupAIBudget:
    group_id: strawberry.ID = strawberry.field(description="The group's Coder UUID.")
    spend_limit: CoderAmount = strawberry.field(description="The limit each member may spend.")
    created_at: datetime = strawberry.field(description="When the budget was first set.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    @classmethod
    def from_model(cls, raw: m.GroupAIBudget) -> GroupAIBudget:
        return cls(
            group_id=strawberry.ID(str(raw.group_id)),
            spend_limit=CoderAmount.of(raw.spend_limit_micros),
            created_at=raw.created_at,
            updated_at=raw.updated_at,
        )


@strawberry.type(description="A user's AI budget override as Coder stores it.")
class UserAIBudgetOverride:
    user_id: strawberry.ID = strawberry.field(description="The user's Coder UUID.")
    group_id: strawberry.ID = strawberry.field(
        description="The group the user's spend is attributed to (the user is a member)."
    )
    spend_limit: CoderAmount = strawberry.field(description="The user's own limit.")
    created_at: datetime = strawberry.field(description="When the override was first set.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    @classmethod
    def from_model(cls, raw: m.UserAIBudgetOverride) -> UserAIBudgetOverride:
        return cls(
            user_id=strawberry.ID(str(raw.user_id)),
            group_id=strawberry.ID(str(raw.group_id)),
            spend_limit=CoderAmount.of(raw.spend_limit_micros),
            created_at=raw.created_at,
            updated_at=raw.updated_at,
        )


@strawberry.input(description="Set (create or replace) a group's AI budget.")
class SetGroupAIBudgetInput:
    group_id: strawberry.ID = strawberry.field(description="The group's Coder UUID.")
    spend_limit_micros: Micros = strawberry.field(description=_LIMIT)
    client_mutation_id: str | None = strawberry.field(default=None, description=_CLIENT_ID)


@strawberry.input(description="Clear a group's AI budget.")
class ClearGroupAIBudgetInput:
    group_id: strawberry.ID = strawberry.field(description="The group's Coder UUID.")
    client_mutation_id: str | None = strawberry.field(default=None, description=_CLIENT_ID)


@strawberry.input(description="Set (create or replace) a user's AI budget override.")
class SetUserAIBudgetOverrideInput:
    user: str = strawberry.field(description="The user: Coder UUID, username, or `me`.")
    group_id: strawberry.ID = strawberry.field(
        description="The Coder UUID of a group the user is in, which their spend counts toward."
    )
    spend_limit_micros: Micros = strawberry.field(description=_LIMIT)
    client_mutation_id: str | None = strawberry.field(default=None, description=_CLIENT_ID)


@strawberry.input(description="Clear a user's AI budget override.")
class ClearUserAIBudgetOverrideInput:
    user: str = strawberry.field(description="The user: Coder UUID, username, or `me`.")
    client_mutation_id: str | None = strawberry.field(default=None, description=_CLIENT_ID)


@strawberry.type(description="The group's budget as Coder stored it.")
class SetGroupAIBudgetPayload:
    budget: GroupAIBudget = strawberry.field(description="The budget now in force.")
    client_mutation_id: str | None = strawberry.field(description=_CLIENT_ID)


@strawberry.type(description="A group's budget, cleared.")
class ClearGroupAIBudgetPayload:
    group_id: strawberry.ID = strawberry.field(description="The group whose budget was cleared.")
    cleared: bool = strawberry.field(description="Always true: Coder deleted it (HTTP 204).")
    client_mutation_id: str | None = strawberry.field(description=_CLIENT_ID)


@strawberry.type(description="The user's override as Coder stored it.")
class SetUserAIBudgetOverridePayload:
    override: UserAIBudgetOverride = strawberry.field(description="The override now in force.")
    client_mutation_id: str | None = strawberry.field(description=_CLIENT_ID)


@strawberry.type(description="A user's override, cleared.")
class ClearUserAIBudgetOverridePayload:
    user: str = strawberry.field(description="The user as given in the input.")
    cleared: bool = strawberry.field(description="Always true: Coder deleted it (HTTP 204).")
    client_mutation_id: str | None = strawberry.field(description=_CLIENT_ID)


_KEY_WRITE = (
    " One upstream call, never cached; Coder's refusals keep its message (400 BAD_USER_INPUT "
    "with `validations`, 403 FORBIDDEN, 404 NOT_FOUND)."
)


@strawberry.input(description="Create an AI Gateway key.")
class CreateAIGatewayKeyInput:
    name: str = strawberry.field(
        description="A unique name: up to 64 lowercase letters, digits and single hyphens, "
        "neither first nor last (Coder's rule; it checks it)."
    )
    client_mutation_id: str | None = strawberry.field(default=None, description=_CLIENT_ID)


@strawberry.input(description="Delete an AI Gateway key.")
class DeleteAIGatewayKeyInput:
    id: strawberry.ID = strawberry.field(description="The key's Coder UUID.")
    client_mutation_id: str | None = strawberry.field(default=None, description=_CLIENT_ID)


@strawberry.type(description="The key Coder created, with its secret: shown this once only.")
class CreateAIGatewayKeyPayload:
    key: AIGatewayKey = strawberry.field(description="The key as Coder lists it.")
    secret: str = strawberry.field(
        description="The key's secret, for the replica's configuration. Coder keeps only its "
        "hash: no later answer holds it, and the gateway never caches, logs or traces it."
    )
    client_mutation_id: str | None = strawberry.field(description=_CLIENT_ID)


@strawberry.type(description="An AI Gateway key, deleted.")
class DeleteAIGatewayKeyPayload:
    deleted_id: strawberry.ID = strawberry.field(description="The key that was deleted.")
    client_mutation_id: str | None = strawberry.field(description=_CLIENT_ID)


@strawberry.type(
    description="Writes: Coder's AI budgets and AI Gateway keys (enterprise, AI Gateway era)."
)
class Mutation:
    @_mutation(
        "setGroupAIBudget",
        "Set a group's AI budget: each member's monthly spend limit "
        "(`PUT /api/v2/groups/{group}/ai/budget`)." + _GROUP_WRITERS + _WRITE_RULES + SPEND_ERA,
        needs(1),
    )
    async def set_group_ai_budget(
        self, info: Info, input: Annotated[SetGroupAIBudgetInput, _INPUT]
    ) -> SetGroupAIBudgetPayload | None:
        client_id = _client_id(input.client_mutation_id)
        group_id = _uuid("groupId", input.group_id)
        limit = _limit(input.spend_limit_micros)
        raw = await loaders_of(info).budget_writes.set_group_budget(group_id, limit)
        return SetGroupAIBudgetPayload(
            budget=GroupAIBudget.from_model(raw), client_mutation_id=client_id
        )

    @_mutation(
        "clearGroupAIBudget",
        "Clear a group's AI budget (`DELETE /api/v2/groups/{group}/ai/budget`); NOT_FOUND when "
        "it has none." + _GROUP_WRITERS + _WRITE_RULES + SPEND_ERA,
        needs(1),
    )
    async def clear_group_ai_budget(
        self, info: Info, input: Annotated[ClearGroupAIBudgetInput, _INPUT]
    ) -> ClearGroupAIBudgetPayload | None:
        client_id = _client_id(input.client_mutation_id)
        group_id = _uuid("groupId", input.group_id)
        await loaders_of(info).budget_writes.clear_group_budget(group_id)
        return ClearGroupAIBudgetPayload(
            group_id=strawberry.ID(group_id), cleared=True, client_mutation_id=client_id
        )

    @_mutation(
        "setUserAIBudgetOverride",
        "Set a user's AI budget override, replacing their groups' budget, attributed to one of "
        "their groups (`PUT /api/v2/users/{user}/ai/budget/override`); a group the user is not "
        "in is BAD_USER_INPUT, a system user FORBIDDEN, as from Coder."
        + _OVERRIDE_WRITERS
        + _WRITE_RULES
        + SPEND_ERA,
        needs(1),
    )
    async def set_user_ai_budget_override(
        self, info: Info, input: Annotated[SetUserAIBudgetOverrideInput, _INPUT]
    ) -> SetUserAIBudgetOverridePayload | None:
        client_id = _client_id(input.client_mutation_id)
        user = _user(input.user)
        group_id = _uuid("groupId", input.group_id)
        limit = _limit(input.spend_limit_micros)
        raw = await loaders_of(info).budget_writes.set_user_override(user, group_id, limit)
        return SetUserAIBudgetOverridePayload(
            override=UserAIBudgetOverride.from_model(raw), client_mutation_id=client_id
        )

    @_mutation(
        "clearUserAIBudgetOverride",
        "Clear a user's AI budget override (`DELETE /api/v2/users/{user}/ai/budget/override`); "
        "NOT_FOUND when they have none." + _OVERRIDE_WRITERS + _WRITE_RULES + SPEND_ERA,
        needs(1),
    )
    async def clear_user_ai_budget_override(
        self, info: Info, input: Annotated[ClearUserAIBudgetOverrideInput, _INPUT]
    ) -> ClearUserAIBudgetOverridePayload | None:
        client_id = _client_id(input.client_mutation_id)
        user = _user(input.user)
        await loaders_of(info).budget_writes.clear_user_override(user)
        return ClearUserAIBudgetOverridePayload(
            user=user, cleared=True, client_mutation_id=client_id
        )

    @_mutation(
        "createAIGatewayKey",
        "Create an AI Gateway key for a standalone AI Gateway replica "
        "(`POST /api/v2/ai-gateway/keys`); the payload holds its secret, which nothing shows "
        "again. A POST is never retried: when its answer is lost the error is "
        "UPSTREAM_OUTCOME_UNKNOWN (the key may exist: list the keys)." + _KEY_WRITE + KEYS_RULES,
        needs(1),
    )
    async def create_ai_gateway_key(
        self, info: Info, input: Annotated[CreateAIGatewayKeyInput, _INPUT]
    ) -> CreateAIGatewayKeyPayload | None:
        client_id = _client_id(input.client_mutation_id)
        name = checked_text("name", input.name) or ""
        raw = await loaders_of(info).gateway_keys.create(name)
        return CreateAIGatewayKeyPayload(
            key=AIGatewayKey.from_model(raw),
            secret=raw.key.get_secret_value(),
            client_mutation_id=client_id,
        )

    @_mutation(
        "deleteAIGatewayKey",
        "Delete an AI Gateway key (`DELETE /api/v2/ai-gateway/keys/{key}`); NOT_FOUND when "
        "there is no such key. Replicas using it can no longer authenticate."
        + _KEY_WRITE
        + KEYS_RULES,
        needs(1),
    )
    async def delete_ai_gateway_key(
        self, info: Info, input: Annotated[DeleteAIGatewayKeyInput, _INPUT]
    ) -> DeleteAIGatewayKeyPayload | None:
        client_id = _client_id(input.client_mutation_id)
        key_id = _uuid("id", input.id)
        await loaders_of(info).gateway_keys.delete(key_id)
        return DeleteAIGatewayKeyPayload(
            deleted_id=strawberry.ID(key_id), client_mutation_id=client_id
        )
