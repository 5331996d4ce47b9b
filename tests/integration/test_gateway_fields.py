"""Every field of every type, through the gateway, equals what the REST API returns for it."""

from __future__ import annotations

from typing import Any

from gateway_helpers import (
    INTERCEPTION_FIELDS,
    SESSION_FIELDS,
    THREAD_FIELDS,
    TIME_KEYS,
    interception,
    normalize_times,
    rest_client,
    rest_json,
    serve_gateway,
    session,
    thread,
)

REST_TIME_KEYS = TIME_KEYS


def same(got: Any, expected: Any) -> None:
    assert normalize_times(got, TIME_KEYS) == normalize_times(expected, TIME_KEYS)


async def test_sessions_match_rest(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    query = f"{{ sessions(first: 100) {{ totalCount nodes {{ {SESSION_FIELDS} }} }} }}"
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        data = await gw.data(query)
        expected = await rest_json(rest, "/sessions", limit=100)
    assert expected["sessions"], "the seeded stand-in must have sessions"
    assert data["sessions"]["totalCount"] == expected["count"]
    same(data["sessions"]["nodes"], [session(raw) for raw in expected["sessions"]])


async def test_threads_match_rest(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        listing = await rest_json(rest, "/sessions", limit=12)
        picked = listing["sessions"]
        aliases = " ".join(
            f's{i}: session(sessionId: "{raw["id"]}", initiator: "{raw["initiator"]["id"]}") '
            f"{{ sessionId threads(first: 100) {{ totalCount nodes {{ {THREAD_FIELDS} }} }} }}"
            for i, raw in enumerate(picked)
        )
        data = await gw.data(f"{{ {aliases} }}")
        for i, raw in enumerate(picked):
            expected = await rest_json(rest, f"/sessions/{raw['id']}", limit=100)
            got = data[f"s{i}"]["threads"]
            assert got["totalCount"] == raw["threads"]
            same(got["nodes"], [thread(item) for item in expected["threads"]])
    assert any(raw["threads"] > 0 for raw in picked)


async def test_interceptions_match_rest(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["auditor"]
    query = f"{{ interceptions(first: 100) {{ totalCount nodes {{ {INTERCEPTION_FIELDS} }} }} }}"
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        data = await gw.data(query)
        expected = await rest_json(rest, "/interceptions", limit=100)
    assert expected["results"]
    assert data["interceptions"]["totalCount"] == expected["count"]
    same(data["interceptions"]["nodes"], [interception(raw) for raw in expected["results"]])


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
    assert clients
    assert data["prefixed"] == prefixed


async def test_filters_match_rest(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        sample = (await rest_json(rest, "/interceptions", limit=1))["results"][0]
        provider, model, username = (
            sample["provider"],
            sample["model"],
            sample["initiator"]["username"],
        )
        started = sample["started_at"]
        query = """query($p: String!, $m: String!, $u: String!, $t: DateTime!) {
          byProvider: sessions(first: 100, filter: {provider: $p}) {
            totalCount nodes { sessionId } }
          byUser: interceptions(first: 100, filter: {initiator: $u, model: $m, startedBefore: $t}) {
            totalCount nodes { interceptionId } }
        }"""
        data = await gw.data(query, {"p": provider, "m": model, "u": username, "t": started})
        by_provider = await rest_json(rest, "/sessions", limit=100, q=f"provider:{provider}")
        by_user = await rest_json(
            rest,
            "/interceptions",
            limit=100,
            q=f'initiator:{username} model:"{model}" started_before:"{started}"',
        )
    assert data["byProvider"]["totalCount"] == by_provider["count"] > 0
    assert [n["sessionId"] for n in data["byProvider"]["nodes"]] == [
        s["id"] for s in by_provider["sessions"]
    ]
    assert data["byUser"]["totalCount"] == by_user["count"] > 0
    assert [n["interceptionId"] for n in data["byUser"]["nodes"]] == [
        i["id"] for i in by_user["results"]
    ]
