"""Coder's budget writes as GraphQL mutations, against the real stand-in on loopback: each write
round-trips through the spend reads, Coder's authorization rows come back as GraphQL codes with
Coder's messages, bad input is a clear error before any call, the sessions era is
UPSTREAM_UNSUPPORTED without a call, and a cached spend read is fresh right after a write (in
process, and across two replicas sharing Redis).

The stand-in's answers are Coder's as docs/standin.md traces them (enterprise/coderd/aibridge.go
and its tests); tests/standin/test_api_budget_access.py holds the stand-in to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aibridge_graphql.core.errors import OUTCOME_UNKNOWN_MESSAGE, describe
from aibridge_graphql.settings import Settings
from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.seed import seed_database
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import read_tokens
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.deadline import Deadline
from aibridge_graphql.upstream.errors import UpstreamOutcomeUnknown
from aibridge_graphql.upstream.requests import UpstreamRequest, group_ai_budget_request
from tests.support.gateway_helpers import (
    Gateway,
    WriteFaults,
    serve_gateway,
    when,
    write_fault_proxy,
)
from tests.support.redis_server import run_redis
from tests.support.servers import run_app_in_thread

ADMIN_TOKEN = "AdminMutat-0123456789abcdefghijkl"
# Coder's 404 (httpapi.ResourceNotFound), also its answer to a caller who may not write.
NOT_FOUND = "Resource not found or you do not have access to this resource"
UNKNOWN_GROUP = "00000000-0000-4000-8000-00000000beef"

SET_GROUP = """mutation($input: SetGroupAIBudgetInput!) {
  setGroupAIBudget(input: $input) {
    clientMutationId
    budget { groupId spendLimit { micros amount currency source } createdAt updatedAt }
  }
}"""
CLEAR_GROUP = """mutation($input: ClearGroupAIBudgetInput!) {
  clearGroupAIBudget(input: $input) { clientMutationId groupId cleared }
}"""
SET_OVERRIDE = """mutation($input: SetUserAIBudgetOverrideInput!) {
  setUserAIBudgetOverride(input: $input) {
    clientMutationId
    override { userId groupId spendLimit { micros } createdAt updatedAt }
  }
}"""
CLEAR_OVERRIDE = """mutation($input: ClearUserAIBudgetOverrideInput!) {
  clearUserAIBudgetOverride(input: $input) { clientMutationId user cleared }
}"""
GROUP_SPEND = """query($ids: [ID!]!) {
  aiGroupSpend(organization: "coder", groupIds: $ids) { groups { groupId spendLimit { micros } } }
}"""
USER_SPEND = """query($user: String!) {
  aiSpend(user: $user) { userId effectiveGroupId effectiveBudget { spendLimit { micros } source } }
}"""


def _make_db(path: Path) -> Path:
    with contextlib.closing(open_database(path)) as conn:
        seed_database(conn, 60, 5, ADMIN_TOKEN, awkward_session_ids=False)
        conn.commit()
    return path


@pytest.fixture(scope="module")
def writes_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own database: its tests write budgets (and put back what they change)."""
    return _make_db(tmp_path_factory.mktemp("mutations") / "standin.db")


@pytest.fixture(scope="module")
def url(writes_db: Path) -> Iterator[str]:
    with run_app_in_thread(lambda: create_app(writes_db, api_era="ai-gateway")) as base:
        yield base


@pytest.fixture(scope="module")
def sessions_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = _make_db(tmp_path_factory.mktemp("mutations-sessions") / "standin.db")
    with run_app_in_thread(lambda: create_app(path, api_era="sessions")) as base:
        yield base


@pytest.fixture(scope="module")
def tokens(writes_db: Path, url: str) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(writes_db)) as conn:
        return {user.username: user.token for user in read_tokens(conn)}


@pytest.fixture(scope="module")
def groups(writes_db: Path, url: str) -> dict[str, str]:
    """Group name → id, as the stand-in seeded them (its start creates them)."""
    with contextlib.closing(sqlite3.connect(writes_db)) as conn:
        return {str(name): str(gid) for gid, name in conn.execute("SELECT id, name FROM ai_groups")}


@pytest.fixture(scope="module")
def user_ids(writes_db: Path, url: str) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(writes_db)) as conn:
        return {str(name): str(uid) for uid, name in conn.execute("SELECT id, username FROM users")}


def _rest(base: str, method: str, path: str, token: str, body: Any = None) -> httpx.Response:
    headers = {"Coder-Session-Token": token}
    return httpx.request(method, base + "/api/v2" + path, json=body, headers=headers)


def _error(body: dict[str, Any]) -> dict[str, Any]:
    (error,) = body["errors"]
    assert isinstance(error, dict)
    return error


async def _group_limit(gw: Gateway, group_id: str, token: str | None = None) -> str | None:
    body = await gw.query(GROUP_SPEND, {"ids": [group_id]}, token=token)
    assert "errors" not in body, body
    (group,) = body["data"]["aiGroupSpend"]["groups"]
    limit = group["spendLimit"]
    return None if limit is None else str(limit["micros"])


async def test_a_group_budget_round_trips_through_aigroupspend(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    interns = groups["interns"]
    path = f"/api/v2/groups/{interns}/ai/budget"
    async with serve_gateway(url, tokens["admin"]) as gw:
        assert await _group_limit(gw, interns) is None
        gw.calls.clear()
        set_input = {"groupId": interns, "spendLimitMicros": "250000000", "clientMutationId": "a1"}
        data = await gw.data(SET_GROUP, {"input": set_input})
        assert gw.calls == [path]
        payload = data["setGroupAIBudget"]
        assert payload["clientMutationId"] == "a1"
        budget = payload["budget"]
        assert budget["groupId"] == interns
        assert budget["spendLimit"] == {
            "micros": "250000000",
            "amount": "250",
            "currency": "USD",
            "source": "CODER",
        }
        stored = _rest(url, "GET", f"/groups/{interns}/ai/budget", tokens["admin"]).json()
        assert when(budget["createdAt"]) == when(stored["created_at"])
        assert when(budget["updatedAt"]) == when(stored["updated_at"])
        assert await _group_limit(gw, interns) == "250000000"
        gw.calls.clear()
        cleared = await gw.data(CLEAR_GROUP, {"input": {"groupId": interns}})
        assert cleared["clearGroupAIBudget"] == {
            "clientMutationId": None,
            "groupId": interns,
            "cleared": True,
        }
        assert gw.calls == [path]
        assert await _group_limit(gw, interns) is None
        # Clearing again: Coder's 404 (no budget), its message kept.
        again = await gw.query(CLEAR_GROUP, {"input": {"groupId": interns}})
        assert again["data"] == {"clearGroupAIBudget": None}
        assert _error(again)["extensions"] == {"code": "NOT_FOUND"}
        assert _error(again)["message"] == NOT_FOUND
    assert _rest(url, "GET", f"/groups/{interns}/ai/budget", tokens["admin"]).status_code == 404


async def test_a_user_override_round_trips_through_aispend(
    url: str, tokens: dict[str, str], groups: dict[str, str], user_ids: dict[str, str]
) -> None:
    interns, farah = groups["interns"], user_ids["farah"]
    async with serve_gateway(url, tokens["ursula"]) as gw:  # a site user-admin writes overrides
        before = (await gw.data(USER_SPEND, {"user": "farah"}))["aiSpend"]
        assert (before["effectiveBudget"] or {}).get("source") != "USER_OVERRIDE"
        gw.calls.clear()
        set_input = {"user": "farah", "groupId": interns, "spendLimitMicros": 7_000_000}
        data = await gw.data(SET_OVERRIDE, {"input": set_input | {"clientMutationId": "o1"}})
        assert gw.calls == ["/api/v2/users/farah/ai/budget/override"]
        override = data["setUserAIBudgetOverride"]["override"]
        assert data["setUserAIBudgetOverride"]["clientMutationId"] == "o1"
        assert (override["userId"], override["groupId"]) == (farah, interns)
        assert override["spendLimit"] == {"micros": "7000000"}
        after = (await gw.data(USER_SPEND, {"user": "farah"}))["aiSpend"]
        assert after["effectiveBudget"] == {
            "spendLimit": {"micros": "7000000"},
            "source": "USER_OVERRIDE",
        }
        assert after["effectiveGroupId"] == interns
        # The user by id reaches the same override.
        cleared = await gw.data(CLEAR_OVERRIDE, {"input": {"user": farah}})
        assert cleared["clearUserAIBudgetOverride"] == {
            "clientMutationId": None,
            "user": farah,
            "cleared": True,
        }
        assert (await gw.data(USER_SPEND, {"user": "farah"}))["aiSpend"] == before


# Coder's authorization of the writes (docs/standin.md, "Budgets and spend"):
# TestGroupAIBudget and groupaibudget_test.go, TestUserAIBudgetOverrideRoleAccess.
GROUP_WRITERS = ("admin", "ursula", "chen", "olga")  # owner, user-admin, org admin, org user-admin
GROUP_REFUSED = ("auditor", "farah", "alice")  # auditor, a member of the group, a plain member
OVERRIDE_WRITERS = ("admin", "ursula")
OVERRIDE_REFUSED = ("chen", "olga", "auditor", "farah")


async def test_group_budget_writes_by_role_as_graphql_codes(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    interns = groups["interns"]
    set_vars = {"input": {"groupId": interns, "spendLimitMicros": 5_000_000}}
    clear_vars = {"input": {"groupId": interns}}
    async with serve_gateway(url) as gw:
        for who in GROUP_WRITERS:
            data = await gw.query(SET_GROUP, set_vars, token=tokens[who])
            assert "errors" not in data, (who, data)
            assert data["data"]["setGroupAIBudget"]["budget"]["spendLimit"]["micros"] == "5000000"
            cleared = await gw.query(CLEAR_GROUP, clear_vars, token=tokens[who])
            assert cleared["data"]["clearGroupAIBudget"]["cleared"] is True, who
        for who in GROUP_REFUSED:
            for query, variables in ((SET_GROUP, set_vars), (CLEAR_GROUP, clear_vars)):
                body = await gw.query(query, variables, token=tokens[who])
                assert list(body["data"].values()) == [None], (who, body)
                assert _error(body)["extensions"] == {"code": "NOT_FOUND"}, who
                assert _error(body)["message"] == NOT_FOUND
        anonymous = await gw.query(SET_GROUP, set_vars, anonymous=True)
        assert _error(anonymous)["extensions"]["code"] == "UNAUTHENTICATED"
    # Nothing the refused callers sent was stored.
    assert _rest(url, "GET", f"/groups/{interns}/ai/budget", tokens["admin"]).status_code == 404


async def test_override_writes_by_role_as_graphql_codes(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    platform = groups["platform"]  # alice is in it
    set_vars = {"input": {"user": "alice", "groupId": platform, "spendLimitMicros": 9}}
    clear_vars = {"input": {"user": "alice"}}
    async with serve_gateway(url) as gw:
        for who in OVERRIDE_WRITERS:
            body = await gw.query(SET_OVERRIDE, set_vars, token=tokens[who])
            assert "errors" not in body, (who, body)
            body = await gw.query(CLEAR_OVERRIDE, clear_vars, token=tokens[who])
            assert body["data"]["clearUserAIBudgetOverride"]["cleared"] is True, who
        for who in OVERRIDE_REFUSED:
            for query, variables in ((SET_OVERRIDE, set_vars), (CLEAR_OVERRIDE, clear_vars)):
                body = await gw.query(query, variables, token=tokens[who])
                assert _error(body)["extensions"] == {"code": "NOT_FOUND"}, (who, body)
                assert _error(body)["message"] == NOT_FOUND
        anonymous = await gw.query(SET_OVERRIDE, set_vars, anonymous=True)
        assert _error(anonymous)["extensions"]["code"] == "UNAUTHENTICATED"
        # A system user (Coder's prebuilds user) gets no override: Coder's 403 and message.
        system = {"input": {"user": "prebuilds", "groupId": platform, "spendLimitMicros": 1}}
        for who in OVERRIDE_WRITERS:
            body = await gw.query(SET_OVERRIDE, system, token=tokens[who])
            assert _error(body)["extensions"] == {"code": "FORBIDDEN"}
            assert _error(body)["message"] == "AI budget overrides cannot be set for system users."
    got = _rest(url, "GET", "/users/alice/ai/budget/override", tokens["admin"])
    assert got.status_code == 404


async def test_bad_input_is_refused_before_any_call(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    interns = groups["interns"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        (SET_GROUP, {"groupId": interns, "spendLimitMicros": -1}, "spendLimitMicros"),
        (SET_GROUP, {"groupId": interns, "spendLimitMicros": 10**18 + 1}, "spendLimitMicros"),
        (SET_GROUP, {"groupId": "not-a-uuid", "spendLimitMicros": 1}, "groupId"),
        (CLEAR_GROUP, {"groupId": "../../users/me"}, "groupId"),
        (SET_OVERRIDE, {"user": "farah", "groupId": "nope", "spendLimitMicros": 1}, "groupId"),
        (
            SET_OVERRIDE,
            {"user": "farah", "groupId": interns, "spendLimitMicros": -5},
            "spendLimitMicros",
        ),
        (SET_OVERRIDE, {"user": "", "groupId": interns, "spendLimitMicros": 1}, "user"),
        (CLEAR_OVERRIDE, {"user": "a\x00b"}, "user"),
    ]
    async with serve_gateway(url, tokens["admin"]) as gw:
        for query, given, field in cases:
            body = await gw.query(query, {"input": given})
            error = _error(body)
            assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, given
            assert f"`{field}`" in error["message"]
        # Not a number at all: GraphQL's own coercion error, still a clear 200 answer.
        body = await gw.query(SET_GROUP, {"input": {"groupId": interns, "spendLimitMicros": "x"}})
        assert _error(body)["extensions"]["code"] == "BAD_USER_INPUT"
        assert gw.calls == []


async def test_coders_refusals_keep_its_message_and_validations(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    async with serve_gateway(url, tokens["admin"]) as gw:
        unknown = await gw.query(
            SET_GROUP, {"input": {"groupId": UNKNOWN_GROUP, "spendLimitMicros": 1}}
        )
        assert _error(unknown)["extensions"] == {"code": "NOT_FOUND"}
        assert _error(unknown)["message"] == NOT_FOUND
        # TestUserAIBudgetOverride Upsert/RejectsNonMemberGroup: farah is not in data-science.
        stranger = {"user": "farah", "groupId": groups["data-science"], "spendLimitMicros": 1}
        body = await gw.query(SET_OVERRIDE, {"input": stranger})
        assert _error(body)["message"] == "User is not a member of the referenced group."
        assert _error(body)["extensions"] == {
            "code": "BAD_USER_INPUT",
            "validations": [{"field": "group_id", "detail": "user must be a member of this group"}],
        }
        # The nil UUID is a UUID to us; Coder's validation refuses it (`required`).
        nil = {"user": "farah", "groupId": "00000000-0000-0000-0000-000000000000"}
        body = await gw.query(SET_OVERRIDE, {"input": nil | {"spendLimitMicros": 1}})
        assert _error(body)["extensions"]["code"] == "BAD_USER_INPUT"
        assert _error(body)["extensions"]["validations"][0]["field"] == "group_id"
        nobody = await gw.query(CLEAR_OVERRIDE, {"input": {"user": "nobody-at-all"}})
        assert _error(nobody)["extensions"] == {"code": "NOT_FOUND"}
        assert len(gw.calls) == 4


async def test_two_writes_in_one_document_count_against_the_call_budget(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    interns = groups["interns"]
    document = (
        "mutation($id: ID!) { a: setGroupAIBudget(input: {groupId: $id, spendLimitMicros: 1}) "
        "{ clientMutationId } b: clearGroupAIBudget(input: {groupId: $id}) { cleared } }"
    )
    async with serve_gateway(url, tokens["admin"], upstream_call_budget=1) as gw:
        body = await gw.query(document, {"id": interns})
        assert _error(body)["extensions"]["code"] == "COST_ESTIMATED_TOO_EXPENSIVE"
        assert _error(body)["extensions"]["estimate"] == 2
        assert gw.calls == []
    async with serve_gateway(url, tokens["admin"], upstream_call_budget=2) as gw:
        # Mutation fields run one after the other, in document order: set, then clear.
        data = await gw.data(document, {"id": interns})
        assert data["b"] == {"cleared": True}
        assert len(gw.calls) == 2


async def test_the_sessions_era_is_unsupported_without_a_call(
    sessions_url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    interns = groups["interns"]
    cases = [
        (SET_GROUP, {"groupId": interns, "spendLimitMicros": 1}, "PUT", "groups/{group}/ai/budget"),
        (CLEAR_GROUP, {"groupId": interns}, "DELETE", "groups/{group}/ai/budget"),
        (
            SET_OVERRIDE,
            {"user": "farah", "groupId": interns, "spendLimitMicros": 1},
            "PUT",
            "users/{user}/ai/budget/override",
        ),
        (CLEAR_OVERRIDE, {"user": "farah"}, "DELETE", "users/{user}/ai/budget/override"),
    ]
    async with serve_gateway(sessions_url, tokens["admin"]) as gw:
        for query, given, method, route in cases:
            body = await gw.query(query, {"input": given})
            assert _error(body)["extensions"] == {
                "code": "UPSTREAM_UNSUPPORTED",
                "missing": f"{method} /api/v2/{route}",
            }
            assert "no AI budgets" in _error(body)["message"]
        assert gw.calls == []


CACHE = {
    "cache_enabled": True,
    "cache_secret": "mutations-cache-secret",
    "cache_ttl_spend": 600.0,
    "cache_timeout": 10.0,
}


async def test_a_cached_spend_read_is_fresh_right_after_a_write(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    interns = groups["interns"]
    async with serve_gateway(url, tokens["admin"], **CACHE) as gw:
        assert await _group_limit(gw, interns) is None
        assert await _group_limit(gw, interns) is None
        spend_before = await gw.data(USER_SPEND, {"user": "farah"})
        assert await gw.data(USER_SPEND, {"user": "farah"}) == spend_before
        assert len(gw.calls) == 2  # the repeats came from the cache
        await gw.data(SET_GROUP, {"input": {"groupId": interns, "spendLimitMicros": 3}})
        assert await _group_limit(gw, interns) == "3"
        override = {"user": "farah", "groupId": interns, "spendLimitMicros": 4}
        await gw.data(SET_OVERRIDE, {"input": override})
        spend = (await gw.data(USER_SPEND, {"user": "farah"}))["aiSpend"]
        assert spend["effectiveBudget"] == {
            "spendLimit": {"micros": "4"},
            "source": "USER_OVERRIDE",
        }
        await gw.data(CLEAR_OVERRIDE, {"input": {"user": "farah"}})
        await gw.data(CLEAR_GROUP, {"input": {"groupId": interns}})
        assert await _group_limit(gw, interns) is None
        assert await gw.data(USER_SPEND, {"user": "farah"}) == spend_before


async def test_a_write_on_one_replica_freshens_the_other_through_redis(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    interns = groups["interns"]
    with run_redis() as redis_server:
        settings = CACHE | {"cache_url": redis_server.url}
        async with (
            serve_gateway(url, tokens["admin"], **settings) as one,
            serve_gateway(url, tokens["admin"], **settings) as two,
        ):
            assert await _group_limit(two, interns) is None
            assert await _group_limit(one, interns) is None
            assert len(one.calls) == 0  # replica two's entry, shared
            await one.data(SET_GROUP, {"input": {"groupId": interns, "spendLimitMicros": 11}})
            assert await _group_limit(two, interns) == "11"
            await two.data(CLEAR_GROUP, {"input": {"groupId": interns}})
            assert await _group_limit(one, interns) is None


async def test_writes_go_over_the_production_pool_too(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    # serve_gateway injects an httpx transport; the default client sends through aiohttp.
    request = group_ai_budget_request(groups["interns"])
    creds = Credentials(tokens["admin"])
    async with UpstreamClient(Settings(upstream_url=url)) as client:
        body = {"spend_limit_micros": 12}
        stored = json.loads(await client.send_json("PUT", request, body, creds))
        assert stored["spend_limit_micros"] == 12
        assert await client.send_json("DELETE", request, None, creds) == b""


async def test_a_put_whose_connection_drops_is_retried(
    url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    interns = groups["interns"]
    given = {"input": {"groupId": interns, "spendLimitMicros": 21}}
    # Two drops: aiohttp itself resends an idempotent request once when a reused pooled
    # connection turns out closed (never a POST); the rest is the gateway's own retry.
    faults = WriteFaults(resets=2)
    with run_app_in_thread(lambda: write_fault_proxy(url, faults)) as hop:
        async with serve_gateway(hop, tokens["admin"], retries=0, retry_backoff=0) as gw:
            body = await gw.query(SET_GROUP, given)
            assert _error(body)["extensions"] == {"code": "UPSTREAM_UNAVAILABLE"}
        faults.resets, faults.seen = 2, []
        async with serve_gateway(hop, tokens["admin"], retries=2, retry_backoff=0) as gw:
            data = await gw.data(SET_GROUP, given)
            assert data["setGroupAIBudget"]["budget"]["spendLimit"]["micros"] == "21"
            assert faults.count("PUT") == 3  # two dropped, then the one answered
            await gw.data(CLEAR_GROUP, {"input": {"groupId": interns}})
    assert _rest(url, "GET", f"/groups/{interns}/ai/budget", tokens["admin"]).status_code == 404


async def test_a_post_held_past_the_deadline_is_sent_once_and_outcome_unknown(
    url: str, tokens: dict[str, str]
) -> None:
    # No mutation POSTs yet (gateway keys will): the production client on the real pool.
    faults = WriteFaults(hold_post=3.0)
    request = UpstreamRequest.make("/api/v2/ai-gateway/keys", root=True)
    with run_app_in_thread(lambda: write_fault_proxy(url, faults)) as hop:
        async with UpstreamClient(Settings(upstream_url=hop, retry_backoff=0)) as client:
            with pytest.raises(UpstreamOutcomeUnknown) as caught:
                await client.send_json(
                    "POST",
                    request,
                    {"name": "replica"},
                    Credentials(tokens["admin"]),
                    deadline=Deadline.after(1.0),
                )
            for _ in range(200):  # bounded: the POST was on its way when the deadline passed
                if faults.count("POST"):
                    break
                await asyncio.sleep(0.01)
        assert faults.count("POST") == 1
    assert describe(caught.value) == (OUTCOME_UNKNOWN_MESSAGE, {"code": "UPSTREAM_OUTCOME_UNKNOWN"})
