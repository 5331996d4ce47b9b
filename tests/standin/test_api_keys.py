"""AI Gateway keys: the stand-in held to coder/coder's enterprise/coderd/aigatewaykeys_test.go
(TestAIGatewayKeys, TestAIGatewayKeyAudit); each test names the subtest it follows."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.keys_api import KEY_LENGTH, KEY_PREFIX_LENGTH, NAME_FORMAT_DETAIL
from aibridge_graphql.standin.spend_data import prepare_spend
from aibridge_graphql.standin.tokens import read_tokens
from tests.standin.test_api_budget_access import (
    AUDITOR,
    MEMBER,
    ORG_ADMIN,
    OWNER,
    USER_ADMIN,
    Api,
    _make_db,
)
from tests.support.servers import run_app_in_thread

KEYS = "/api/v2/ai-gateway/keys"
FORBIDDEN = {
    "message": "Forbidden.",
    "detail": "You don't have permission to view this content. If you believe this is a "
    "mistake, please contact your administrator or try signing in with different credentials.",
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return _make_db(tmp_path / "keys.db")


@pytest.fixture
def api(db: Path) -> Iterator[Api]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tokens = {u.username: u.token for u in read_tokens(conn)}
    with (
        run_app_in_thread(lambda: create_app(db)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield Api(client, tokens)


def _audit(db: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT * FROM audit_logs WHERE resource_type = 'ai_gateway_key' ORDER BY id"
        ).fetchall()
    return [dict(row) | {"diff": json.loads(row["diff"])} for row in rows]


def test_crud_and_the_secret_once(api: Api, db: Path) -> None:
    # CRUD, ListResponseDoesNotLeakSecrets
    assert api.call("GET", KEYS, OWNER).json() == []
    created = api.call("POST", KEYS, OWNER, {"name": "replica-one"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "name", "key", "key_prefix", "created_at"}
    assert body["name"] == "replica-one"
    assert len(body["key_prefix"]) == KEY_PREFIX_LENGTH
    assert len(body["key"]) == KEY_LENGTH
    assert body["key"].startswith(body["key_prefix"])
    listed = api.call("GET", KEYS, OWNER)
    assert listed.status_code == 200
    # Never used: `last_used_at` is omitted (omitempty), and the secret is nowhere.
    assert listed.json() == [{k: body[k] for k in ("id", "name", "key_prefix", "created_at")}]
    assert body["key"] not in listed.text
    # The legacy prefix serves the same routes.
    assert api.call("GET", "/api/v2/aibridge/keys", OWNER).json() == listed.json()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        stored = conn.execute("SELECT * FROM ai_gateway_keys").fetchone()
    assert body["key"] not in [str(v) for v in stored]
    assert stored[3] == hashlib.sha256(body["key"].encode()).digest()
    second = api.call("POST", KEYS, OWNER, {"name": "replica-two"}).json()
    assert [k["name"] for k in api.call("GET", KEYS, OWNER).json()] == [
        "replica-one",
        "replica-two",
    ]  # oldest first
    deleted = api.call("DELETE", f"{KEYS}/{body['id']}", OWNER)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert [k["id"] for k in api.call("GET", KEYS, OWNER).json()] == [second["id"]]


def test_create_validation(api: Api) -> None:
    # CreateValidation
    empty = api.call("POST", KEYS, OWNER, {"name": ""})
    assert (empty.status_code, empty.json()) == (
        400,
        {
            "message": "Validation failed.",
            "validations": [
                {"field": "name", "detail": 'Validation failed for tag "required" with value: ""'}
            ],
        },
    )
    invalid = {
        "message": "Invalid key name.",
        "validations": [{"field": "name", "detail": NAME_FORMAT_DETAIL}],
    }
    for name in ("a" * 65, "UPPER-CASE", "-edge", "double--hyphen", "sp ace"):
        refused = api.call("POST", KEYS, OWNER, {"name": name})
        assert (refused.status_code, refused.json()) == (400, invalid), name
    assert api.call("POST", KEYS, OWNER, {"name": "a" * 64}).status_code == 201
    assert api.call("POST", KEYS, OWNER, {"name": "dup"}).status_code == 201
    dup = api.call("POST", KEYS, OWNER, {"name": "dup"})
    assert (dup.status_code, dup.json()) == (
        400,
        {
            "message": "Key name must be unique.",
            "validations": [{"field": "name", "detail": "A key with this name already exists."}],
        },
    )
    wrong_type = api.call("POST", KEYS, OWNER, {"name": 7})
    assert wrong_type.status_code == 400
    assert wrong_type.json()["message"] == "Request body must be valid JSON."
    not_json = api.client.post(
        KEYS, content=b"{", headers={"Coder-Session-Token": api.tokens[OWNER]}
    )
    assert (not_json.status_code, not_json.json()["message"]) == (
        400,
        "Request body must be valid JSON.",
    )


def test_delete_validation(api: Api) -> None:
    # DeleteValidation
    bad = api.call("DELETE", f"{KEYS}/not-a-uuid", OWNER)
    assert (bad.status_code, bad.json()) == (
        400,
        {"message": "Invalid key ID.", "detail": "invalid UUID length: 10"},
    )
    missing = api.call("DELETE", f"{KEYS}/00000000-0000-4000-8000-000000000009", OWNER)
    assert missing.status_code == 404
    assert missing.json() == {
        "message": "Resource not found or you do not have access to this resource"
    }


def test_only_owners_manage_keys(api: Api) -> None:
    # ReturnsForbiddenForNonOwners (a member); the other roles hold no key permission either.
    made = api.call("POST", KEYS, OWNER, {"name": "kept"}).json()
    for who in (MEMBER, AUDITOR, USER_ADMIN, ORG_ADMIN):
        for method, path, body in (
            ("GET", KEYS, None),
            ("POST", KEYS, {"name": "denied"}),
            ("DELETE", f"{KEYS}/{made['id']}", None),
        ):
            refused = api.call(method, path, who, body)
            assert (refused.status_code, refused.json()) == (403, FORBIDDEN), (who, method)
    assert [k["id"] for k in api.call("GET", KEYS, OWNER).json()] == [made["id"]]
    assert api.call("GET", KEYS, None).status_code == 401
    assert api.call("POST", KEYS, None, {"name": "anon"}).status_code == 401


def test_create_and_delete_are_audited(api: Api, db: Path) -> None:
    # TestAIGatewayKeyAudit
    created = api.call("POST", KEYS, OWNER, {"name": "audit"}).json()
    api.call("DELETE", f"{KEYS}/{created['id']}", OWNER)
    api.call("POST", KEYS, MEMBER, {"name": "refused"})  # refused: no row
    rows = _audit(db)
    assert [(r["action"], r["status_code"]) for r in rows] == [("create", 201), ("delete", 204)]
    for row in rows:
        assert (row["resource_id"], row["resource_target"]) == (created["id"], "audit")
    assert rows[0]["diff"] == {
        "name": {"old": "", "new": "audit"},
        "secret_prefix": {"old": "", "new": created["key_prefix"]},
    }
    assert rows[1]["diff"]["name"] == {"old": "audit", "new": ""}
    assert created["key"] not in json.dumps(rows)


def test_licence_and_eras(db: Path, tmp_path: Path) -> None:
    # LicenseEntitlement: the premium 403 before authentication.
    with (
        run_app_in_thread(lambda: create_app(db, unlicensed=True)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        refused = client.get(KEYS)
        assert refused.status_code == 403
        assert "AI Gateway is a Premium feature" in refused.json()["message"]
    # The sessions era predates the keys: 404 as Coder of that time.
    with (
        run_app_in_thread(lambda: create_app(db, api_era="sessions")) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        for path in (KEYS, "/api/v2/aibridge/keys"):
            assert client.get(path).status_code == 404
            assert client.post(path, json={"name": "x"}).status_code == 404


def test_an_older_audit_table_is_widened(tmp_path: Path) -> None:
    path = _make_db(tmp_path / "old.db")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'audit_logs'").fetchone()
        narrow = str(sql[0]).replace("'create', ", "")
        conn.executescript(
            "INSERT INTO audit_logs (time, user_id, organization_id, action, resource_type, "
            "resource_id, resource_target, diff, status_code) "
            "VALUES (1, 'u', 'o', 'write', 'group_ai_budget', 'g', 'n', '{}', 200);"
            "ALTER TABLE audit_logs RENAME TO a;"
        )
        conn.execute(narrow)  # the table as it was before the `create` action
        conn.executescript("INSERT INTO audit_logs SELECT * FROM a; DROP TABLE a;")
    prepare_spend(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'audit_logs'").fetchone()
        kept = conn.execute("SELECT resource_type FROM audit_logs").fetchall()
    assert "'create'" in str(sql[0])
    assert kept == [("group_ai_budget",)]
