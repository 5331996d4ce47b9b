"""The gateway in front of a stand-in whose data grows between two queries (what a live view
polls), in both eras: records appended with `live_standin.traffic` show on the next request."""

from __future__ import annotations

from typing import Any

from tests.support.gateway_helpers import Gateway, serve_gateway
from tests.support.live_standin import LiveStandin

SESSIONS = """{
  sessions(first: 2) {
    totalCount
    nodes { sessionId threadCount lastPrompt tokenUsage { inputTokens outputTokens } }
  }
}"""


async def _sessions(gateway: Gateway) -> dict[str, Any]:
    data = await gateway.data(SESSIONS)
    sessions: dict[str, Any] = data["sessions"]
    return sessions


async def test_appended_sessions_and_threads_show_on_the_next_query(
    live_standin: LiveStandin, tokens: dict[str, str]
) -> None:
    traffic = live_standin.traffic
    async with serve_gateway(live_standin.url, tokens["admin"]) as gateway:
        before = await _sessions(gateway)

        started = traffic.start_session("alice", client="Claude Code")
        after_start = await _sessions(gateway)
        assert after_start["totalCount"] == before["totalCount"] + 1
        newest = after_start["nodes"][0]
        assert (newest["sessionId"], newest["threadCount"]) == (started.session_id, 1)

        traffic.append_interception(started.session_id, thread="continue")
        grown = (await _sessions(gateway))["nodes"][0]
        assert grown["sessionId"] == started.session_id
        assert grown["threadCount"] == 1
        assert grown["tokenUsage"]["outputTokens"] > newest["tokenUsage"]["outputTokens"]

        running = traffic.start_session("bogdan", client="Codex", in_flight=True)
        assert (await _sessions(gateway))["totalCount"] == after_start["totalCount"]
        traffic.end_session(running.session_id)
        ended = await _sessions(gateway)
        assert ended["totalCount"] == after_start["totalCount"] + 1
        assert ended["nodes"][0]["sessionId"] == running.session_id
