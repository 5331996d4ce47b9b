"""Importing REST-shaped interceptions: all records load, or none do with a precise error each."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from aibridge_graphql.standin.ingest import (
    IMPORTED_EMAIL_DOMAIN,
    ImportFailed,
    RecordError,
    import_interceptions,
    parse_document,
)
from aibridge_graphql.standin.store import open_database

USER = {
    "id": "7d0c9f43-65c9-4a55-9e1f-3a1a6f0f6a11",
    "username": "mia",
    "name": "Mia",
    "avatar_url": "",
}
ID_1 = "11111111-1111-4111-8111-111111111111"
ID_2 = "22222222-2222-4222-8222-222222222222"


def interception(iid: str, **changes: Any) -> dict[str, Any]:
    """An interception as `GET /api/v2/aibridge/interceptions` returns it."""
    item: dict[str, Any] = {
        "id": iid,
        "api_key_id": "AbCdEfGhIj",
        "initiator": dict(USER),
        "provider": "openai",
        "provider_name": "azure",
        "model": "gpt-4.1",
        "client": "Codex",
        "metadata": {"stream": True},
        "started_at": "2026-01-02T03:04:05.123456Z",
        "ended_at": "2026-01-02T04:04:09.5+01:00",
        "token_usages": [
            {
                "id": "33333333-3333-4333-8333-333333333333" if iid == ID_1 else iid[:-1] + "3",
                "interception_id": iid,
                "provider_response_id": "resp_1",
                "input_tokens": 1200,
                "output_tokens": 80,
                "cache_read_input_tokens": 100,
                "cache_write_input_tokens": 0,
                "metadata": {"prompt_cached": 100},
                "created_at": "2026-01-02T03:04:06Z",
            }
        ],
        "user_prompts": [
            {
                "id": iid[:-1] + "4",
                "interception_id": iid,
                "provider_response_id": "resp_1",
                "prompt": "Fix the build",
                "metadata": {},
                "created_at": "2026-01-02T03:04:05.123456Z",
            }
        ],
        "tool_usages": [
            {
                "id": iid[:-1] + "5",
                "interception_id": iid,
                "provider_response_id": "resp_1",
                "server_url": "",
                "tool": "shell",
                "input": '{"command": "make"}',
                "injected": False,
                "invocation_error": "",
                "metadata": {},
                "created_at": "2026-01-02T03:04:07Z",
            }
        ],
    }
    item.update(changes)
    return item


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return open_database(tmp_path / "import.db")


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = (
        "users",
        "ai_providers",
        "interceptions",
        "token_usages",
        "user_prompts",
        "tool_usages",
    )
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608


def failure(conn: sqlite3.Connection, items: list[Any]) -> list[RecordError]:
    before = table_counts(conn)
    with pytest.raises(ImportFailed) as caught:
        import_interceptions(conn, items)
    assert table_counts(conn) == before  # nothing half-loaded
    return caught.value.errors


def test_loads_a_response_document(conn: sqlite3.Connection) -> None:
    document = json.dumps({"count": 2, "results": [interception(ID_1), interception(ID_2)]})
    result = import_interceptions(conn, parse_document(document))
    assert result.interceptions == 2
    assert result.new_users == ["mia"]
    assert table_counts(conn) == {
        "users": 1,
        "ai_providers": 1,
        "interceptions": 2,
        "token_usages": 2,
        "user_prompts": 2,
        "tool_usages": 2,
    }
    user = conn.execute("SELECT username, email, role FROM users").fetchone()
    assert user == ("mia", f"mia@{IMPORTED_EMAIL_DOMAIN}", "member")
    assert conn.execute("SELECT * FROM ai_providers").fetchall() == [("azure", "openai", "", "")]
    row = conn.execute(
        """SELECT session_id, thread_root_id, thread_parent_id, started_at, ended_at, metadata
           FROM interceptions WHERE id = ?""",
        (ID_1,),
    ).fetchone()
    # Its own session and thread root; times in microseconds UTC (offsets converted).
    assert row == (ID_1, None, None, 1767323045123456, 1767323049500000, '{"stream":true}')
    tool = conn.execute("SELECT server_url, invocation_error, injected FROM tool_usages").fetchone()
    assert tool == (None, None, 0)  # "" on the wire is NULL in the database


def test_loads_a_bare_array_and_reuses_known_users(conn: sqlite3.Connection) -> None:
    import_interceptions(conn, parse_document(json.dumps([interception(ID_1)])))
    result = import_interceptions(conn, parse_document(json.dumps([interception(ID_2)])))
    assert result.new_users == []
    assert table_counts(conn)["interceptions"] == 2


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"id": "not-a-uuid"}, "id", "UUID"),
        ({"started_at": 1767323045}, "started_at", "datetime"),
        ({"started_at": "2026-01-02T03:04:05"}, "started_at", "timezone"),
        ({"model": None}, "model", "string"),
        ({"initiator": {"username": "mia"}}, "initiator.id", "Field required"),
        ({"ended_at": "2026-01-01T00:00:00Z"}, "ended_at", "before started_at"),
    ],
)
def test_each_bad_record_is_named(
    conn: sqlite3.Connection, change: dict[str, Any], field: str, reason: str
) -> None:
    (error,) = failure(conn, [interception(ID_1), interception(ID_2, **change)])
    assert (error.index, error.field) == (1, field)
    assert reason in error.reason
    assert error.record_id == change.get("id", ID_2)
    assert str(error).startswith(f"record 1 (id {error.record_id}): {field}: ")


def test_child_errors_name_the_nested_field(conn: sqlite3.Connection) -> None:
    bad = interception(ID_1)
    bad["token_usages"][0]["input_tokens"] = "1200"
    bad["tool_usages"][0]["interception_id"] = ID_2
    other = copy.deepcopy(interception(ID_2))
    other["user_prompts"][0]["created_at"] = "yesterday"
    errors = failure(conn, [bad, other])
    fields = [(e.index, e.field) for e in errors]
    assert fields == [
        (0, "token_usages.0.input_tokens"),
        (1, "user_prompts.0.created_at"),
    ]
    # The interception_id mismatch is checked once the types are right.
    bad["token_usages"][0]["input_tokens"] = 1200
    (mismatch,) = failure(conn, [bad])
    assert mismatch.field == "tool_usages.0.interception_id"


def test_duplicates_and_existing_ids_are_refused(conn: sqlite3.Connection) -> None:
    errors = failure(conn, [interception(ID_1), interception(ID_1)])
    assert [(e.index, e.field) for e in errors] == [(1, "id")]
    import_interceptions(conn, [interception(ID_1)])
    (error,) = failure(conn, [interception(ID_2), interception(ID_1)])
    assert (error.index, error.field) == (1, "id")
    assert "already exists" in error.reason


def test_conflicting_initiators_are_refused(conn: sqlite3.Connection) -> None:
    renamed = interception(ID_2, initiator={**USER, "username": "mia2"})
    (error,) = failure(conn, [interception(ID_1), renamed])
    assert error.field == "initiator.username"
    assert "'mia'" in error.reason
    impostor = interception(ID_2, initiator={**USER, "id": "9d0c9f43-65c9-4a55-9e1f-3a1a6f0f6a11"})
    (error,) = failure(conn, [interception(ID_1), impostor])
    assert error.field == "initiator.id"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"count": 0}', "expected an interceptions response"),
        ('"hello"', "expected an interceptions response"),
    ],
)
def test_bad_documents(text: str, message: str) -> None:
    with pytest.raises(ImportFailed, match=message):
        parse_document(text)


def test_a_non_object_record(conn: sqlite3.Connection) -> None:
    (error,) = failure(conn, [interception(ID_1), 42])
    assert (error.index, error.record_id) == (1, None)


def test_a_database_failure_mid_load_rolls_everything_back(conn: sqlite3.Connection) -> None:
    # The tool usages are written last: failing there proves the earlier inserts are undone.
    conn.execute(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON tool_usages "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    with pytest.raises(ImportFailed, match=r"the database refused the import.*disk full"):
        import_interceptions(conn, [interception(ID_1)])
    assert set(table_counts(conn).values()) == {0}
