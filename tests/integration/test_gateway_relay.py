"""Relay invariants against the real stand-in: walks without gaps or duplicates, exact pageInfo."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gateway_helpers import Gateway, rest_client, rest_json, serve_gateway

SESSIONS = """query($first: Int, $after: String) { sessions(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  edges { cursor node { sessionId } } } }"""
INTERCEPTIONS = """query($first: Int, $after: String) {
  interceptions(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  edges { cursor node { interceptionId } } } }"""
THREADS = """query($sid: String!, $uid: String!, $first: Int, $after: String, $last: Int,
  $before: String) { session(sessionId: $sid, initiator: $uid) {
  threads(first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { threadId } } } } }"""


def _check_page(connection: dict[str, Any], *, step: int, forward: bool) -> None:
    edges, info = connection["edges"], connection["pageInfo"]
    assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
    assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
    if forward:
        assert info["hasPreviousPage"] is (step > 0)
    else:
        assert info["hasNextPage"] is (step > 0)


async def _walk_forward(
    gw: Gateway, query: str, root: str, key: str, size: int, variables: dict[str, Any]
) -> tuple[list[str], int]:
    seen: list[str] = []
    after = None
    total = -1
    for step in range(1000):
        data = await gw.data(query, {**variables, "first": size, "after": after})
        connection = data[root]["threads"] if root == "session" else data[root]
        _check_page(connection, step=step, forward=True)
        total = connection["totalCount"]
        seen += [edge["node"][key] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            assert len(connection["edges"]) <= size
            return seen, total
        assert len(connection["edges"]) == size
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("the walk did not end")


async def _rest_all(rest: Any, path: str, key: str, cursor_param: str) -> tuple[list[str], int]:
    """Every id of a REST list, paged by its own cursor (the ground truth)."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 1000}
    for _ in range(1000):
        body = await rest_json(rest, path, **params)
        ids += [item["id"] for item in body[key]]
        if len(body[key]) < 1000:
            return ids, body["count"]
        params[cursor_param] = ids[-1]
    raise AssertionError("the REST walk did not end")


def _page_size(total: int) -> int:
    # About fifteen pages whatever the seed size.
    return min(100, max(7, total // 15))


async def test_sessions_walk_forward(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        expected, count = await _rest_all(rest, "/sessions", "sessions", "after_session_id")
        size = _page_size(count)
        seen, total = await _walk_forward(gw, SESSIONS, "sessions", "sessionId", size, {})
    assert seen == expected
    assert total == count == len(seen)
    assert len(set(seen)) == len(seen)


@pytest.mark.needs_interceptions(
    "{ interceptions(first: 7) { totalCount edges { cursor node { interceptionId } } } }"
)
async def test_interceptions_walk_forward(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        expected, count = await _rest_all(rest, "/interceptions", "results", "after_id")
        size = _page_size(count)
        seen, total = await _walk_forward(
            gw, INTERCEPTIONS, "interceptions", "interceptionId", size, {}
        )
    assert seen == expected
    assert total == count == len(seen)


async def _busiest_session(rest: Any) -> dict[str, Any]:
    listing = await rest_json(rest, "/sessions", limit=1000)
    busiest: dict[str, Any] = max(listing["sessions"], key=lambda s: s["threads"])
    assert busiest["threads"] >= 3, "the seed must have a session with several threads"
    return busiest


async def test_threads_walk_both_ways(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        busiest = await _busiest_session(rest)
        ids = {"sid": busiest["id"], "uid": busiest["initiator"]["id"]}
        expected = [
            t["id"]
            for t in (await rest_json(rest, f"/sessions/{busiest['id']}", limit=200))["threads"]
        ]
        forward, total = await _walk_forward(gw, THREADS, "session", "threadId", 2, ids)
        assert forward == expected
        assert total == busiest["threads"] == len(expected)

        backward: list[str] = []
        before = None
        for step in range(1000):
            data = await gw.data(THREADS, {**ids, "last": 2, "before": before})
            connection = data["session"]["threads"]
            _check_page(connection, step=step, forward=False)
            backward = [edge["node"]["threadId"] for edge in connection["edges"]] + backward
            if not connection["pageInfo"]["hasPreviousPage"]:
                break
            assert len(connection["edges"]) == 2
            before = connection["pageInfo"]["startCursor"]
        assert backward == expected


async def test_threads_before_a_middle_cursor(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        busiest = await _busiest_session(rest)
        ids = {"sid": busiest["id"], "uid": busiest["initiator"]["id"]}
        data = await gw.data(THREADS, {**ids, "first": busiest["threads"]})
        edges = data["session"]["threads"]["edges"]
        last = edges[-1]
        page = await gw.data(THREADS, {**ids, "last": 1, "before": last["cursor"]})
    connection = page["session"]["threads"]
    # Exactly the thread right before the cursor, not the session's first (the upstream quirk).
    assert [e["node"]["threadId"] for e in connection["edges"]] == [edges[-2]["node"]["threadId"]]
    assert connection["pageInfo"]["hasNextPage"] is True
    assert connection["pageInfo"]["hasPreviousPage"] is (len(edges) > 2)


FILTERED_SESSIONS = """query($first: Int, $after: String, $filter: SessionFilter) {
  sessions(first: $first, after: $after, filter: $filter) {
  totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  edges { cursor node { sessionId } } } }"""


async def _rest_sessions_by_offset(rest: Any, q: str) -> tuple[list[str], int]:
    """Every session a filtered `GET /sessions` lists, paged by offset (no cursor involved)."""
    ids: list[str] = []
    for _ in range(1000):
        body = await rest_json(rest, "/sessions", q=q, limit=50, offset=len(ids))
        ids += [item["id"] for item in body["sessions"]]
        if len(body["sessions"]) < 50:
            return ids, body["count"]
    raise AssertionError("the REST walk did not end")


@pytest.mark.parametrize(
    ("gql_filter", "q"),
    [
        ({"provider": "anthropic"}, "provider:anthropic"),
        ({"provider": "openai"}, "provider:openai"),
        ({"model": "claude-sonnet-4-5"}, "model:claude-sonnet-4-5"),
    ],
)
async def test_filtered_sessions_walk_is_exact(
    standin_url: str, tokens: dict[str, str], gql_filter: dict[str, str], q: str
) -> None:
    # A filter that drops some of a session's interceptions changes its `last_active_at` (the
    # order) but not the position Coder computes for `after_session_id` (from all of them), so
    # a walk by the upstream cursor would repeat sessions (contract: ListAIBridgeSessions).
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        expected, count = await _rest_sessions_by_offset(rest, q)
        seen, total = await _walk_forward(
            gw, FILTERED_SESSIONS, "sessions", "sessionId", 3, {"filter": gql_filter}
        )
    assert count > 10, f"the seed must have enough sessions matching {q} to page through"
    assert seen == expected
    assert total == count == len(seen)


async def test_cursors_of_filtered_and_whole_session_walks_do_not_mix(
    standin_url: str, tokens: dict[str, str]
) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw:
        whole = await gw.data(FILTERED_SESSIONS, {"first": 2})
        cursor = whole["sessions"]["pageInfo"]["endCursor"]
        body = await gw.query(
            FILTERED_SESSIONS, {"first": 2, "after": cursor, "filter": {"provider": "openai"}}
        )
    assert body["data"]["sessions"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not a cursor of this" in body["errors"][0]["message"]
