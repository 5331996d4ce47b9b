"""Coder's AI spend and budgets through the gateway, against the real stand-in in both eras:
`aiSpend` and `aiGroupSpend` equal the REST answers for the same token, members get what Coder
gives them, and the sessions era answers UPSTREAM_UNSUPPORTED without calling upstream.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.seed import seed_database
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import read_tokens
from tests.support.gateway_helpers import serve_gateway, when
from tests.support.servers import run_app_in_thread

ADMIN_TOKEN = "AdminSpend-0123456789abcdefghijkl"
ERAS = {"sessions": "/api/v2/aibridge", "ai-gateway": "/api/v2/ai-gateway"}

SPEND_FIELDS = """
  userId currentSpend { micros amount currency source }
  periodStart periodEnd effectiveGroupId percentUsed
  effectiveBudget { spendLimit { micros amount currency source } source limitSource }
  remaining { micros }
"""
GROUPS_QUERY = """
query($org: String!, $ids: [ID!]!) {
  aiGroupSpend(organization: $org, groupIds: $ids) {
    periodStart periodEnd
    groups { groupId spendLimit { micros } totalSpendLimit { micros }
             currentSpend { micros amount source } percentUsed }
  }
}
"""


@pytest.fixture(scope="module")
def spend_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spend") / "standin.db"
    with contextlib.closing(open_database(path)) as conn:
        seed_database(conn, 200, 13, ADMIN_TOKEN, awkward_session_ids=False)
        conn.commit()
    return path


@pytest.fixture(scope="module")
def gateway_era_url(spend_db: Path) -> Iterator[str]:
    """The ai-gateway era stand-in (its start prepares the spend tables and prices usages)."""
    with run_app_in_thread(lambda: create_app(spend_db, api_era="ai-gateway")) as url:
        yield url


@pytest.fixture(scope="module")
def sessions_era_url(spend_db: Path) -> Iterator[str]:
    with run_app_in_thread(lambda: create_app(spend_db, api_era="sessions")) as url:
        yield url


@pytest.fixture(scope="module")
def tokens(spend_db: Path, gateway_era_url: str) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(spend_db)) as conn:
        return {user.username: user.token for user in read_tokens(conn)}


@pytest.fixture(scope="module")
def groups(spend_db: Path, gateway_era_url: str) -> dict[str, str]:
    """Group name → id, as the stand-in seeded them (its start creates them)."""
    with contextlib.closing(sqlite3.connect(spend_db)) as conn:
        return {str(name): str(gid) for gid, name in conn.execute("SELECT id, name FROM ai_groups")}


def _rest(url: str, path: str, token: str, **params: str) -> httpx.Response:
    return httpx.get(url + path, params=params, headers={"Coder-Session-Token": token})


def _amount(micros: int | None) -> dict[str, Any] | None:
    if micros is None:
        return None
    return {
        "micros": str(micros),
        "amount": str(Decimal(micros) / Decimal(1_000_000)),
        "currency": "USD",
        "source": "CODER",
    }


def _expected_status(raw: dict[str, Any]) -> dict[str, Any]:
    """The GraphQL `AISpendStatus` for Coder's `UserAISpendStatus` JSON."""
    budget = raw["effective_budget"]
    spent = raw["current_spend_micros"]
    limit = None if budget is None else budget["spend_limit_micros"]
    return {
        "userId": raw["user_id"],
        "currentSpend": _amount(spent),
        "periodStart": when(raw["period_start"]),
        "periodEnd": when(raw["period_end"]),
        "effectiveGroupId": raw["effective_group_id"],
        "percentUsed": None if not limit else round(spent * 100 / limit, 2),
        "effectiveBudget": None
        if budget is None
        else {
            "spendLimit": _amount(limit),
            "source": budget["limit_source"].upper(),
            "limitSource": budget["limit_source"],
        },
        "remaining": None if limit is None else {"micros": str(max(0, limit - spent))},
    }


def _times(status: dict[str, Any]) -> dict[str, Any]:
    return status | {
        "periodStart": when(status["periodStart"]),
        "periodEnd": when(status["periodEnd"]),
    }


async def test_ai_spend_equals_coders_answer_for_each_role(
    gateway_era_url: str, tokens: dict[str, str]
) -> None:
    # admin (owner, the Everyone budget), dara (a user override), emeka (two groups), a member.
    for name in ("admin", "auditor", "dara", "emeka", "farah"):
        rest = _rest(gateway_era_url, "/api/v2/users/me/ai/spend", tokens[name])
        assert rest.status_code == 200, rest.text
        async with serve_gateway(gateway_era_url, tokens[name]) as gw:
            data = await gw.data(f"{{ aiSpend {{ {SPEND_FIELDS} }} }}")
            assert gw.calls == ["/api/v2/users/me/ai/spend"]
        assert _times(data["aiSpend"]) == _expected_status(rest.json()), name
    # The seed gives dara an override and prices her usage: the figures are not all empty.
    dara = _rest(gateway_era_url, "/api/v2/users/me/ai/spend", tokens["dara"]).json()
    assert dara["effective_budget"] == {
        "spend_limit_micros": 600_000_000,
        "limit_source": "user_override",
    }
    assert dara["current_spend_micros"] > 0


async def test_repeated_spend_fields_cost_one_call_and_user_ai_spend_reads_by_id(
    gateway_era_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(gateway_era_url, tokens["admin"]) as gw:
        first = await gw.data("{ sessions(first: 1) { nodes { initiator { id username } } } }")
        initiator = first["sessions"]["nodes"][0]["initiator"]
        gw.calls.clear()
        query = """query($id: String!) {
          a: aiSpend(user: $id) { currentSpend { micros } }
          b: aiSpend(user: $id) { currentSpend { micros } percentUsed }
          sessions(first: 1) { nodes { initiator { aiSpend { userId currentSpend { micros } } } } }
        }"""
        data = await gw.data(query, {"id": initiator["id"]})
        spend_calls = [call for call in gw.calls if "/ai/spend" in call]
        # The three ask for the same route and key: one call.
        assert spend_calls == [f"/api/v2/users/{initiator['id']}/ai/spend"]
    rest = _rest(
        gateway_era_url, f"/api/v2/users/{initiator['username']}/ai/spend", tokens["admin"]
    )
    micros = str(rest.json()["current_spend_micros"])
    assert data["a"]["currentSpend"]["micros"] == micros == data["b"]["currentSpend"]["micros"]
    via_user = data["sessions"]["nodes"][0]["initiator"]["aiSpend"]
    assert via_user == {"userId": initiator["id"], "currentSpend": {"micros": micros}}


async def test_a_member_reads_only_their_own_spend(
    gateway_era_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(gateway_era_url, tokens["farah"]) as gw:
        body = await gw.query(
            '{ mine: aiSpend { userId } other: aiSpend(user: "alice") { userId } }'
        )
    assert body["data"]["mine"] is not None
    assert body["data"]["other"] is None
    (error,) = body["errors"]
    assert error["path"] == ["other"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert (
        _rest(gateway_era_url, "/api/v2/users/alice/ai/spend", tokens["farah"]).status_code == 404
    )


async def test_group_spend_equals_coders_answer_for_every_role(
    gateway_era_url: str, tokens: dict[str, str], groups: dict[str, str]
) -> None:
    ids = [groups[name] for name in ("platform", "data-science", "contractors", "interns")]
    for name in ("admin", "auditor", "chen", "farah"):
        rest = _rest(
            gateway_era_url,
            "/api/v2/organizations/coder/groups/ai/spend",
            tokens[name],
            group_ids=",".join(sorted(ids)),
        )
        assert rest.status_code == 200, rest.text
        raw = rest.json()
        async with serve_gateway(gateway_era_url, tokens[name]) as gw:
            # The same ids twice and in another order: one call, the key sorted and deduplicated.
            query = GROUPS_QUERY.replace("aiGroupSpend(", "x: aiGroupSpend(").replace(
                "query($org: String!, $ids: [ID!]!) {",
                "query($org: String!, $ids: [ID!]!, $again: [ID!]!) {"
                " y: aiGroupSpend(organization: $org, groupIds: $again) { periodStart }",
            )
            data = await gw.data(query, {"org": "coder", "ids": ids, "again": ids[::-1] + ids})
            assert len(gw.calls) == 1
        expected = [
            {
                "groupId": group["group_id"],
                "spendLimit": None
                if group["spend_limit_micros"] is None
                else {"micros": str(group["spend_limit_micros"])},
                "totalSpendLimit": None
                if group["total_spend_limit_micros"] is None
                else {"micros": str(group["total_spend_limit_micros"])},
                "currentSpend": {
                    "micros": str(group["current_spend_micros"]),
                    "amount": str(Decimal(group["current_spend_micros"]) / Decimal(1_000_000)),
                    "source": "CODER",
                },
                "percentUsed": None
                if not group["total_spend_limit_micros"]
                else round(
                    group["current_spend_micros"] * 100 / group["total_spend_limit_micros"], 2
                ),
            }
            for group in raw["groups"]
        ]
        assert data["x"]["groups"] == expected, name
        assert when(data["x"]["periodStart"]) == when(raw["period_start"])
        # A plain member of the organization reads its groups too, as from Coder
        # (TestOrganizationGroupsAISpendRoleAccess).
        assert len(expected) == 4
        assert any(group["currentSpend"]["micros"] != "0" for group in expected)


async def test_bad_group_arguments_are_bad_user_input_without_a_call(
    gateway_era_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(gateway_era_url, tokens["admin"]) as gw:
        for org, ids in (
            ("coder", []),
            ("coder", ["not-a-uuid"]),
            ("", [str(n) for n in range(1)]),
        ):
            body = await gw.query(GROUPS_QUERY, {"org": org, "ids": ids})
            assert body["data"] == {"aiGroupSpend": None}
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        many = [f"00000000-0000-0000-0000-{n:012d}" for n in range(101)]
        body = await gw.query(GROUPS_QUERY, {"org": "coder", "ids": many})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert gw.calls == []


class _RawPaths(httpx.AsyncBaseTransport):
    """Records the encoded path of every request, as it goes on the wire."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.raw_path.decode())
        return await self.inner.handle_async_request(request)


async def test_a_path_value_cannot_leave_the_route(
    gateway_era_url: str, tokens: dict[str, str]
) -> None:
    # `/`, `?`, `..` and `#` are encoded into the one segment: Coder sees an unknown user.
    async with serve_gateway(gateway_era_url, tokens["admin"]) as gw:
        raw = _RawPaths(gw.transport._inner)
        gw.transport._inner = raw
        body = await gw.query('{ aiSpend(user: "../../organizations/coder?x=#") { userId } }')
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert raw.paths == ["/api/v2/users/..%2F..%2Forganizations%2Fcoder%3Fx%3D%23/ai/spend"]


@pytest.mark.parametrize("forced", [False, True])
async def test_sessions_era_is_unsupported_without_an_upstream_call(
    sessions_era_url: str, tokens: dict[str, str], groups: dict[str, str], forced: bool
) -> None:
    overrides: dict[str, Any] = {"api_base_path": ERAS["sessions"]} if forced else {}
    async with serve_gateway(sessions_era_url, tokens["admin"], **overrides) as gw:
        body = await gw.query(
            "query($ids: [ID!]!) { aiSpend { userId } "
            'aiGroupSpend(organization: "coder", groupIds: $ids) { periodStart } models }',
            {"ids": [groups["platform"]]},
        )
        assert body["data"]["aiSpend"] is None
        assert body["data"]["aiGroupSpend"] is None
        assert body["data"]["models"]  # siblings keep their data
        by_path = {error["path"][0]: error for error in body["errors"]}
        assert by_path["aiSpend"]["extensions"] == {
            "code": "UPSTREAM_UNSUPPORTED",
            "missing": "GET /api/v2/users/{user}/ai/spend",
        }
        assert by_path["aiGroupSpend"]["extensions"]["missing"] == (
            "GET /api/v2/organizations/{organization}/groups/ai/spend"
        )
        assert "AI spend" in by_path["aiSpend"]["message"]
        assert not [call for call in gw.calls if "/ai/" in call]
    # The stand-in's sessions era indeed has no such route.
    assert _rest(sessions_era_url, "/api/v2/users/me/ai/spend", tokens["admin"]).status_code == 404


async def test_spend_fields_count_one_call_each_in_the_estimate(
    gateway_era_url: str, tokens: dict[str, str]
) -> None:
    # 1 (sessions) + 3 sessions x 1 (each initiator's aiSpend) + 1 (aiSpend) = 5 > 4.
    query = (
        "{ aiSpend { userId } sessions(first: 3) { nodes { initiator { aiSpend { userId } } } } }"
    )
    async with serve_gateway(gateway_era_url, tokens["admin"], upstream_call_budget=4) as gw:
        body = await gw.query(query)
        assert body["errors"][0]["extensions"]["code"] == "COST_ESTIMATED_TOO_EXPENSIVE"
        assert body["errors"][0]["extensions"]["estimate"] == 5
        assert gw.calls == []
    async with serve_gateway(gateway_era_url, tokens["admin"], upstream_call_budget=5) as gw:
        assert (await gw.data(query))["aiSpend"]["userId"]
