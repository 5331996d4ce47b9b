"""Coder's budget writes (enterprise, AI Gateway era): a group's AI budget and a user's override;
and its AI Gateway keys (the secrets of standalone AI Gateway replicas): list, create, delete.

Each write is one upstream call with the caller's token (resources.py `write`), never cached,
counted against the request's call budget; a successful one invalidates the caller's cached
spend reads (core/cache.py). On a sessions-era Coder, which has no budgets, each is
`UpstreamUnsupported` before any call, as the spend reads are.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from aibridge_graphql.core.cache import SPEND
from aibridge_graphql.core.loaders.resources import RequestResources
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.requests import (
    UpstreamRequest,
    ai_gateway_key_request,
    ai_gateway_keys_request,
    group_ai_budget_request,
    user_ai_budget_override_request,
)

ModelT = TypeVar("ModelT", bound=BaseModel)
# Coder's bounds of `spend_limit_micros` (enterprise/coderd/aibridge.go: `validate:"gte=0"` and
# its maximum, "Invalid AI spend limit."): checked by the faces before any call.
MIN_SPEND_LIMIT_MICROS = 0
MAX_SPEND_LIMIT_MICROS = 1_000_000_000_000_000


class BudgetWrites:
    """One request's budget writes (see the module docstring)."""

    __slots__ = ("_resources",)

    def __init__(self, resources: RequestResources) -> None:
        self._resources = resources

    async def set_group_budget(self, group_id: str, spend_limit_micros: int) -> m.GroupAIBudget:
        """`PUT /api/v2/groups/{group}/ai/budget`: the per-member limit, as Coder keeps it."""
        request = group_ai_budget_request(group_id)
        body = {"spend_limit_micros": spend_limit_micros}
        return await self._put(request, body, m.GroupAIBudget)

    async def clear_group_budget(self, group_id: str) -> None:
        """`DELETE /api/v2/groups/{group}/ai/budget` (Coder answers 204; 404 when it had none)."""
        await self._send("DELETE", group_ai_budget_request(group_id), None)

    async def set_user_override(
        self, user: str, group_id: str, spend_limit_micros: int
    ) -> m.UserAIBudgetOverride:
        """`PUT /api/v2/users/{user}/ai/budget/override` (the user must be in the group)."""
        request = user_ai_budget_override_request(user)
        body = {"group_id": group_id, "spend_limit_micros": spend_limit_micros}
        return await self._put(request, body, m.UserAIBudgetOverride)

    async def clear_user_override(self, user: str) -> None:
        """`DELETE /api/v2/users/{user}/ai/budget/override` (204; 404 when it had none)."""
        await self._send("DELETE", user_ai_budget_override_request(user), None)

    async def _put(
        self, request: UpstreamRequest, body: dict[str, Any], model: type[ModelT]
    ) -> ModelT:
        content = await self._send("PUT", request, body)
        return self._resources.client.parse_model(request, content, model)

    async def _send(self, method: str, request: UpstreamRequest, body: Any) -> bytes:
        await self._resources.require_spend_routes(method, request)
        return await self._resources.write(method, request, body, invalidates=SPEND)


_KEYS = "AI Gateway keys"
_KEY_LIST: TypeAdapter[list[m.AIGatewayKey]] = TypeAdapter(list[m.AIGatewayKey])


class GatewayKeys:
    """One request's AI Gateway keys: the list (a read, never cached: no TTL names it), a
    create (a POST, never retried; a lost answer is `UpstreamOutcomeUnknown`) and a delete.

    A created key's secret is in the create's answer only; it is held as a `SecretStr`, and
    nothing here logs, caches or traces a body.
    """

    __slots__ = ("_resources",)

    def __init__(self, resources: RequestResources) -> None:
        self._resources = resources

    async def list(self) -> list[m.AIGatewayKey]:
        """`GET /api/v2/ai-gateway/keys`: every key, oldest first (owners only, as Coder)."""
        request = ai_gateway_keys_request()
        await self._resources.require_spend_routes("GET", request, _KEYS)
        client = self._resources.client
        return await self._resources.load(
            request,
            lambda content: client.parse_with(
                request, content, _KEY_LIST, "a list of AI Gateway keys"
            ),
        )

    async def create(self, name: str) -> m.CreatedAIGatewayKey:
        """`POST /api/v2/ai-gateway/keys` (201): the key and, this once, its secret."""
        request = ai_gateway_keys_request()
        await self._resources.require_spend_routes("POST", request, _KEYS)
        content = await self._resources.write("POST", request, {"name": name}, invalidates=None)
        return self._resources.client.parse_model(request, content, m.CreatedAIGatewayKey)

    async def delete(self, key_id: str) -> None:
        """`DELETE /api/v2/ai-gateway/keys/{key}` (204; 404 when there is no such key)."""
        request = ai_gateway_key_request(key_id)
        await self._resources.require_spend_routes("DELETE", request, _KEYS)
        await self._resources.write("DELETE", request, None, invalidates=None)
