"""Every field of every type, through the gateway, equals what the REST API returns for it.

The seeded stand-in is compared whole (every session, every thread of every session, every
interception), through the lists and through `node(id:)`, so no field escapes on odd data (null
clients and metadata, tool invocation errors, model thoughts, agentic loops).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from aibridge_graphql.standin.eras import ApiEra
from tests.support.eras import expect_interceptions, has_interceptions
from tests.support.gateway_helpers import (
    INTERCEPTION_FIELDS,
    SESSION_FIELDS,
    THREAD_FIELDS,
    TIME_KEYS,
    Gateway,
    interception,
    normalize_times,
    rest_client,
    rest_json,
    serve_gateway,
    session,
    thread,
)

# Aliases per query when asking for many sessions at once (well inside the alias/token limits).
BATCH = 10


def same(got: Any, expected: Any) -> None:
    assert normalize_times(got, TIME_KEYS) == normalize_times(expected, TIME_KEYS)


async def _all_nodes(gw: Gateway, root: str, fields: str) -> tuple[list[Any], int]:
    """Every node of a root connection, walked 100 at a time, and its totalCount."""
    query = f"""query($after: String) {{ {root}(first: 100, after: $after) {{
      totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ id {fields} }} }} }}"""
    nodes: list[Any] = []
    after = None
    for _ in range(100):
        connection = (await gw.data(query, {"after": after}))[root]
        nodes += connection["nodes"]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes, connection["totalCount"]
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("the walk did not end")


async def _rest_all(rest: httpx.AsyncClient, path: str, key: str, cursor: str) -> list[Any]:
    items: list[Any] = []
    params: dict[str, Any] = {"limit": 1000}
    for _ in range(100):
        body = await rest_json(rest, path, **params)
        items += body[key]
        if len(body[key]) < 1000:
            return items
        params[cursor] = items[-1]["id"]
    raise AssertionError("the REST walk did not end")


def _strip_ids(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in node.items() if k != "id"} for node in nodes]


async def test_sessions_match_rest(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        nodes, total = await _all_nodes(gw, "sessions", SESSION_FIELDS)
        expected = await _rest_all(rest, "/sessions", "sessions", "after_session_id")
    assert total == len(expected) == len(nodes) > 20
    assert any(raw.get("client") is None for raw in expected)
    assert any("last_prompt" not in raw for raw in expected)
    same(_strip_ids(nodes), [session(raw) for raw in expected])


async def test_threads_of_every_session_match_rest(
    standin_url: str, tokens: dict[str, str]
) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        listing = await _rest_all(rest, "/sessions", "sessions", "after_session_id")
        compared: list[dict[str, Any]] = []
        for start in range(0, len(listing), BATCH):
            batch = listing[start : start + BATCH]
            aliases = " ".join(
                f's{i}: session(sessionId: "{raw["id"]}", initiator: "{raw["initiator"]["id"]}")'
                f" {{ threads(first: 100) {{ totalCount nodes {{ {THREAD_FIELDS} }} }} }}"
                for i, raw in enumerate(batch)
            )
            data = await gw.data(f"{{ {aliases} }}")
            for i, raw in enumerate(batch):
                expected = await rest_json(rest, f"/sessions/{raw['id']}", limit=100)
                got = data[f"s{i}"]["threads"]
                assert got["totalCount"] == raw["threads"] == len(expected["threads"])
                same(got["nodes"], [thread(item) for item in expected["threads"]])
                compared += expected["threads"]
    actions = [action for raw in compared for action in raw["agentic_actions"]]
    assert any(action["thinking"] for action in actions), "the seed must have model thoughts"
    calls = [call for action in actions for call in action["tool_calls"]]
    assert {call["injected"] for call in calls} == {True, False}
    assert any(raw["token_usage"]["metadata"] for raw in compared)


@pytest.mark.needs_interceptions(
    f"{{ interceptions(first: 5) {{ totalCount nodes {{ {INTERCEPTION_FIELDS} }} }} }}"
)
async def test_interceptions_match_rest(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["auditor"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        nodes, total = await _all_nodes(gw, "interceptions", INTERCEPTION_FIELDS)
        expected = await _rest_all(rest, "/interceptions", "results", "after_id")
    assert total == len(expected) == len(nodes) > 100
    assert any(raw.get("client") is None for raw in expected)
    assert any(raw.get("api_key_id") is None for raw in expected)
    assert any(u["invocation_error"] for raw in expected for u in raw["tool_usages"])
    same(_strip_ids(nodes), [interception(raw) for raw in expected])


NODES = f"""query($ids: [ID!]!) {{ nodes(ids: $ids) {{ __typename id
  ... on Session {{ {SESSION_FIELDS} }}
  ... on Thread {{ {THREAD_FIELDS} session {{ sessionId }} }}
  ... on Interception {{ {INTERCEPTION_FIELDS} }} }} }}"""


async def test_nodes_refetch_the_same_fields(
    api_era: ApiEra, standin_url: str, tokens: dict[str, str]
) -> None:
    """`node(id:)` finds each type again with every field equal to the REST data.

    Interceptions only in the sessions era (the ai-gateway era's lookup: test_gateway_app).
    """
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        listing = await gw.data(
            "{ sessions(first: 30) { nodes { id sessionId threads(first: 2) { nodes { id } } } } }"
        )
        sessions = [s for s in listing["sessions"]["nodes"] if s["threads"]["nodes"]][:3]
        interceptions = []
        if has_interceptions(api_era):
            listed = await gw.data("{ interceptions(first: 5) { nodes { id interceptionId } } }")
            interceptions = listed["interceptions"]["nodes"]
        ids = [s["id"] for s in sessions]
        ids += [s["threads"]["nodes"][-1]["id"] for s in sessions]
        ids += [i["id"] for i in interceptions]
        # A fresh request: nothing is primed, every node goes through its by-id lookup.
        got = (await gw.data(NODES, {"ids": ids}))["nodes"]
        rest_sessions = {
            raw["id"]: raw
            for raw in await _rest_all(rest, "/sessions", "sessions", "after_session_id")
        }
        rest_threads = {
            raw["id"]: (sid, raw)
            for sid in (s["sessionId"] for s in sessions)
            for raw in (await rest_json(rest, f"/sessions/{sid}", limit=200))["threads"]
        }
        rest_interceptions = {
            raw["id"]: raw
            for raw in (
                (await rest_json(rest, "/interceptions", limit=5))["results"]
                if interceptions
                else []
            )
        }
    assert [node["id"] for node in got] == ids
    for node in got:
        fields = {k: v for k, v in node.items() if k not in ("__typename", "id")}
        if node["__typename"] == "Session":
            same(fields, session(rest_sessions[node["sessionId"]]))
        elif node["__typename"] == "Thread":
            session_id, raw = rest_threads[node["threadId"]]
            same(fields, {**thread(raw), "session": {"sessionId": session_id}})
        else:
            assert node["__typename"] == "Interception"
            same(fields, interception(rest_interceptions[node["interceptionId"]]))


async def test_models_and_clients_match_rest(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        data = await gw.data('{ models clients prefixed: models(prefix: "c") }')
        models = await rest_json(rest, "/models", limit=1000)
        clients = await rest_json(rest, "/clients", limit=1000)
        prefixed = await rest_json(rest, "/models", limit=1000, q="c")
    assert data["models"] == models
    assert models
    assert sorted(data["clients"]) == sorted(clients)
    assert "Unknown" in clients
    assert data["prefixed"] == prefixed
    assert 0 < len(prefixed) < len(models)


async def test_filters_match_rest(
    api_era: ApiEra, standin_url: str, tokens: dict[str, str]
) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        if has_interceptions(api_era):
            sample = (await rest_json(rest, "/interceptions", limit=1))["results"][0]
            provider, model = sample["provider"], sample["model"]
        else:  # a session's values: the ai-gateway era lists no interceptions
            sample = (await rest_json(rest, "/sessions", limit=1))["sessions"][0]
            provider, model = sample["providers"][0], sample["models"][0]
        username, started = sample["initiator"]["username"], sample["started_at"]
        query = """query($p: String!, $m: String!, $u: String!, $t: DateTime!) {
          byProvider: sessions(first: 100, filter: {provider: $p}) {
            totalCount nodes { sessionId threadCount } }
          byUser: interceptions(first: 100, filter: {initiator: $u, model: $m, startedBefore: $t}) {
            totalCount nodes { interceptionId } }
        }"""
        body = await gw.query(query, {"p": provider, "m": model, "u": username, "t": started})
        by_provider = await rest_json(rest, "/sessions", limit=100, q=f"provider:{provider}")
        by_user = None
        if has_interceptions(api_era):
            by_user = await rest_json(
                rest,
                "/interceptions",
                limit=100,
                q=f'initiator:{username} model:"{model}" started_before:"{started}"',
            )
    data = body["data"]
    assert data["byProvider"]["totalCount"] == by_provider["count"] > 0
    assert [(n["sessionId"], n["threadCount"]) for n in data["byProvider"]["nodes"]] == [
        (s["id"], s["threads"]) for s in by_provider["sessions"]
    ]
    if expect_interceptions(api_era, body, "byUser"):
        assert "errors" not in body, body["errors"]
        assert by_user is not None
        assert data["byUser"]["totalCount"] == by_user["count"] > 0
        assert [n["interceptionId"] for n in data["byUser"]["nodes"]] == [
            i["id"] for i in by_user["results"]
        ]
