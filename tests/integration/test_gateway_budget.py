"""The upstream call budget and per-caller isolation against the real stand-in."""

from __future__ import annotations

import asyncio

from aibridge_graphql.standin.eras import ApiEra
from tests.support.eras import has_interceptions
from tests.support.gateway_helpers import serve_gateway

DASHBOARD_ALIASED = """
fragment Row on Session { id sessionId threadCount lastPrompt initiator { username }
  threads(first: 3) { totalCount edges { cursor node { id threadId prompt
    agenticActions { model toolCalls { tool } } } } } }
{
  a: sessions(first: 20) { totalCount edges { node { ...Row } } }
  b: sessions(first: 20) { edges { node { ...Row } } }
  c: sessions(first: 20) { nodes { sessionId threads(first: 3) { nodes { threadId } } } }
}"""


async def test_dashboard_costs_one_plus_twenty(standin_url: str, tokens: dict[str, str]) -> None:
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        data = await gw.data(DASHBOARD_ALIASED)
        calls = list(gw.calls)
    assert len(data["a"]["edges"]) == 20, "the seed must have at least 20 sessions"
    assert len(calls) == 21, calls
    assert sum(1 for call in calls if call.startswith("/sessions?")) == 1


async def test_repeated_node_costs_nothing_more(
    api_era: ApiEra, standin_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        listing = await gw.data(
            "{ sessions(first: 1) { nodes { id initiator { id }"
            " threads(first: 1) { nodes { id } } } } }"
        )
        session = listing["sessions"]["nodes"][0]
        ids = {
            "s": session["id"],
            "t": session["threads"]["nodes"][0]["id"],
            "u": session["initiator"]["id"],
        }
        if has_interceptions(api_era):  # the ai-gateway era has no interception to look up
            interceptions = await gw.data("{ interceptions(first: 1) { nodes { id } } }")
            ids["i"] = interceptions["interceptions"]["nodes"][0]["id"]
        keys = sorted(ids)
        aliases = " ".join(
            f"{k}1: node(id: ${k}) {{ id }} {k}2: node(id: ${k}) {{ id }}" for k in keys
        )
        refs = ", ".join(f"${k}" for k in keys)
        query = f"""query({", ".join(f"${k}: ID!" for k in keys)}) {{ {aliases}
          all: nodes(ids: [{refs}, {refs}]) {{ id }} }}"""
        before = len(gw.calls)
        data = await gw.data(query, ids)
        calls = gw.calls[before:]
    assert [node["id"] for node in data["all"]] == [ids[k] for k in keys] * 2
    # One session lookup, one threads page, one interception window, one user lookup at most;
    # the thread's session is the session lookup already made.
    assert len(calls) <= len(keys), calls
    assert len(set(calls)) == len(calls)


async def test_callers_are_isolated_when_interleaved(
    standin_url: str, tokens: dict[str, str]
) -> None:
    member = next(token for name, token in tokens.items() if name not in ("admin", "auditor"))
    query = """{ sessions(first: 5) { totalCount nodes { id initiator { username }
      threads(first: 2) { totalCount } } } interceptions(first: 3) { totalCount } models }"""
    async with serve_gateway(standin_url) as gw:
        solo_admin = await gw.query(query, token=tokens["admin"])
        solo_member = await gw.query(query, token=member)
        order = [tokens["admin"], member] * 25
        bodies = await asyncio.gather(*(gw.query(query, token=token) for token in order))
    assert solo_admin["data"]["sessions"]["totalCount"] > 0
    assert solo_member["data"]["sessions"]["totalCount"] == 0
    for token, body in zip(order, bodies, strict=True):
        assert body == (solo_admin if token == tokens["admin"] else solo_member)
