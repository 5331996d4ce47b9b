"""The schema on both eras (fake upstream, real gateway over HTTP): UPSTREAM_UNSUPPORTED for
what the AI Gateway API lacks, and its new data (providers, thread errors, network calls)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from aibridge_graphql.core.refs import InterceptionRef
from aibridge_graphql.schema.ids import encode_cursor, encode_global_id
from tests.support.gateway_fakes import EPOCH, gateway, populated, user

INTERCEPTION_ID = encode_global_id(
    InterceptionRef(uuid.uuid4(), uuid.UUID(user("alice")["id"]), EPOCH)
)

UNSUPPORTED_QUERY = """query($id: ID!, $r: [_Any!]!) {
  interceptions(first: 2) { totalCount }
  node(id: $id) { id }
  nodes(ids: [$id]) { id }
  _entities(representations: $r) { ... on Interception { interceptionId } }
  sessions(first: 1) { totalCount nodes { initiator { interceptions { totalCount } } } }
  models
}"""

ONE_QUERY = """query($id: String!) {
  sessions(first: 4) {
    nodes { sessionId networkCalls { total blocked } }
  }
  session(sessionId: $id) {
    sessionId
    networkCalls { total blocked }
    networkDomainCount
    networkTopDomains { domain count }
    networkCallLogs(first: 2) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { networkCallId firewallSessionId sequenceNumber proto method detail allowed
              matchedRule capturedAt }
    }
    threads(first: 3) {
      nodes { threadId errorType errorMessage agentFirewallSessionId
              agentFirewallSequenceNumber agenticActions { toolCalls { tool } } }
    }
  }
  providers { name type displayName icon }
  models
  clients
}"""


def _errors(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {".".join(map(str, e["path"])): e for e in body.get("errors", [])}


async def test_what_the_ai_gateway_lacks_is_unsupported_without_an_upstream_call() -> None:
    fake = populated(era="ai-gateway")
    representations = [{"__typename": "Interception", "id": INTERCEPTION_ID}]
    async with gateway(fake) as gw:
        body = await gw.query(UNSUPPORTED_QUERY, {"id": INTERCEPTION_ID, "r": representations})
    errors = _errors(body)
    assert set(errors) == {
        "interceptions",
        "node",
        "nodes.0",
        "_entities.0",
        "sessions.nodes.0.initiator.interceptions",
    }
    for error in errors.values():
        assert error["extensions"]["code"] == "UPSTREAM_UNSUPPORTED"
        assert error["extensions"]["missing"] == "GET /interceptions"
        assert error["extensions"]["instead"] == "sessions"
        assert "GET /interceptions" in error["message"]
        assert "sessions" in error["message"]
    assert body["data"]["models"] == ["model-0000", "model-0001", "model-0002"]
    assert body["data"]["sessions"]["totalCount"] == 25
    assert not fake.calls_to("/interceptions")


async def test_the_sessions_era_still_serves_interceptions() -> None:
    fake = populated(era="sessions")
    async with gateway(fake) as gw:
        body = await gw.query("{ interceptions(first: 2) { totalCount } }")
    assert body == {"data": {"interceptions": {"totalCount": 30}}}


async def test_ai_gateway_data_in_one_query() -> None:
    fake = populated(era="ai-gateway")
    session = fake.sessions[4]  # even: it has firewall network calls (3 + 4 = 7)
    assert session.network is not None
    async with gateway(fake) as gw:
        body = await gw.query(ONE_QUERY, {"id": session.session_id})
    assert "errors" not in body, body["errors"]
    data = body["data"]
    listed = {n["sessionId"]: n["networkCalls"] for n in data["sessions"]["nodes"]}
    assert listed == {
        "session-024": {"total": 27, "blocked": 9},
        "session-023": None,  # no firewall in use: Coder omits the field
        "session-022": {"total": 25, "blocked": 8},
        "session-021": None,
    }
    detail = data["session"]
    assert detail["networkCalls"] == {"total": 7, "blocked": 2}
    assert detail["networkDomainCount"] == 2
    assert detail["networkTopDomains"] == [{"domain": "github.com", "count": 7}]
    logs = detail["networkCallLogs"]
    assert logs["totalCount"] == 7
    assert logs["pageInfo"] == {
        "hasNextPage": True,
        "endCursor": encode_cursor("NetworkCall", session.network[1]["id"]),
    }
    first = session.network[0]
    assert logs["nodes"][0] == {
        "networkCallId": first["id"],
        "firewallSessionId": first["session_id"],
        "sequenceNumber": 0,
        "proto": "https",
        "method": "GET",
        "detail": first["detail"],
        "allowed": True,
        "matchedRule": None,
        "capturedAt": "2025-01-01T00:00:00+00:00",
    }
    threads = detail["threads"]["nodes"]
    assert [t["errorType"] for t in threads] == [None, "upstream_error", None]
    assert threads[1]["errorMessage"] == "overloaded 1"
    assert {t["agentFirewallSessionId"] for t in threads} == {first["session_id"]}
    assert [t["agentFirewallSequenceNumber"] for t in threads] == [0, 1, 2]
    assert threads[0]["agenticActions"] == [{"toolCalls": [{"tool": "read_file"}]}]
    assert data["providers"][0] == {
        "name": "anthropic",
        "type": "anthropic",
        "displayName": "Anthropic",
        "icon": "/icon/claude.svg",
    }
    assert data["clients"] == ["Claude Code", "Codex"]
    # The network fields and the threads page share the one session-detail call.
    assert len(fake.calls_to(f"/sessions/{session.session_id}")) == 1


async def test_network_calls_page_forward_within_the_one_detail_call() -> None:
    fake = populated(era="ai-gateway")
    session = fake.sessions[0]
    assert session.network is not None
    query = """query($id: String!, $after: String) { session(sessionId: $id) {
      networkCallLogs(first: 2, after: $after) {
        pageInfo { hasNextPage hasPreviousPage endCursor } nodes { sequenceNumber } } } }"""
    seen: list[int] = []
    after = None
    async with gateway(fake) as gw:
        for _ in range(5):
            body = await gw.query(query, {"id": session.session_id, "after": after})
            page = body["data"]["session"]["networkCallLogs"]
            seen += [n["sequenceNumber"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        bad = await gw.query(
            query, {"id": session.session_id, "after": encode_cursor("Thread", "x")}
        )
    assert seen == [0, 1, 2]
    assert _errors(bad)["session.networkCallLogs"]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_sessions_era_has_null_network_and_error_fields() -> None:
    fake = populated(era="sessions")
    async with gateway(fake) as gw:
        body = await gw.query(
            ONE_QUERY.replace("providers { name type displayName icon }", ""), {"id": "session-004"}
        )
        providers = await gw.query("{ providers { name } models }")
    assert "errors" not in body, body["errors"]
    detail = body["data"]["session"]
    assert detail["networkCalls"] is None
    assert detail["networkCallLogs"] is None
    assert detail["networkTopDomains"] is None
    assert detail["networkDomainCount"] is None
    assert {t["errorType"] for t in detail["threads"]["nodes"]} == {None}
    assert {t["agentFirewallSessionId"] for t in detail["threads"]["nodes"]} == {None}
    error = _errors(providers)["providers"]
    assert error["extensions"]["code"] == "UPSTREAM_UNSUPPORTED"
    assert error["extensions"]["missing"] == "GET /providers"
    assert error["extensions"]["instead"] == "Session.providers"
    assert providers["data"]["models"]
    assert not fake.calls_to("/providers")


@pytest.mark.parametrize("names_only", [False, True])
async def test_providers_accepts_both_response_shapes(names_only: bool) -> None:
    fake = populated(era="ai-gateway")
    fake.provider_names_only = names_only
    async with gateway(fake) as gw:
        body = await gw.query("{ providers { name type displayName } }")
        member = await gw.query("{ providers { name } }", token="member-token")
    providers = body["data"]["providers"]
    assert [p["name"] for p in providers] == ["anthropic", "bedrock", "openai"]
    if names_only:
        assert {(p["type"], p["displayName"]) for p in providers} == {(None, None)}
    else:
        assert providers[1] == {
            "name": "bedrock",
            "type": "anthropic",
            "displayName": "AWS Bedrock",
        }
    assert _errors(member)["providers"]["extensions"]["code"] == "NOT_FOUND"


ODD_IDS = ["claude:2025@host+x=y", "with space", "a!b(c)*", "100%", "sessión✓", "$&,;"]


@pytest.mark.parametrize("era", ["sessions", "ai-gateway"])
async def test_session_ids_reach_a_router_that_matches_the_raw_path(era: str) -> None:
    fake = populated(sessions=len(ODD_IDS), threads=2, era=era)  # type: ignore[arg-type]
    for row, session_id in zip(fake.sessions, ODD_IDS, strict=True):
        row.session_id = session_id
    query = """query($id: String!) { session(sessionId: $id) {
      sessionId threads { totalCount nodes { prompt } } } }"""
    async with gateway(fake) as gw:
        for session_id in ODD_IDS:
            body = await gw.query(query, {"id": session_id})
            assert "errors" not in body, (session_id, body["errors"])
            assert body["data"]["session"]["sessionId"] == session_id
            assert len(body["data"]["session"]["threads"]["nodes"]) == 2
