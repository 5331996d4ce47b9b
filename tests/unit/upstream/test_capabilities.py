"""Era detection (upstream/capabilities.py) and `/readyz`, against the fake in both eras."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient
from tests.support.gateway_fakes import PREMIUM, FakeUpstream, gateway, populated

SETTINGS = Settings(upstream_url="http://upstream.invalid", retries=0)


async def _ready(fake: FakeUpstream, settings: Settings = SETTINGS) -> tuple[int, dict[str, Any]]:
    async with gateway(fake, settings) as gw:
        response = await gw.http.get("/readyz")
        return response.status, await response.json()


async def test_sessions_era_is_the_legacy_prefix_with_interceptions() -> None:
    fake = populated(era="sessions")
    status, body = await _ready(fake)
    assert status == 200
    assert body["api"] == {
        "basePath": "/api/v2/aibridge",
        "basePathForced": False,
        "era": "sessions",
        "interceptions": True,
        "providers": False,
    }
    # Every probe is unauthenticated, and the preferred prefix was asked first.
    assert fake.probes[0] == "/api/v2/ai-gateway/sessions"
    assert "/api/v2/aibridge/interceptions" in fake.probes
    assert fake.calls == []  # a probe never counts as a caller's request
    assert set(fake.tokens_seen) == set()


async def test_ai_gateway_era_prefers_the_new_prefix_without_interceptions() -> None:
    status, body = await _ready(populated(era="ai-gateway"))
    assert status == 200
    assert body["api"]["basePath"] == "/api/v2/ai-gateway"
    assert body["api"]["era"] == "ai-gateway"
    assert body["api"]["interceptions"] is False
    assert body["api"]["providers"] is True


@pytest.mark.parametrize("era", ["sessions", "ai-gateway"])
async def test_a_forced_prefix_is_used_and_still_probed_for_routes(era: str) -> None:
    fake = populated(era=era)  # type: ignore[arg-type]
    forced = Settings(upstream_url="http://upstream.invalid", retries=0, api_base_path="aibridge")
    assert forced.api_base_path == "/aibridge"  # normalized, not detected
    legacy = Settings(
        upstream_url="http://upstream.invalid", retries=0, api_base_path="/api/v2/aibridge/"
    )
    status, body = await _ready(fake, legacy)
    assert status == 200
    assert body["api"]["basePath"] == "/api/v2/aibridge"
    assert body["api"]["basePathForced"] is True
    assert body["api"]["interceptions"] is (era == "sessions")
    assert not any(p.startswith("/api/v2/ai-gateway") for p in fake.probes)


def test_auto_and_empty_mean_detect() -> None:
    for value in ("auto", "AUTO", "", None):
        assert Settings(api_base_path=value).api_base_path is None


@pytest.mark.parametrize("era", ["sessions", "ai-gateway"])
async def test_unlicensed_is_not_ready_with_coders_message_and_queries_are_forbidden(
    era: str,
) -> None:
    fake = populated(era=era)  # type: ignore[arg-type]
    fake.unlicensed = True
    async with gateway(fake) as gw:
        ready = await gw.http.get("/readyz")
        ready_body = await ready.json()
        body = await gw.query("{ sessions { totalCount } interceptions { totalCount } models }")
    assert ready.status == 503
    assert ready_body["upstream"] == "unlicensed"
    assert ready_body["reason"] == PREMIUM[era]
    assert body["data"] == {"sessions": None, "interceptions": None, "models": None}
    # Unknown routes are asked, not refused: the licence 403 is Coder's answer to every query.
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert {e["message"] for e in body["errors"]} == {PREMIUM[era]}


async def test_no_ai_bridge_api_is_not_ready_and_queries_are_unsupported() -> None:
    async def nothing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": "Route not found."})

    client = UpstreamClient(SETTINGS, transport=httpx.MockTransport(nothing))
    app = create_app(SETTINGS, client=client)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as http:
            ready = await http.get("/readyz")
            ready_body = await ready.json()
            answer = await http.post(
                "/graphql", json={"query": "{ models }"}, headers={"Coder-Session-Token": "t"}
            )
            body = await answer.json()
    finally:
        await client.aclose()
    assert ready.status == 503
    assert ready_body["upstream"] == "no-api"
    assert "/api/v2/ai-gateway or /api/v2/aibridge" in ready_body["reason"]
    assert body["data"] == {"models": None}
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNSUPPORTED"


async def test_unreachable_then_reachable_is_detected_on_the_next_probe() -> None:
    fake = populated(era="ai-gateway")
    up = False

    async def flaky(request: httpx.Request) -> httpx.Response:
        if not up:
            raise httpx.ConnectError("refused", request=request)
        return await fake.handle(request)

    settings = Settings(upstream_url="http://upstream.invalid", retries=0)
    client = UpstreamClient(settings, transport=httpx.MockTransport(flaky))
    try:
        assert (await client.capabilities.detect()).status == "unreachable"
        up = True
        found = await client.capabilities.detect()
        assert (found.status, found.base_path, found.interceptions) == (
            "ok",
            "/api/v2/ai-gateway",
            False,
        )
        assert str(client.http.base_url) == "http://upstream.invalid/api/v2/ai-gateway/"
    finally:
        await client.aclose()


async def test_a_proxy_answering_probes_otherwise_leaves_routes_unknown() -> None:
    # Not Coder's JSON 401 on /sessions (e.g. an authenticating proxy): nothing is inferred,
    # so requests go through and the upstream's own answers decide.
    async def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text="proxy login required")

    client = UpstreamClient(SETTINGS, transport=httpx.MockTransport(proxy))
    try:
        found = await client.capabilities.detect()
    finally:
        await client.aclose()
    assert (found.status, found.interceptions, found.providers, found.era) == (
        "ok",
        None,
        None,
        None,
    )
