"""GET /api/v2/aibridge/sessions/{session_id} against the seeded stand-in over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.standin_api import MAX_PAGES, api_client, db_rows, error, get_json

RESPONSE_KEYS = [
    "id",
    "initiator",
    "providers",
    "models",
    "client",
    "metadata",
    "page_started_at",
    "page_ended_at",
    "started_at",
    "ended_at",
    "token_usage_summary",
    "threads",
]
THREAD_KEYS = [
    "id",
    "prompt",
    "model",
    "provider",
    "credential_kind",
    "credential_hint",
    "started_at",
    "ended_at",
    "token_usage",
    "agentic_actions",
]
TOOL_CALL_KEYS = [
    "id",
    "interception_id",
    "provider_response_id",
    "server_url",
    "tool",
    "injected",
    "input",
    "metadata",
    "created_at",
]


@pytest.fixture(scope="module")
def admin(standin_url: str, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with api_client(standin_url, tokens["admin"]) as client:
        yield client


def _roots(db: Path, session_id: str) -> list[str]:
    rows = db_rows(
        db,
        "SELECT id FROM interceptions WHERE session_id = ? AND ended_at IS NOT NULL "
        "AND thread_root_id IS NULL ORDER BY started_at, id",
        session_id,
    )
    return [row[0] for row in rows]


@pytest.fixture(scope="module")
def busy_session(standin_db: Path) -> str:
    """A session with at least six threads and an agentic loop."""
    rows = db_rows(
        standin_db,
        "SELECT session_id FROM interceptions WHERE ended_at IS NOT NULL "
        "GROUP BY session_id HAVING SUM(thread_root_id IS NULL) >= 6 "
        "AND SUM(thread_root_id IS NOT NULL) > 0 ORDER BY session_id LIMIT 1",
    )
    return str(rows[0][0])


def _path(session_id: str) -> str:
    return f"/sessions/{session_id}"


def test_shape_and_thread_order(admin: httpx.Client, standin_db: Path, busy_session: str) -> None:
    body = get_json(admin, _path(busy_session))
    assert [k for k in RESPONSE_KEYS if k in body] == list(body)
    assert set(RESPONSE_KEYS) - set(body) <= {"client"}
    assert [t["id"] for t in body["threads"]] == _roots(standin_db, busy_session)
    for thread in body["threads"]:
        assert [k for k in THREAD_KEYS if k in thread] == list(thread)
        assert isinstance(thread["agentic_actions"], list)
    assert body["page_started_at"] == body["threads"][0]["started_at"]
    assert body["page_ended_at"] == max(t["ended_at"] for t in body["threads"])


def test_agentic_actions_and_token_sums(
    admin: httpx.Client, standin_db: Path, busy_session: str
) -> None:
    body = get_json(admin, _path(busy_session))
    for thread in body["threads"]:
        members = db_rows(
            standin_db,
            "SELECT id, model FROM interceptions WHERE ended_at IS NOT NULL AND session_id = ? "
            "AND COALESCE(thread_root_id, id) = ? ORDER BY started_at, id",
            busy_session,
            thread["id"],
        )
        with_tools = [
            (i, model)
            for i, model in members
            if db_rows(standin_db, "SELECT 1 FROM tool_usages WHERE interception_id = ?", i)
        ]
        actions = thread["agentic_actions"]
        assert [a["model"] for a in actions] == [model for _, model in with_tools]
        for action, (interception_id, _) in zip(actions, with_tools, strict=True):
            thoughts = db_rows(
                standin_db,
                "SELECT content FROM model_thoughts WHERE interception_id = ? ORDER BY created_at",
                interception_id,
            )
            assert [t["text"] for t in action["thinking"]] == [t[0] for t in thoughts]
            assert all(list(call) == TOOL_CALL_KEYS for call in action["tool_calls"])
            assert {c["interception_id"] for c in action["tool_calls"]} == {interception_id}
        ids = [i for i, _ in members]
        marks = ",".join("?" * len(ids))
        ((inputs, outputs),) = db_rows(
            standin_db,
            f"SELECT SUM(input_tokens), SUM(output_tokens) FROM token_usages "  # noqa: S608
            f"WHERE interception_id IN ({marks})",
            *ids,
        )
        assert thread["token_usage"]["input_tokens"] == (inputs or 0)
        assert thread["token_usage"]["output_tokens"] == (outputs or 0)


def test_summary_matches_the_sessions_list(admin: httpx.Client, busy_session: str) -> None:
    body = get_json(admin, _path(busy_session))
    listed = get_json(admin, "/sessions", q=f'session_id:"{busy_session}"')["sessions"][0]
    summary = dict(body["token_usage_summary"])
    assert isinstance(summary.pop("metadata"), dict)
    assert summary == listed["token_usage_summary"]
    for key in ("id", "initiator", "providers", "models", "metadata", "started_at", "ended_at"):
        assert body[key] == listed[key]


def _walk(client: httpx.Client, session_id: str, limit: int) -> list[str]:
    ids: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(MAX_PAGES):
        threads = get_json(client, _path(session_id), **params)["threads"]
        ids += [t["id"] for t in threads]
        if len(threads) < limit:
            return ids
        params["after_id"] = threads[-1]["id"]
    raise AssertionError("too many pages")


@pytest.mark.parametrize("limit", [1, 2, 5, 200])
def test_after_id_walk_yields_every_thread_once_in_order(
    admin: httpx.Client, standin_db: Path, busy_session: str, limit: int
) -> None:
    assert _walk(admin, busy_session, limit) == _roots(standin_db, busy_session)


def test_before_id_counts_from_the_session_start(
    admin: httpx.Client, standin_db: Path, busy_session: str
) -> None:
    roots = _roots(standin_db, busy_session)
    page = get_json(admin, _path(busy_session), before_id=roots[5], limit=2)
    # Coder's quirk: the first two threads of the session, not the two right before roots[5].
    assert [t["id"] for t in page["threads"]] == roots[:2]
    page = get_json(admin, _path(busy_session), before_id=roots[5], limit=50)
    assert [t["id"] for t in page["threads"]] == roots[:5]


def test_single_interception_session_is_its_own_id(admin: httpx.Client, standin_db: Path) -> None:
    (row,) = db_rows(
        standin_db,
        "SELECT id FROM interceptions WHERE client_session_id IS NULL AND ended_at IS NOT NULL "
        "ORDER BY id LIMIT 1",
    )
    body = get_json(admin, _path(row[0]))
    assert body["id"] == row[0]
    assert [t["id"] for t in body["threads"]] == [row[0]]


def test_parameter_errors(admin: httpx.Client, busy_session: str) -> None:
    path = _path(busy_session)
    assert error(admin, path, 400, after_id="abc") == {
        "message": "Invalid after_id query parameter.",
        "detail": "invalid UUID length: 3",
    }
    assert error(admin, path, 400, before_id="g" * 36) == {
        "message": "Invalid before_id query parameter.",
        "detail": "invalid UUID format",
    }
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    assert error(admin, path, 400, after_id=one, before_id=two) == {
        "message": "Cannot use both after_id and before_id in the same request."
    }
    for limit in ("0", "201", "-1", "ten", "99999999999"):
        assert error(admin, path, 400, limit=limit) == {
            "message": "Invalid limit query parameter.",
            "detail": "Limit must be between 1 and 200.",
        }
    assert get_json(admin, path, limit=200)["threads"]


def test_cursor_errors(admin: httpx.Client, standin_db: Path, busy_session: str) -> None:
    path = _path(busy_session)
    missing = str(uuid.uuid4())
    assert error(admin, path, 400, after_id=missing) == {
        "message": "Invalid pagination cursor.",
        "detail": f"after_id: interception {missing} not found: invalid pagination cursor",
    }
    (other,) = db_rows(
        standin_db, "SELECT id FROM interceptions WHERE session_id != ? LIMIT 1", busy_session
    )
    assert error(admin, path, 400, before_id=other[0]) == {
        "message": "Invalid pagination cursor.",
        "detail": f"before_id: interception {other[0]} does not belong to session "
        f"{busy_session}: invalid pagination cursor",
    }
    # Upper-case and braced UUIDs parse (google/uuid) and are reported canonically.
    roots = _roots(standin_db, busy_session)
    assert get_json(admin, path, after_id=roots[0].upper(), limit=1)["threads"][0]["id"] == roots[1]


def test_not_found_and_authorization(
    standin_url: str, tokens: dict[str, str], standin_db: Path, busy_session: str
) -> None:
    with api_client(standin_url, tokens["admin"]) as admin:
        assert error(admin, _path("no-such-session"), 404) == {"message": "Session not found."}
        in_flight_only = db_rows(
            standin_db,
            "SELECT session_id FROM interceptions GROUP BY session_id "
            "HAVING COUNT(ended_at) = 0 LIMIT 1",
        )
        assert in_flight_only, "the seed has a session with no ended interception"
        assert error(admin, _path(in_flight_only[0][0]), 404) == {"message": "Session not found."}
    with api_client(standin_url, tokens["chen"]) as member:
        assert error(member, _path(busy_session), 404) == {"message": "Session not found."}
    with api_client(standin_url, tokens["auditor"]) as auditor:
        assert get_json(auditor, _path(busy_session))["id"] == busy_session
