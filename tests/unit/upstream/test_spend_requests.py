"""Coder's spend routes live outside the AI Gateway prefix: they go to the configured deployment
URL (its path kept), never to another host, with each value encoded as one path segment."""

from __future__ import annotations

import httpx
import pytest

from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.requests import (
    UpstreamRequest,
    groups_ai_spend_request,
    user_ai_spend_request,
)

STATUS = {
    "user_id": "00000000-0000-0000-0000-000000000001",
    "effective_group_id": None,
    "effective_budget": None,
    "current_spend_micros": 5,
    "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z",
}


def test_root_requests_must_be_api_paths() -> None:
    with pytest.raises(ValueError, match="/api/v2/"):
        UpstreamRequest.make("//evil.example/x", root=True)
    with pytest.raises(ValueError, match="dot segment"):
        user_ai_spend_request("..")
    with pytest.raises(ValueError, match="empty"):
        user_ai_spend_request("")


def test_values_are_one_encoded_segment() -> None:
    request = user_ai_spend_request("a/b?c#d e")
    assert request.path == "/api/v2/users/a%2Fb%3Fc%23d%20e/ai/spend"
    assert request.root
    groups = groups_ai_spend_request("my org", ["b", "a"])
    assert groups.path == "/api/v2/organizations/my%20org/groups/ai/spend"
    assert groups.params == (("group_ids", "b,a"),)


async def test_root_requests_go_to_the_configured_deployment_path() -> None:
    seen: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Coder-Session-Token")))
        return httpx.Response(200, json=STATUS)

    # A deployment under a sub-path, the client already pointed at the AI Gateway prefix.
    settings = Settings(upstream_url="http://coder.internal:3000/coder")
    async with UpstreamClient(settings, transport=httpx.MockTransport(answer)) as client:
        client.http.base_url = httpx.URL("http://coder.internal:3000/coder/api/v2/ai-gateway")
        status = await client.get_model(
            user_ai_spend_request("me"), Credentials("tok"), m.UserAISpendStatus
        )
        await client.get_json(UpstreamRequest.make("/models"), Credentials("tok"))
    assert status.current_spend_micros == 5
    assert seen == [
        ("http://coder.internal:3000/coder/api/v2/users/me/ai/spend", "tok"),
        ("http://coder.internal:3000/coder/api/v2/ai-gateway/models", "tok"),
    ]
