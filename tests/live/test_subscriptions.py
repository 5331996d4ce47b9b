"""The three subscriptions through real clients, for records appended to the stand-in.

graphql-sse's client (SSE, distinct connections) and Apollo Client (multipart HTTP) subscribe to
the gateway in front of a stand-in of their own, in both eras; the test appends interceptions
through the stand-in's traffic generator (standin/traffic.py) and waits for the events.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.docs import graphql_subscriptions
from tests.support.gateway_helpers import serve_gateway
from tests.support.live import node_subscriber, sse_subscription
from tests.support.live_standin import LiveStandin

# The shortest the settings allow: every poll a second, a session quiet for 2 s has ended.
LIVE: dict[str, Any] = {"live_poll_interval": 1.0, "live_session_idle": 2.0}

SESSIONS = """subscription Watch($first: Int!) {
  sessions(first: $first, includeExisting: true) {
    kind
    session { sessionId threadCount initiator { username } }
  }
}"""

TIMELINE = """subscription Timeline($id: String!) {
  sessionTimeline(sessionId: $id, includeExisting: true) {
    kind
    session { sessionId }
    thread { threadId agenticActions { model } }
  }
}"""

SPEND = """subscription Spend {
  aiSpend { kind threshold status { currentSpend { micros } } }
}"""


def sessions_event(event: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in event or not event["errors"], event
    data: dict[str, Any] = event["data"]["sessions"]
    return data


def is_session(kind: str, session_id: str) -> Any:
    def matches(event: dict[str, Any]) -> bool:
        data = sessions_event(event)
        return bool(data["kind"] == kind and data["session"]["sessionId"] == session_id)

    return matches


@pytest.mark.parametrize("client", ["sse", "apollo"])
async def test_a_new_session_and_its_activity_reach_a_real_client(
    live_standin: LiveStandin, tokens: dict[str, str], client: str
) -> None:
    traffic = live_standin.traffic
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        variables = {"first": 5}
        async with node_subscriber(client, url, tokens["admin"], SESSIONS, variables) as sub:
            existing = sessions_event(await sub.next())
            assert existing["kind"] == "EXISTING"
            started = traffic.start_session("alice")
            added = sessions_event(await sub.until(is_session("ADDED", started.session_id)))
            assert added["session"]["threadCount"] == 1
            traffic.append_interception(started.session_id, thread="new")
            updated = sessions_event(await sub.until(is_session("UPDATED", started.session_id)))
            assert updated["session"]["threadCount"] == 2
            ended = sessions_event(await sub.until(is_session("ENDED", started.session_id)))
            assert ended["session"]["initiator"]["username"] == "alice"


async def test_a_session_timeline_streams_threads_then_completes(
    live_standin: LiveStandin, tokens: dict[str, str]
) -> None:
    traffic = live_standin.traffic
    started = traffic.start_session("bogdan", client="claude-code")
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        variables = {"id": started.session_id}
        async with node_subscriber("sse", url, tokens["admin"], TIMELINE, variables) as sub:
            first = (await sub.next())["data"]["sessionTimeline"]
            assert first["kind"] == "EXISTING"
            assert first["thread"]["threadId"] == started.thread_id
            second = traffic.append_interception(started.session_id, thread="new")
            event = await sub.until(lambda e: e["data"]["sessionTimeline"]["kind"] == "ADDED")
            assert event["data"]["sessionTimeline"]["thread"]["threadId"] == second.thread_id
            ended = await sub.until(lambda e: e["data"]["sessionTimeline"]["kind"] == "ENDED")
            assert ended["data"]["sessionTimeline"]["thread"] is None
            assert await sub.next() == {"complete": True}


async def test_spend_against_budget_streams_its_changes(
    live_standin: LiveStandin, tokens: dict[str, str]
) -> None:
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        if live_standin.api_era == "sessions":
            # No spend routes before the AI Gateway API: refused before any upstream call.
            async with sse_subscription(url, SPEND, {"Coder-Session-Token": tokens["alice"]}) as s:
                result = await s.next()
                assert await s.next() is None
            assert result is not None
            [error] = result["errors"]
            assert error["extensions"]["code"] == "UPSTREAM_UNSUPPORTED"
            assert not [call for call in gw.calls if "/ai/spend" in call]
            return
        async with node_subscriber("sse", url, tokens["alice"], SPEND) as sub:
            current = (await sub.next())["data"]["aiSpend"]
            assert current["kind"] == "CURRENT"
            before = int(current["status"]["currentSpend"]["micros"])
            session = live_standin.traffic.start_session("alice")
            live_standin.traffic.append_interception(session.session_id, thread="new")
            changed = await sub.until(lambda e: e["data"]["aiSpend"]["kind"] == "CHANGED")
            after = int(changed["data"]["aiSpend"]["status"]["currentSpend"]["micros"])
            assert after > before


@pytest.mark.parametrize("name", sorted(graphql_subscriptions()))
async def test_each_documented_subscription_streams_its_first_event(
    live_standin: LiveStandin, tokens: dict[str, str], name: str
) -> None:
    document = graphql_subscriptions()[name]
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        live_standin.traffic.start_session("alice", client="claude-code")
        async with sse_subscription(url, document, {"Coder-Session-Token": tokens["admin"]}) as s:
            first = await s.next()
    assert first is not None
    if live_standin.api_era == "sessions" and "aiSpend" in document:
        assert first["errors"][0]["extensions"]["code"] == "UPSTREAM_UNSUPPORTED"
    else:
        assert "errors" not in first, first
