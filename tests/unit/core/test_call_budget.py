"""The upstream-call budget end to end: refused before running, capped while running."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest

from aibridge_graphql.core.call_budget import CallBudget, CallBudgetExceeded
from aibridge_graphql.core.loaders import Loaders
from aibridge_graphql.core.refs import ThreadRef
from aibridge_graphql.schema.ids import decode_global_id, encode_global_id
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.search_query import SessionFilter
from tests.support.docs import graphql_queries
from tests.support.gateway_fakes import FakeUpstream, gateway, populated


def settings(**overrides: Any) -> Settings:
    return Settings(upstream_url="http://upstream.invalid", retries=0, **overrides)


def attack() -> str:
    """The issue's document: 28 aliases of 100 sessions × their threads (2.3 KB)."""
    aliases = " ".join(
        f"a{k}: sessions(first: 100) {{ nodes {{ threads(first: {k}) "
        "{ nodes { threadId } } } }"
        for k in range(1, 29)
    )
    return "{ " + aliases + " }"


async def test_the_28_alias_fan_out_is_refused_with_no_upstream_call() -> None:
    fake = populated(sessions=120, threads=2)
    async with gateway(fake) as gw:
        response = await gw.http.post(
            "/graphql", json={"query": attack()}, headers={"Coder-Session-Token": "admin-token"}
        )
        body = await response.json()
        invalid = await gw.http.post("/graphql", json={"query": "{ nope }"})
    assert fake.calls == []
    assert response.status == invalid.status  # answered as validation failures are
    assert "data" not in body or body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {
        "code": "COST_ESTIMATED_TOO_EXPENSIVE",
        "estimate": 2828,
        "budget": 100,
    }
    assert "2828" in error["message"]
    assert "budget is 100" in error["message"]


async def test_documented_views_pass_with_the_default_budget() -> None:
    # The README's three views and the usage query of docs/cost-and-usage.md.
    views = graphql_queries()
    assert set(views) == {"Dashboard", "Session", "Interceptions", "Usage"}
    fake = populated(sessions=25, threads=5)
    variables = {"id": "session-003", "after": None}
    calls: dict[str, int] = {}
    async with gateway(fake) as gw:
        for name, view in views.items():
            fake.calls.clear()
            body = await gw.query(view, variables)
            assert "errors" not in body, (name, body)
            calls[name] = len(fake.calls)
    # The table made its three calls, well inside the budget; the usage query walked the
    # interceptions in one page.
    assert calls["Interceptions"] == 3
    assert calls["Usage"] == 1


async def test_the_estimate_follows_the_request_variables_not_a_cached_validation() -> None:
    query = """query($n: Int) {
      a: sessions(first: $n) { nodes { threads(first: 1) { nodes { threadId } } } }
      b: sessions(first: $n) { nodes { threads(first: 2) { nodes { threadId } } } }
    }"""
    fake = populated(sessions=60, threads=1)
    async with gateway(fake, settings(upstream_call_budget=50)) as gw:
        small = await gw.query(query, {"n": 10})
        assert "errors" not in small, small
        assert len(fake.calls) == 1 + 10 + 10  # the two lists dedupe; thread pages differ
        fake.calls.clear()
        big = await gw.query(query, {"n": 30})
        # 2 × (1 + 30) = 62 > 50, though the run would make 61 calls: an upper bound.
        assert big["errors"][0]["extensions"] == {
            "code": "COST_ESTIMATED_TOO_EXPENSIVE",
            "estimate": 62,
            "budget": 50,
        }
        assert fake.calls == []


async def test_the_budget_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIBRIDGE_UPSTREAM_CALL_BUDGET", "3")
    assert Settings().upstream_call_budget == 3
    monkeypatch.setenv("AIBRIDGE_UPSTREAM_CALL_BUDGET", "0")
    with pytest.raises(ValueError, match="upstream_call_budget"):
        Settings()


async def test_run_time_cap_fails_only_the_field_over_it() -> None:
    # `models` is estimated at one call, but 4,500 names take five pages of 1000.
    fake = populated(sessions=2, threads=1)
    fake.models = [f"model-{i:05d}" for i in range(4500)]
    async with gateway(fake, settings(upstream_call_budget=4)) as gw:
        body = await gw.query("{ clients models }")
    assert body["data"]["clients"] == ["Claude Code", "Codex"]
    assert body["data"]["models"] is None
    [error] = body["errors"]
    assert error["path"] == ["models"]
    assert error["extensions"] == {"code": "UPSTREAM_CALL_BUDGET_EXCEEDED", "budget": 4}
    # clients + three models pages went out; the fourth page was refused before sending.
    assert len(fake.calls) == 4
    assert len(fake.calls_to("/models")) == 3


async def test_run_time_cap_on_lookups_leaves_siblings_their_data() -> None:
    # A thread lookup is estimated at two calls (its page, its session); deep in a session of
    # 1000 threads it walks pages of 200 until found, and the cap stops the walk.
    fake = populated(sessions=1, threads=1000)
    async with gateway(fake) as gw:
        listing = await gw.query(
            '{ session(sessionId: "session-000") { threads(first: 1) { nodes { id } } } }'
        )
        first = listing["data"]["session"]["threads"]["nodes"][0]["id"]
    deep = first_to_deep(first, fake)
    query = "query($id: ID!) { a: node(id: $id) { id } b: models }"
    fake.calls.clear()
    async with gateway(fake, settings(upstream_call_budget=4)) as gw:
        body = await gw.query(query, {"id": deep})
    assert body["data"] == {"a": None, "b": ["model-0000", "model-0001", "model-0002"]}
    [error] = body["errors"]
    assert error["path"] == ["a"]
    assert error["extensions"] == {"code": "UPSTREAM_CALL_BUDGET_EXCEEDED", "budget": 4}
    assert len(fake.calls) == 4
    fake.calls.clear()
    async with gateway(fake, settings(upstream_call_budget=10)) as gw:
        found = await gw.query(query, {"id": deep})
    assert found["data"]["a"] == {"id": deep}
    assert len(fake.calls) == 1 + 1 + 5  # models, the session, five pages of 200


def first_to_deep(first_id: str, fake: FakeUpstream) -> str:
    """The global ID of thread 900 of session-000, built from thread 0's."""
    ref = decode_global_id(first_id)
    assert isinstance(ref, ThreadRef)
    deep = UUID(fake.sessions[0].threads[900]["id"])
    return encode_global_id(ThreadRef(ref.session, deep))


async def test_loaders_count_distinct_calls_only() -> None:
    fake = populated(sessions=4, threads=1)
    client = UpstreamClient(settings(), transport=fake.transport())
    budget = CallBudget(2)
    try:
        loaders = Loaders(client, Credentials("admin-token"), concurrency=4, call_budget=budget)
        # Ten loads of one request: one call.
        await asyncio.gather(*(loaders.sessions_page(SessionFilter(), limit=3) for _ in range(10)))
        assert budget.used == 1
        await loaders.threads_page("session-000", limit=2)
        assert budget.used == 2
        with pytest.raises(CallBudgetExceeded) as refused:
            await loaders.threads_page("session-001", limit=2)
        assert refused.value.limit == 2
        # Already loaded: free, even with the budget spent.
        await loaders.threads_page("session-000", limit=2)
    finally:
        await client.aclose()
    assert len(fake.calls) == 2
    assert budget.used == 2


def test_call_budget_counts_and_refuses() -> None:
    unlimited = CallBudget(None)
    for _ in range(1000):
        unlimited.spend()
    assert unlimited.used == 1000
    budget = CallBudget(1)
    budget.spend()
    with pytest.raises(CallBudgetExceeded):
        budget.spend()
    assert (budget.used, budget.limit) == (1, 1)
    with pytest.raises(ValueError, match="negative"):
        CallBudget(-1)
