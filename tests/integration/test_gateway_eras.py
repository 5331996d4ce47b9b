"""The gateway against the real stand-in in both API eras and unlicensed (issue 8)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.eras import ApiEra
from tests.support.eras import has_interceptions
from tests.support.gateway_helpers import rest_client, rest_json, serve_gateway
from tests.support.servers import run_app_in_thread

ONE_QUERY = """query($id: String!) {
  sessions(first: 5) { totalCount nodes { sessionId networkCalls { total blocked } } }
  session(sessionId: $id) {
    sessionId networkCalls { total blocked } networkDomainCount
    networkTopDomains { domain count }
    networkCallLogs(first: 3) { totalCount nodes { networkCallId allowed detail } }
    threads(first: 50) { nodes { threadId errorType errorMessage agentFirewallSessionId
      agentFirewallSequenceNumber agenticActions { model toolCalls { tool } } } }
  }
  providers { name type displayName }
  models
  clients
}"""


@pytest.fixture(scope="module")
def gateway_era_url(standin_url_for: Callable[[ApiEra], str]) -> str:
    """The stand-in speaking today's Coder (the AI Gateway API, no `/interceptions`)."""
    return standin_url_for("ai-gateway")


@pytest.fixture(scope="module")
def unlicensed_url(standin_db_for: Callable[[ApiEra], Path]) -> Iterator[str]:
    path = standin_db_for("ai-gateway")
    with run_app_in_thread(lambda: create_app(path, unlicensed=True)) as url:
        yield url


def _codes(body: dict[str, Any]) -> dict[str, str]:
    return {".".join(map(str, e["path"])): e["extensions"]["code"] for e in body["errors"]}


BASES: dict[ApiEra, str] = {"sessions": "/api/v2/aibridge", "ai-gateway": "/api/v2/ai-gateway"}


async def test_readiness_reports_the_detected_era(api_era: ApiEra, standin_url: str) -> None:
    async with serve_gateway(standin_url) as gw:
        ready = await gw.http.get("/readyz")
        body = await ready.json()
    assert ready.status == 200
    assert body["api"]["era"] == api_era
    assert body["api"]["basePath"] == BASES[api_era]
    assert body["api"]["interceptions"] is has_interceptions(api_era)


async def test_ai_gateway_everything_in_one_query(
    gateway_era_url: str, tokens: dict[str, str]
) -> None:
    async with rest_client(gateway_era_url, tokens["admin"]) as rest:
        listed = await rest_json(rest, "/sessions", limit=1000)
    with_calls = [s for s in listed["sessions"] if s.get("network_calls")]
    assert with_calls, "the AI Gateway era seeds sessions with firewall network calls"
    target = with_calls[0]
    async with serve_gateway(gateway_era_url, tokens["admin"]) as gw:
        body = await gw.query(ONE_QUERY, {"id": target["id"]})
        unsupported = await gw.query("{ interceptions(first: 1) { totalCount } models }")
    assert "errors" not in body, body["errors"]
    data = body["data"]
    assert data["session"]["networkCalls"] == target["network_calls"]
    assert data["session"]["networkCallLogs"]["totalCount"] == target["network_calls"]["total"]
    assert data["session"]["threads"]["nodes"]
    assert data["providers"]
    assert data["models"]
    assert data["clients"]
    assert _codes(unsupported) == {"interceptions": "UPSTREAM_UNSUPPORTED"}
    assert unsupported["data"]["models"] == data["models"]
    assert not [call for call in gw.calls if "/interceptions" in call]


async def test_ai_gateway_threads_carry_their_errors(
    gateway_era_url: str, tokens: dict[str, str]
) -> None:
    async with rest_client(gateway_era_url, tokens["admin"]) as rest:
        listed = await rest_json(rest, "/sessions", limit=1000)
        expected: dict[str, tuple[str | None, str | None]] = {}
        session_ids = []
        for item in listed["sessions"][:40]:
            detail = await rest_json(rest, f"/sessions/{item['id']}", limit=200)
            for thread in detail["threads"]:
                expected[thread["id"]] = (thread.get("error_type"), thread.get("error_message"))
            session_ids.append(item["id"])
    assert any(error != (None, None) for error in expected.values())
    query = """query($id: String!) { session(sessionId: $id) {
      threads(first: 100) { nodes { threadId errorType errorMessage } } } }"""
    seen: dict[str, tuple[str | None, str | None]] = {}
    async with serve_gateway(gateway_era_url, tokens["admin"]) as gw:
        for session_id in session_ids:
            body = await gw.query(query, {"id": session_id})
            assert "errors" not in body, body["errors"]
            for node in body["data"]["session"]["threads"]["nodes"]:
                seen[node["threadId"]] = (node["errorType"], node["errorMessage"])
    assert {k: v for k, v in seen.items() if k in expected} == {
        k: v for k, v in expected.items() if k in seen
    }


async def test_unlicensed_is_not_ready_and_queries_are_forbidden(
    unlicensed_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(unlicensed_url, tokens["admin"]) as gw:
        ready = await gw.http.get("/readyz")
        ready_body = await ready.json()
        body = await gw.query("{ sessions { totalCount } models }")
    assert ready.status == 503
    assert ready_body["upstream"] == "unlicensed"
    assert "Premium feature" in ready_body["reason"]
    assert set(_codes(body).values()) == {"FORBIDDEN"}
    assert {e["message"] for e in body["errors"]} == {ready_body["reason"]}
