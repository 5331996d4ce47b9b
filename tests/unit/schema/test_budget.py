"""Upstream call budget, de-duplication, bounded fan-out, isolation of callers (fake upstream)."""

from __future__ import annotations

import asyncio

from aibridge_graphql.settings import Settings
from tests.support.gateway_fakes import gateway, populated

DASHBOARD = """
fragment S on Session {
  id sessionId threadCount
  threads(first: 3) { totalCount edges { cursor node { id threadId agenticActions { model } } } }
}
query {
  a: sessions(first: 20) { totalCount edges { node { ...S } } }
  b: sessions(first: 20) { edges { node { ...S initiator { username } } } }
  c: sessions(first: 20) { nodes { threads(first: 3) { nodes { prompt } } } }
}
"""


async def test_dashboard_costs_one_plus_twenty_calls_whatever_the_aliases() -> None:
    fake = populated(sessions=25, threads=5)
    async with gateway(fake) as gw:
        body = await gw.query(DASHBOARD)
    assert "errors" not in body, body
    assert len(body["data"]["a"]["edges"]) == 20
    assert len(fake.calls) == 21
    assert len(fake.calls_to("/sessions?")) == 1
    assert len(set(fake.calls)) == 21


async def test_repeated_node_costs_nothing_more() -> None:
    fake = populated(sessions=3, threads=2)
    async with gateway(fake) as gw:
        listing = await gw.query(
            "{ sessions(first: 1) { nodes { id threads(first: 1) { nodes { id } } } } }"
        )
        session = listing["data"]["sessions"]["nodes"][0]
        thread_id = session["threads"]["nodes"][0]["id"]
        fake.calls.clear()
        query = """query($s: ID!, $t: ID!) {
          a: node(id: $s) { id ... on Session { sessionId } }
          b: node(id: $s) { id }
          c: nodes(ids: [$s, $s, $t]) { id }
          d: node(id: $t) { ... on Thread { session { id } } }
        }"""
        body = await gw.query(query, {"s": session["id"], "t": thread_id})
        assert "errors" not in body, body
        assert body["data"]["a"]["id"] == session["id"]
        assert body["data"]["d"]["session"]["id"] == session["id"]
        # One session lookup and one threads page, shared by every alias.
        assert len(fake.calls) == 2
        fake.calls.clear()
        # Inside one request, entities from a list prime the by-id loaders: no extra call.
        primed = await gw.query(
            "query($s: ID!) { sessions(first: 5) { totalCount } node(id: $s) { id } }",
            {"s": session["id"]},
        )
        assert primed["data"]["node"]["id"] == session["id"]
        assert len(fake.calls) == 1


async def test_distinct_calls_run_concurrently_within_the_bound() -> None:
    fake = populated(sessions=20, threads=1)
    fake.delay = 0.02
    settings = Settings(upstream_url="http://upstream.invalid", retries=0, upstream_concurrency=4)
    async with gateway(fake, settings) as gw:
        body = await gw.query(
            "{ sessions(first: 20) { nodes { threads(first: 1) { totalCount } } } }"
        )
    assert "errors" not in body
    assert fake.max_in_flight == 4


async def test_callers_never_see_each_other_data() -> None:
    fake = populated(sessions=10, threads=2)
    query = (
        "{ sessions(first: 5) { totalCount nodes { sessionId threads(first: 1) { totalCount } } } }"
    )
    async with gateway(fake) as gw:
        tokens = ["admin-token", "member-token"] * 20
        bodies = await asyncio.gather(*(gw.query(query, token=t) for t in tokens))
    for token, body in zip(tokens, bodies, strict=True):
        sessions = body["data"]["sessions"]
        if token == "admin-token":
            assert sessions["totalCount"] == 10
            assert len(sessions["nodes"]) == 5
        else:
            assert sessions == {"totalCount": 0, "nodes": []}
    assert set(fake.tokens_seen) == {"admin-token", "member-token"}


SESSION_DETAIL = """
query($sid: String!, $n: Int) {
  session(sessionId: $sid) { sessionId ...T threads(first: $n) { nodes { threadId } } }
}
fragment T on Session {
  more: threads(first: 2) { totalCount }
  skipped: threads(first: 9) @skip(if: true) { totalCount }
}
"""


async def test_session_threads_load_alongside_the_session_lookup() -> None:
    fake = populated(sessions=3, threads=5)
    fake.delay = 0.02
    async with gateway(fake) as gw:
        body = await gw.query(SESSION_DETAIL, {"sid": "session-001", "n": 3})
        assert "errors" not in body, body
        assert len(body["data"]["session"]["threads"]["nodes"]) == 3
        assert body["data"]["session"]["more"]["totalCount"] == 5
        # The lookup and both threads pages were in flight together; the skipped one never ran.
        assert fake.max_in_flight == 3
        assert sorted(fake.calls_to("/sessions/")) == [
            "/sessions/session-001?limit=3",
            "/sessions/session-001?limit=4",
        ]
        assert len(fake.calls) == 3
        fake.calls.clear()
        missing = await gw.query(SESSION_DETAIL, {"sid": "nope", "n": 3})
    assert missing["data"] == {"session": None}
    assert [e["extensions"]["code"] for e in missing["errors"]] == ["NOT_FOUND"]
