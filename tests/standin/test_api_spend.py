"""The AI Gateway era's spend and budget endpoints: shapes, figures, authorization, messages.

Figures are checked against the token usages priced independently here with the library's
own full calculation (pricing.price_usd), not the stand-in's fast path.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.openapi import document
from aibridge_graphql.standin.pricing import LIBRARY_PROVIDER, price_usd
from aibridge_graphql.standin.seed import seed_database
from aibridge_graphql.standin.spend_api import EXPORT_COLUMNS, escape_cell
from aibridge_graphql.standin.spend_data import ORG_NAME, prepare_spend, seeded_id
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import read_tokens
from tests.support.servers import run_app_in_thread

ADMIN = "AdminSpndT-0123456789abcdefghijkl"
NOT_FOUND = "Resource not found or you do not have access to this resource"
ORG = seeded_id("organization", ORG_NAME)
PLATFORM, SCIENCE = seeded_id("group", "platform"), seeded_id("group", "data-science")
CONTRACTORS, INTERNS = seeded_id("group", "contractors"), seeded_id("group", "interns")


def _seed(path: Path) -> Path:
    with contextlib.closing(open_database(path)) as conn:
        seed_database(conn, 400, 11, ADMIN)
        conn.commit()
    return path


@pytest.fixture(scope="module")
def spend_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = _seed(tmp_path_factory.mktemp("spend") / "spend.db")
    prepare_spend(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        # Spreadsheet formula starts in cells the export must escape.
        conn.execute("UPDATE ai_groups SET name = '=HYPERLINK(1)' WHERE id = ?", (PLATFORM,))
        first = conn.execute(
            "SELECT interception_id FROM token_usage_costs ORDER BY created_at DESC LIMIT 1"
        ).fetchone()[0]
        conn.execute("UPDATE interceptions SET model = '@SUM(1,2)' WHERE id = ?", (first,))
        conn.commit()
    return path


@pytest.fixture(scope="module")
def tokens(spend_db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(spend_db)) as conn:
        return {u.username: u.token for u in read_tokens(conn)}


@contextlib.contextmanager
def _serve(db: Path, **options: Any) -> Iterator[httpx.Client]:
    with (
        run_app_in_thread(lambda: create_app(db, **options)) as url,
        httpx.Client(base_url=url + "/api/v2", timeout=30) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def api(spend_db: Path) -> Iterator[httpx.Client]:
    with _serve(spend_db) as client:
        yield client


def _as(tokens: dict[str, str], username: str) -> dict[str, str]:
    return {"Coder-Session-Token": tokens[username]}


def _user_id(db: Path, username: str) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
        return str(row[0])


def _independent_spend(db: Path, user_id: str, group_id: str, since: int) -> int:
    """The user's spend in the group since `since`, every usage priced by the library."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT i.provider_name, i.model, t.input_tokens, t.output_tokens, "
            "t.cache_read_input_tokens, t.cache_write_input_tokens, t.created_at "
            "FROM token_usages AS t JOIN interceptions AS i ON i.id = t.interception_id "
            "JOIN token_usage_costs AS c ON c.token_usage_id = t.id "
            "WHERE i.initiator_id = ? AND c.effective_group_id = ? AND t.created_at >= ?",
            (user_id, group_id, since),
        ).fetchall()
    total = 0
    for provider_name, model, i, o, cr, cw, at in rows:
        provider = LIBRARY_PROVIDER[provider_name]
        usd = None
        if provider is not None:
            when = datetime.fromtimestamp(at / 1_000_000, UTC)
            usd = price_usd(
                provider, model, input_tokens=i, output_tokens=o, cache_read_tokens=cr,
                cache_write_tokens=cw, at=when,
            )  # fmt: skip
        micros = (usd or Decimal(0)) * 1_000_000
        total += int(micros.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return total


def test_user_spend_resolves_budgets_and_sums_priced_usage(
    api: httpx.Client, spend_db: Path, tokens: dict[str, str]
) -> None:
    alice = api.get("/users/me/ai/spend", headers=_as(tokens, "alice")).json()
    assert list(alice) == [
        "user_id", "effective_group_id", "effective_budget", "current_spend_micros",
        "period_start", "period_end",
    ]  # fmt: skip
    assert alice["user_id"] == _user_id(spend_db, "alice")
    assert alice["effective_group_id"] == PLATFORM
    assert alice["effective_budget"] == {"spend_limit_micros": 150_000_000, "limit_source": "group"}
    # The stand-in's clock is its latest usage (2026-11-20): the period is that UTC month.
    assert (alice["period_start"], alice["period_end"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    november = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) * 1_000_000
    expected = _independent_spend(spend_db, alice["user_id"], PLATFORM, november)
    assert alice["current_spend_micros"] == expected > 0
    dara = api.get("/users/dara/ai/spend", headers=_as(tokens, "admin")).json()
    assert dara["effective_budget"] == {
        "spend_limit_micros": 600_000_000,
        "limit_source": "user_override",
    }
    # emeka: data-science ($400) beats contractors ($25) under the "highest" policy.
    emeka = api.get("/users/emeka/ai/spend", headers=_as(tokens, "auditor")).json()
    assert emeka["effective_group_id"] == SCIENCE
    # admin is in no group: the Everyone group (id = organization id) and its $20 budget.
    admin = api.get("/users/me/ai/spend", headers=_as(tokens, "admin")).json()
    assert admin["effective_group_id"] == ORG
    assert admin["effective_budget"]["spend_limit_micros"] == 20_000_000


def test_members_read_only_their_own_spend(api: httpx.Client, tokens: dict[str, str]) -> None:
    other = api.get("/users/alice/ai/spend", headers=_as(tokens, "bogdan"))
    assert (other.status_code, other.json()) == (404, {"message": NOT_FOUND})
    assert api.get("/users/bogdan/ai/spend", headers=_as(tokens, "bogdan")).status_code == 200
    missing = api.get("/users/nobody/ai/spend", headers=_as(tokens, "admin"))
    assert missing.status_code == 404
    unauthenticated = api.get("/users/me/ai/spend")
    assert unauthenticated.status_code == 401
    for path in (f"/groups/{SCIENCE}/ai/budget", "/users/me/ai/budget/override"):
        assert api.get(path, headers=_as(tokens, "alice")).status_code == 404


def test_groups_spend_totals_and_visibility(
    api: httpx.Client, tokens: dict[str, str], spend_db: Path
) -> None:
    unknown = "11111111-2222-4333-8444-555555555555"
    ids = ",".join([SCIENCE, PLATFORM, INTERNS, unknown])
    path = f"/organizations/{ORG_NAME}/groups/ai/spend"
    body = api.get(path, params={"group_ids": ids}, headers=_as(tokens, "auditor")).json()
    groups = {g["group_id"]: g for g in body["groups"]}
    assert list(groups) == sorted([SCIENCE, PLATFORM, INTERNS])  # unknown: silently omitted
    # data-science: emeka at the group's $400, dara's $600 override replacing her share.
    assert groups[SCIENCE]["spend_limit_micros"] == 400_000_000
    assert groups[SCIENCE]["total_spend_limit_micros"] == 1_000_000_000
    assert groups[PLATFORM]["total_spend_limit_micros"] == 3 * 150_000_000
    assert groups[INTERNS] == {
        "group_id": INTERNS,
        "spend_limit_micros": None,
        "total_spend_limit_micros": None,
        "current_spend_micros": 0,
    }
    alice = api.get("/users/alice/ai/spend", headers=_as(tokens, "admin")).json()
    members = [
        api.get(f"/users/{u}/ai/spend", headers=_as(tokens, "admin")).json()
        for u in ("alice", "bogdan", "chen")
    ]
    assert groups[PLATFORM]["current_spend_micros"] == sum(
        m["current_spend_micros"] for m in members
    )
    assert alice["period_start"] == body["period_start"]
    # TestOrganizationGroupsAISpendRoleAccess: a plain member reads every group of the org.
    member = api.get(path, params={"group_ids": ids}, headers=_as(tokens, "alice")).json()
    assert member["groups"] == body["groups"]
    by_id = api.get(
        f"/organizations/{ORG}/groups/ai/spend", params={"group_ids": PLATFORM},
        headers=_as(tokens, "admin"),
    )  # fmt: skip
    assert [g["group_id"] for g in by_id.json()["groups"]] == [PLATFORM]


def test_groups_spend_validation(api: httpx.Client, tokens: dict[str, str]) -> None:
    path = f"/organizations/{ORG}/groups/ai/spend"
    admin = _as(tokens, "admin")
    many = ",".join(seeded_id("group", f"g{i}") for i in range(101))
    too_many = api.get(path, params={"group_ids": many}, headers=admin)
    assert too_many.status_code == 400
    assert too_many.json() == {"message": "group_ids has 101 entries, maximum is 100."}
    missing = api.get(path, headers=admin).json()
    assert missing["message"] == "Query parameters have invalid values."
    assert missing["validations"][0]["field"] == "group_ids"
    bad = api.get(path, params={"group_ids": "nope", "extra": "1"}, headers=admin).json()
    assert [v["field"] for v in bad["validations"]] == ["group_ids", "extra"]
    nowhere = api.get("/organizations/nowhere/groups/ai/spend", headers=admin)
    assert nowhere.status_code == 404


def test_budget_writes_as_coder_authorizes_and_validates(tmp_path: Path) -> None:
    db = _seed(tmp_path / "writes.db")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tokens = {u.username: u.token for u in read_tokens(conn)}
    with _serve(db) as api:
        path = f"/groups/{INTERNS}/ai/budget"
        assert api.get(path, headers=_as(tokens, "admin")).status_code == 404  # no budget yet
        for who in ("auditor", "alice"):
            refused = api.put(path, json={"spend_limit_micros": 5}, headers=_as(tokens, who))
            assert (refused.status_code, refused.json()) == (404, {"message": NOT_FOUND})
        created = api.put(path, json={"spend_limit_micros": 7_000_000}, headers=_as(tokens, "chen"))
        assert created.status_code == 200, created.text
        assert list(created.json()) == [
            "group_id",
            "spend_limit_micros",
            "created_at",
            "updated_at",
        ]
        assert (
            api.get(path, headers=_as(tokens, "auditor")).json()["spend_limit_micros"] == 7_000_000
        )
        negative = api.put(path, json={"spend_limit_micros": -1}, headers=_as(tokens, "admin"))
        assert negative.json() == {
            "message": "Validation failed.",
            "validations": [
                {
                    "field": "spend_limit_micros",
                    "detail": 'Validation failed for tag "gte" with value: "-1"',
                }
            ],
        }
        huge = api.put(path, json={"spend_limit_micros": 2**62}, headers=_as(tokens, "admin"))
        assert huge.json()["message"] == "Invalid AI spend limit."
        broken = api.put(path, content=b"{", headers=_as(tokens, "admin"))
        assert broken.json()["message"] == "Request body must be valid JSON."
        bad_id = api.get("/groups/xyz/ai/budget", headers=_as(tokens, "admin"))
        assert bad_id.json() == {
            "message": 'Invalid UUID "xyz".',
            "detail": "invalid UUID length: 3",
        }
        assert api.delete(path, headers=_as(tokens, "admin")).status_code == 204
        assert api.delete(path, headers=_as(tokens, "admin")).status_code == 404

        override = "/users/farah/ai/budget/override"
        stranger = api.put(
            override, json={"group_id": SCIENCE, "spend_limit_micros": 1},
            headers=_as(tokens, "admin"),
        )  # fmt: skip
        assert stranger.status_code == 400
        assert stranger.json() == {
            "message": "User is not a member of the referenced group.",
            "validations": [{"field": "group_id", "detail": "user must be a member of this group"}],
        }
        set_ = api.put(
            override, json={"group_id": INTERNS, "spend_limit_micros": 9_000_000},
            headers=_as(tokens, "admin"),
        )  # fmt: skip
        assert set_.status_code == 200
        spend = api.get("/users/farah/ai/spend", headers=_as(tokens, "farah")).json()
        assert spend["effective_group_id"] == INTERNS
        assert spend["effective_budget"]["limit_source"] == "user_override"
        # Past spend stays with the group it was recorded under, as in Coder.
        assert spend["current_spend_micros"] == 0
        assert api.delete(override, headers=_as(tokens, "auditor")).status_code == 404
        assert api.delete(override, headers=_as(tokens, "admin")).status_code == 204
        back = api.get("/users/farah/ai/spend", headers=_as(tokens, "farah")).json()
        assert back["effective_group_id"] == CONTRACTORS


def _export(api: httpx.Client, who: str, tokens: dict[str, str], **params: str) -> httpx.Response:
    return api.get(f"/organizations/{ORG}/ai/spend/export", params=params, headers=_as(tokens, who))


def test_export_csv_columns_escaping_and_sums(
    api: httpx.Client, tokens: dict[str, str], spend_db: Path
) -> None:
    response = _export(api, "chen", tokens)  # an organization admin
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="ai-spend-export-coder-2026-11-01-to-2026-12-01.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    records = [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows[1:]]
    assert {r["group_name"] for r in records} >= {"'=HYPERLINK(1)", "Everyone"}
    assert "'@SUM(1,2)" in {r["model"] for r in records}
    assert {(r["period_start"], r["period_end"]) for r in records} == {
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    }
    spend = api.get("/users/alice/ai/spend", headers=_as(tokens, "admin")).json()
    alice = [r for r in records if r["username"] == "alice"]
    assert sum(int(r["cost_micros"]) for r in alice) == spend["current_spend_micros"]
    again = _export(api, "admin", tokens)
    assert again.text == response.text  # deterministic
    for who, status in (("auditor", 403), ("alice", 403)):
        refused = _export(api, who, tokens)
        assert refused.status_code == status
        assert refused.json()["message"] == "Forbidden."


def test_export_period_messages(api: httpx.Client, tokens: dict[str, str]) -> None:
    cases = [
        ({"period_start": "2026-11-01T00:00:00Z"},
         'Query parameters "period_start" and "period_end" must be provided together.'),
        ({"period_start": "2026-10-25T00:00:00Z", "period_end": "2026-11-26T00:00:00Z"},
         "Query period must not exceed 31 days."),
        ({"period_start": "2026-11-10T00:00:00Z", "period_end": "2026-11-10T00:00:00Z"},
         'Query parameter "period_start" must be before "period_end".'),
        ({"period_start": "2026-08-01T00:00:00Z", "period_end": "2026-08-20T00:00:00Z"},
         'Query parameter "period_start" is older than the configured AI Gateway data '
         "retention window (1440h0m0s)."),
    ]  # fmt: skip
    for params, message in cases:
        response = _export(api, "admin", tokens, **params)
        assert (response.status_code, response.json()) == (400, {"message": message})
    bad = _export(api, "admin", tokens, period_start="yesterday", period_end="2026-11-10T00:00:00Z")
    assert bad.json()["validations"][0]["field"] == "period_start"
    window = _export(
        api, "admin", tokens, period_start="2026-11-10T00:00:00Z", period_end="2026-11-12T00:00:00Z"
    )
    rows = list(csv.reader(io.StringIO(window.text)))[1:]
    assert rows
    assert {(r[-2], r[-1]) for r in rows} == {("2026-11-10T00:00:00Z", "2026-11-12T00:00:00Z")}


def test_escape_cell() -> None:
    for text in ("=1", "+1", "-1", "@a", "\tx", "\rx"):
        assert escape_cell(text) == "'" + text
    assert [escape_cell(t) for t in ("", "a=b", "claude")] == ["", "a=b", "claude"]


def test_seeded_spend_is_deterministic(tmp_path: Path) -> None:
    dumps = []
    for name in ("a.db", "b.db"):
        db = _seed(tmp_path / name)
        prepare_spend(db)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            dumps.append(
                [
                    conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()  # noqa: S608
                    for table in (
                        "organizations",
                        "organization_members",
                        "ai_groups",
                        "group_members",
                        "group_ai_budgets",
                        "user_ai_budget_overrides",
                        "token_usage_costs",
                    )
                ]
            )
    assert dumps[0] == dumps[1]
    assert sum(row[4] for row in dumps[0][6]) > 0


def test_unlicensed_and_sessions_era(spend_db: Path) -> None:
    with _serve(spend_db, unlicensed=True) as api:
        response = api.get("/users/me/ai/spend")  # no token: refused before authentication
        assert (response.status_code, response.json()) == (
            403,
            {"message": "AI Gateway is a Premium feature. Contact sales!"},
        )
        assert api.put(f"/groups/{PLATFORM}/ai/budget").status_code == 403
    with _serve(spend_db, api_era="sessions") as api:
        assert api.get("/users/me/ai/spend").json() == {"message": "Route not found."}


def test_openapi_describes_the_spend_routes(api: httpx.Client, tokens: dict[str, str]) -> None:
    doc = document("ai-gateway")
    strict = copy.deepcopy(doc["components"]["schemas"])
    for schema in strict.values():
        if "properties" in schema:
            schema["additionalProperties"] = False
    admin = a = _as(tokens, "admin")
    samples = [
        ("/users/{user}/ai/spend", "get", api.get("/users/dara/ai/spend", headers=admin)),
        ("/users/{user}/ai/spend", "get", api.get("/users/alice/ai/spend", headers=admin)),
        ("/groups/{group}/ai/budget", "get", api.get(f"/groups/{SCIENCE}/ai/budget", headers=a)),
        (
            "/users/{user}/ai/budget/override",
            "get",
            api.get("/users/dara/ai/budget/override", headers=admin),
        ),
        (
            "/organizations/{organization}/groups/ai/spend",
            "get",
            api.get(
                f"/organizations/{ORG}/groups/ai/spend",
                params={"group_ids": f"{SCIENCE},{INTERNS}"}, headers=admin,
            ),
        ),
    ]  # fmt: skip
    problems = []
    for path, method, response in samples:
        assert response.status_code == 200, response.text
        ok = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]
        validator = OAS30Validator(
            {**ok["schema"], "components": {"schemas": strict}}, format_checker=oas30_format_checker
        )
        problems += [f"{path}: {e.message}" for e in validator.iter_errors(response.json())]
    assert problems == []
    assert (
        "text/csv"
        in doc["paths"]["/organizations/{organization}/ai/spend/export"]["get"]["responses"]["200"][
            "content"
        ]
    )
