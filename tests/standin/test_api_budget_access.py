"""Budget writes, the group spend read, their audit rows and Coder's authorization matrix.

Each test names the coder/coder test (enterprise/coderd/aibridge_test.go, groupaibudget_test.go)
or pull request whose behaviour it holds the stand-in to; docs/standin.md lists them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.openapi import document
from aibridge_graphql.standin.records import UserRecord, insert_api_key, insert_users
from aibridge_graphql.standin.seed import ANCHOR, KEY_LIFETIME, seed_database
from aibridge_graphql.standin.spend_api import SYSTEM_USER_OVERRIDE
from aibridge_graphql.standin.spend_data import ORG_NAME, prepare_spend, seeded_id
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import derived_token, read_tokens
from tests.support.servers import run_app_in_thread

ADMIN = "AdminBdgtT-0123456789abcdefghijkl"
NOT_FOUND = {"message": "Resource not found or you do not have access to this resource"}
ORG = seeded_id("organization", ORG_NAME)
PLATFORM, SCIENCE = seeded_id("group", "platform"), seeded_id("group", "data-science")
INTERNS = seeded_id("group", "interns")
OTHER_ORG = seeded_id("organization", "elsewhere")
# Everyone with a token, by the row of Coder's matrix they stand for.
OWNER, USER_ADMIN, ORG_ADMIN, ORG_USER_ADMIN = "admin", "ursula", "chen", "olga"
AUDITOR, MEMBER, OUTSIDER = "auditor", "farah", "oscar"


def _make_db(path: Path) -> Path:
    with contextlib.closing(open_database(path)) as conn:
        seed_database(conn, 60, 5, ADMIN)
        conn.commit()
    prepare_spend(path)
    # TestOrganizationGroupsAISpendRoleAccess's OtherOrgMember: in another organization only.
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "INSERT INTO organizations VALUES (?, 'elsewhere', 'Elsewhere', 0)", (OTHER_ORG,)
        )
        conn.execute("INSERT INTO ai_groups VALUES (?, ?, 'Everyone', '')", (OTHER_ORG, OTHER_ORG))
        oscar = seeded_id("user", OUTSIDER)
        insert_users(conn, [UserRecord(oscar, OUTSIDER, "oscar@example.com", "", "", "member")])
        insert_api_key(conn, oscar, derived_token(OUTSIDER), ANCHOR + KEY_LIFETIME)
        conn.execute("INSERT INTO organization_members VALUES (?, ?, '', 0)", (OTHER_ORG, oscar))
        conn.commit()
    return path


class Api:
    """The stand-in's /api/v2 as one user or another."""

    def __init__(self, client: httpx.Client, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def call(self, method: str, path: str, who: str | None, body: Any = None) -> httpx.Response:
        headers = {} if who is None else {"Coder-Session-Token": self.tokens[who]}
        return self.client.request(method, path, json=body, headers=headers)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return _make_db(tmp_path / "budget.db")


@pytest.fixture
def api(db: Path) -> Iterator[Api]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tokens = {u.username: u.token for u in read_tokens(conn)}
    with (
        run_app_in_thread(lambda: create_app(db)) as url,
        httpx.Client(base_url=url + "/api/v2", timeout=30) as client,
    ):
        yield Api(client, tokens)


def _user_id(db: Path, username: str) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(
            conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()[0]
        )


def _audit(db: Path, resource_type: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT * FROM audit_logs WHERE resource_type = ? ORDER BY id", (resource_type,)
        ).fetchall()
    return [dict(row) | {"diff": json.loads(row["diff"])} for row in rows]


# --- the seed ------------------------------------------------------------------------------


def test_seed_holds_the_matrix_roles_deterministically(tmp_path: Path) -> None:
    seeded = []
    for name in ("a.db", "b.db"):
        path = _make_db(tmp_path / name)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            tokens = {t.username: (t.role, t.token) for t in read_tokens(conn)}
            roles = conn.execute(
                "SELECT u.username, r.role FROM user_site_roles AS r JOIN users AS u "
                "ON u.id = r.user_id"
            ).fetchall()
            system = conn.execute(
                "SELECT u.username FROM system_users AS s JOIN users AS u ON u.id = s.user_id"
            ).fetchall()
            org_roles = conn.execute(
                "SELECT u.username, m.roles FROM organization_members AS m JOIN users AS u "
                "ON u.id = m.user_id WHERE m.roles != '' ORDER BY u.username"
            ).fetchall()
        seeded.append((tokens, roles, system, org_roles))
    assert seeded[0] == seeded[1]
    tokens, roles, system, org_roles = seeded[0]
    assert roles == [("ursula", "user-admin")]
    assert tokens["ursula"] == ("user-admin", derived_token("ursula"))
    assert tokens["olga"][0] == "member"
    assert org_roles == [("chen", "organization-admin"), ("olga", "organization-user-admin")]
    # Coder's system users (the prebuilds user) do not sign in: no token to list.
    assert system == [("prebuilds",)]
    assert "prebuilds" not in tokens


# --- TestUserAIBudgetOverrideRoleAccess ------------------------------------------------------


def test_override_writes_need_site_scoped_user_update(api: Api) -> None:
    path = "/users/alice/ai/budget/override"
    body = {"group_id": PLATFORM, "spend_limit_micros": 500_000_000}
    for who in (OWNER, USER_ADMIN):  # CanWrite: the full lifecycle
        put = api.call("PUT", path, who, body)
        assert put.status_code == 200, (who, put.text)
        assert put.json()["group_id"] == PLATFORM
        assert api.call("GET", path, who).json()["spend_limit_micros"] == 500_000_000
        assert api.call("DELETE", path, who).status_code == 204
    for who in (ORG_ADMIN, ORG_USER_ADMIN, AUDITOR):  # read only
        refused = api.call("PUT", path, who, body)
        assert (refused.status_code, refused.json()) == (404, NOT_FOUND), who
        assert api.call("PUT", path, USER_ADMIN, body).status_code == 200
        got = api.call("GET", path, who)
        assert (got.status_code, got.json()["spend_limit_micros"]) == (200, 500_000_000), who
        deleted = api.call("DELETE", path, who)
        assert (deleted.status_code, deleted.json()) == (404, NOT_FOUND), who
        assert api.call("DELETE", path, USER_ADMIN).status_code == 204
    # A plain member reads no other user (TestUserAISpendStatusRoleAccess/MemberReadsOther).
    for method in ("GET", "PUT", "DELETE"):
        assert api.call(method, path, MEMBER, body).status_code == 404
    assert api.call("PUT", path, None, body).status_code == 401


def test_the_user_admin_and_org_user_admin_read_others_spend(api: Api) -> None:
    # TestUserAISpendStatusRoleAccess: every admin row reads a target's spend.
    for who in (OWNER, USER_ADMIN, ORG_ADMIN, ORG_USER_ADMIN):
        assert api.call("GET", "/users/alice/ai/spend", who).status_code == 200, who
    assert api.call("GET", "/users/alice/ai/spend", MEMBER).status_code == 404
    assert api.call("GET", "/users/farah/ai/spend", MEMBER).status_code == 200


# --- TestUserAIBudgetOverride ------------------------------------------------------------------


def test_override_validation_and_messages(api: Api, db: Path) -> None:
    path = "/users/farah/ai/budget/override"
    assert api.call("GET", path, OWNER).status_code == 404  # Get/AbsentReturns404
    assert api.call("DELETE", path, OWNER).status_code == 404  # Delete/AbsentReturns404
    unknown_user = "/users/00000000-0000-4000-8000-000000000001/ai/budget/override"
    assert api.call("GET", unknown_user, OWNER).status_code == 404  # Get/UnknownUserReturns404
    # Upsert/RejectsNonMemberGroup: farah is in contractors and interns, not data-science.
    stranger = api.call("PUT", path, OWNER, {"group_id": SCIENCE, "spend_limit_micros": 1})
    assert (stranger.status_code, stranger.json()) == (
        400,
        {
            "message": "User is not a member of the referenced group.",
            "validations": [{"field": "group_id", "detail": "user must be a member of this group"}],
        },
    )
    # Upsert/RejectsUnknownGroup: the group's visibility check comes first, a 404.
    unknown = {"group_id": "00000000-0000-4000-8000-000000000002", "spend_limit_micros": 1}
    assert api.call("PUT", path, OWNER, unknown).json() == NOT_FOUND
    negative = api.call("PUT", path, OWNER, {"group_id": INTERNS, "spend_limit_micros": -1})
    assert negative.status_code == 400  # Upsert/RejectsNegativeSpend
    assert negative.json()["validations"][0]["field"] == "spend_limit_micros"
    huge = api.call("PUT", path, OWNER, {"group_id": INTERNS, "spend_limit_micros": 2**62})
    assert (huge.status_code, huge.json()["message"]) == (400, "Invalid AI spend limit.")
    malformed = api.call("PUT", path, OWNER, {"group_id": "nope", "spend_limit_micros": 1})
    assert malformed.json()["message"] == "Request body must be valid JSON."
    # Upsert/AcceptsZeroSpendLimit, Upsert/EveryoneGroup (id = organization id).
    zero = api.call("PUT", path, OWNER, {"group_id": ORG, "spend_limit_micros": 0})
    assert (zero.status_code, zero.json()["group_id"], zero.json()["spend_limit_micros"]) == (
        200,
        ORG,
        0,
    )
    # Upsert/ReassignsGroup: the attributed group moves; GET shows it.
    moved = api.call("PUT", path, OWNER, {"group_id": INTERNS, "spend_limit_micros": 5})
    assert moved.json()["group_id"] == INTERNS
    assert api.call("GET", path, OWNER).json()["group_id"] == INTERNS
    assert moved.json()["user_id"] == _user_id(db, "farah")


def test_a_system_user_gets_no_override(api: Api, db: Path) -> None:
    # coder/coder#28699: overrides for system users are refused with a 403.
    path = "/users/prebuilds/ai/budget/override"
    body = {"group_id": ORG, "spend_limit_micros": 1_000_000}
    for who in (OWNER, USER_ADMIN):
        refused = api.call("PUT", path, who, body)
        assert (refused.status_code, refused.json()) == (403, {"message": SYSTEM_USER_OVERRIDE})
    assert api.call("GET", path, OWNER).status_code == 404  # none was stored
    assert api.call("PUT", path, MEMBER, body).status_code == 404  # unreadable user first
    assert _audit(db, "user_ai_budget_override") == []


def test_override_changes_are_audited_as_coder_records_them(api: Api, db: Path) -> None:
    path = "/users/emeka/ai/budget/override"
    org_admin_try = api.call("PUT", path, ORG_ADMIN, {"group_id": SCIENCE, "spend_limit_micros": 1})
    assert org_admin_try.status_code == 404
    assert api.call("DELETE", path, USER_ADMIN).status_code == 404  # DeleteAbsentEmitsNoEntry
    assert _audit(db, "user_ai_budget_override") == []  # refusals record nothing
    put = {"group_id": SCIENCE, "spend_limit_micros": 500_000_000}
    assert api.call("PUT", path, USER_ADMIN, put).status_code == 200
    put["spend_limit_micros"] = 1_000_000_000  # Audit/UpsertSpendLimit: the group stays
    assert api.call("PUT", path, USER_ADMIN, put).status_code == 200
    contractors = seeded_id("group", "contractors")  # Audit/UpsertEverything: both change
    moved = {"group_id": contractors, "spend_limit_micros": 2_000_000}
    assert api.call("PUT", path, USER_ADMIN, moved).status_code == 200
    assert api.call("DELETE", path, USER_ADMIN).status_code == 204
    rows = _audit(db, "user_ai_budget_override")
    emeka, ursula = _user_id(db, "emeka"), _user_id(db, "ursula")
    assert [(r["action"], r["resource_id"], r["resource_target"]) for r in rows] == [
        ("write", emeka, "emeka"),
        ("write", emeka, "emeka"),
        ("write", emeka, "emeka"),
        ("delete", emeka, "emeka"),
    ]
    assert {(r["user_id"], r["organization_id"]) for r in rows} == {(ursula, ORG)}
    assert [r["status_code"] for r in rows] == [200, 200, 200, 204]
    assert [r["diff"] for r in rows] == [
        {
            "group_id": {"old": "", "new": SCIENCE},
            "group_name": {"old": "", "new": "data-science"},
            "spend_limit": {"old": "$0.00", "new": "$500.00"},
        },
        {"spend_limit": {"old": "$500.00", "new": "$1000.00"}},
        {
            "group_id": {"old": SCIENCE, "new": contractors},
            "group_name": {"old": "data-science", "new": "contractors"},
            "spend_limit": {"old": "$1000.00", "new": "$2.00"},
        },
        {
            "group_id": {"old": contractors, "new": ""},
            "group_name": {"old": "contractors", "new": ""},
            "spend_limit": {"old": "$2.00", "new": ""},
        },
    ]


# --- TestGroupAIBudget -------------------------------------------------------------------------


def test_group_members_read_their_group_budget_but_do_not_write(api: Api) -> None:
    # GroupMemberCanReadButNotWrite: alice is in platform ($150 a member).
    path = f"/groups/{PLATFORM}/ai/budget"
    assert api.call("GET", path, "alice").json()["spend_limit_micros"] == 150_000_000
    for method in ("PUT", "DELETE"):
        refused = api.call(method, path, "alice", {"spend_limit_micros": 1_000_000_000})
        assert (refused.status_code, refused.json()) == (404, NOT_FOUND)
    assert api.call("GET", path, "alice").json()["spend_limit_micros"] == 150_000_000
    # groupaibudget_test.go MemberCannotManage: a member outside the group reads nothing.
    assert api.call("GET", path, MEMBER).json() == NOT_FOUND
    # The Everyone group (id = organization id) holds every member of the organization.
    assert api.call("GET", f"/groups/{ORG}/ai/budget", MEMBER).status_code == 200
    assert api.call("GET", f"/groups/{ORG}/ai/budget", OUTSIDER).status_code == 404


def test_group_budget_writes_by_role_validation_and_audit(api: Api, db: Path) -> None:
    path = f"/groups/{INTERNS}/ai/budget"
    assert api.call("GET", path, OWNER).status_code == 404  # GetWhenAbsent_404
    assert api.call("DELETE", path, OWNER).status_code == 404  # DeleteWhenAbsent_404
    for who in (AUDITOR, MEMBER, OUTSIDER):
        refused = api.call("PUT", path, who, {"spend_limit_micros": 5})
        assert (refused.status_code, refused.json()) == (404, NOT_FOUND), who
    assert _audit(db, "group_ai_budget") == []
    for who in (OWNER, USER_ADMIN, ORG_ADMIN, ORG_USER_ADMIN):
        put = api.call("PUT", path, who, {"spend_limit_micros": 500_000_000})
        assert (put.status_code, put.json()["spend_limit_micros"]) == (200, 500_000_000), who
        assert api.call("DELETE", path, who).status_code == 204, who
        assert api.call("GET", path, who).status_code == 404, who
    # AcceptsZeroSpendLimitToBlock, RejectsNegativeSpendLimit, the maximum, UnknownGroup_404.
    zero = api.call("PUT", path, OWNER, {"spend_limit_micros": 0})
    assert (zero.status_code, zero.json()["spend_limit_micros"]) == (200, 0)
    assert api.call("PUT", path, OWNER, {"spend_limit_micros": -1}).status_code == 400
    huge = api.call("PUT", path, OWNER, {"spend_limit_micros": 2**62})
    assert huge.json()["validations"][0]["field"] == "spend_limit_micros"
    unknown = "/groups/00000000-0000-4000-8000-000000000003/ai/budget"
    assert api.call("GET", unknown, OWNER).json() == NOT_FOUND
    assert api.call("PUT", "/groups/xyz/ai/budget", OWNER, {}).status_code == 400
    rows = _audit(db, "group_ai_budget")
    # Audit: a write then a delete per role, against the group, named by it, in its org.
    assert [r["action"] for r in rows] == ["write", "delete"] * 4 + ["write"]
    assert {(r["resource_id"], r["resource_target"], r["organization_id"]) for r in rows} == {
        (INTERNS, "interns", ORG)
    }
    assert [r["user_id"] for r in rows[:8:2]] == [
        _user_id(db, who) for who in (OWNER, USER_ADMIN, ORG_ADMIN, ORG_USER_ADMIN)
    ]
    assert rows[0]["diff"] == {"spend_limit": {"old": "$0.00", "new": "$500.00"}}
    assert rows[1]["diff"] == {"spend_limit": {"old": "$500.00", "new": ""}}
    assert rows[8]["diff"] == {}  # $0.00 to $0.00: nothing changed


# --- TestOrganizationGroupsAISpendRoleAccess, the group's spend --------------------------------


def test_every_organization_member_reads_its_groups_spend(api: Api) -> None:
    path = f"/organizations/{ORG}/groups/ai/spend?group_ids={PLATFORM}"
    for who in (OWNER, USER_ADMIN, ORG_ADMIN, ORG_USER_ADMIN, MEMBER):
        got = api.call("GET", path, who)
        assert [g["group_id"] for g in got.json()["groups"]] == [PLATFORM], who
    other = api.call("GET", path, OUTSIDER)
    assert (other.status_code, other.json()) == (404, NOT_FOUND)  # OtherOrgMember


def test_group_spend_is_the_groups_row_of_the_organization_read(api: Api) -> None:
    whole = api.call("GET", f"/organizations/{ORG}/groups/ai/spend?group_ids={SCIENCE}", OWNER)
    expected = {k: whole.json()[k] for k in ("period_start", "period_end")}
    expected |= whole.json()["groups"][0]
    got = api.call("GET", f"/groups/{SCIENCE}/ai/spend", "dara")  # a member of the group
    assert got.status_code == 200
    assert got.json() == expected
    assert list(got.json()) == [
        "period_start", "period_end", "group_id", "spend_limit_micros",
        "total_spend_limit_micros", "current_spend_micros",
    ]  # fmt: skip
    assert api.call("GET", f"/groups/{SCIENCE}/ai/spend", MEMBER).json() == NOT_FOUND
    assert api.call("GET", "/groups/nope/ai/spend", OWNER).status_code == 400


def test_system_users_count_toward_no_group_total(api: Api) -> None:
    # coder/coder#28698: prebuilds is in the Everyone group but not in its total.
    everyone = api.call("GET", f"/groups/{ORG}/ai/spend", OWNER).json()
    members = api.call("GET", f"/organizations/{ORG}/groups/ai/spend?group_ids={ORG}", OWNER)
    assert (
        members.json()["groups"][0]["total_spend_limit_micros"]
        == (everyone["total_spend_limit_micros"])
    )
    spend = api.call("GET", "/users/prebuilds/ai/spend", OWNER).json()
    assert spend["effective_group_id"] == ORG
    # Each human member whose effective group is Everyone adds its $20; prebuilds does not.
    humans = [
        name
        for name in api.tokens
        if name != OUTSIDER
        and api.call("GET", f"/users/{name}/ai/spend", OWNER).json()["effective_group_id"] == ORG
    ]
    assert everyone["total_spend_limit_micros"] == 20_000_000 * len(humans)


def test_the_sessions_era_serves_none_of_the_writes(db: Path) -> None:
    with (
        run_app_in_thread(lambda: create_app(db, api_era="sessions")) as url,
        httpx.Client(base_url=url + "/api/v2", timeout=30) as client,
    ):
        for method, path in (
            ("PUT", f"/groups/{PLATFORM}/ai/budget"),
            ("DELETE", f"/groups/{PLATFORM}/ai/budget"),
            ("PUT", "/users/alice/ai/budget/override"),
            ("DELETE", "/users/alice/ai/budget/override"),
            ("GET", f"/groups/{PLATFORM}/ai/spend"),
        ):
            response = client.request(method, path, json={})
            assert (response.status_code, response.json()) == (404, {"message": "Route not found."})


def test_the_openapi_document_describes_the_writes_and_the_group_spend(api: Api) -> None:
    doc = document("ai-gateway")
    strict = copy.deepcopy(doc["components"]["schemas"])
    for schema in strict.values():
        if "properties" in schema:
            schema["additionalProperties"] = False
    override = {"group_id": PLATFORM, "spend_limit_micros": 3}
    samples = [
        ("/groups/{group}/ai/spend", "get", api.call("GET", f"/groups/{SCIENCE}/ai/spend", OWNER)),
        (
            "/groups/{group}/ai/budget",
            "put",
            api.call("PUT", f"/groups/{INTERNS}/ai/budget", OWNER, {"spend_limit_micros": 1}),
        ),
        (
            "/users/{user}/ai/budget/override",
            "put",
            api.call("PUT", "/users/alice/ai/budget/override", OWNER, override),
        ),
    ]
    problems = []
    for path, method, response in samples:
        assert response.status_code == 200, response.text
        ok = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]
        validator = OAS30Validator(
            {**ok["schema"], "components": {"schemas": strict}}, format_checker=oas30_format_checker
        )
        problems += [f"{path}: {e.message}" for e in validator.iter_errors(response.json())]
    assert problems == []
    deletes = doc["paths"]["/groups/{group}/ai/budget"]["delete"]["responses"]
    assert "204" in deletes
    system = api.call("PUT", "/users/prebuilds/ai/budget/override", OWNER, override)
    put_responses = doc["paths"]["/users/{user}/ai/budget/override"]["put"]["responses"]
    assert str(system.status_code) in put_responses
