"""GET /api/v2/aibridge/sessions against the seeded stand-in over real HTTP."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.standin_api import (
    api_client,
    db_rows,
    error,
    get_json,
    walk_by_offset,
    walk_sessions_by_cursor,
)

SESSION_KEYS = [
    "id",
    "initiator",
    "providers",
    "models",
    "client",
    "metadata",
    "started_at",
    "ended_at",
    "threads",
    "token_usage_summary",
    "last_prompt",
    "last_active_at",
]


@pytest.fixture(scope="module")
def admin(standin_url: str, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with api_client(standin_url, tokens["admin"]) as client:
        yield client


def _activity(db: Path, where: str = "1", *params: Any) -> dict[tuple[str, str], int]:
    """last_active_at of each (session_id, initiator_id) over the matching ended interceptions."""
    rows = db_rows(
        db,
        "SELECT i.session_id, i.initiator_id, i.started_at, "  # noqa: S608
        "(SELECT MAX(created_at) FROM user_prompts WHERE interception_id = i.id) "
        f"FROM interceptions AS i WHERE ended_at IS NOT NULL AND {where}",
        *params,
    )
    groups: dict[tuple[str, str], list[tuple[int, int | None]]] = defaultdict(list)
    for session_id, initiator_id, started_at, prompt_at in rows:
        groups[(session_id, initiator_id)].append((started_at, prompt_at))
    return {
        key: max((p for _, p in members if p is not None), default=min(s for s, _ in members))
        for key, members in groups.items()
    }


def _oracle(db: Path, where: str = "1", *params: Any) -> list[str]:
    """Session ids in the API's order (last_active_at DESC, id DESC), computed in Python."""
    active = _activity(db, where, *params)
    ordered = sorted(active, key=lambda key: (active[key], key[0]), reverse=True)
    return [session_id for session_id, _ in ordered]


def test_shape_of_a_session(admin: httpx.Client) -> None:
    sessions = get_json(admin, "/sessions", limit=1000)["sessions"]
    with_prompt = next(s for s in sessions if "last_prompt" in s)
    assert list(with_prompt) == SESSION_KEYS
    assert set(with_prompt["token_usage_summary"]) == {
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_write_input_tokens",
    }
    assert any(s["client"] is None for s in sessions), "sessions without a client show null"
    assert all(s["providers"] == sorted(set(s["providers"])) for s in sessions)
    assert all(s["models"] == sorted(set(s["models"])) for s in sessions)


def test_count_and_order(admin: httpx.Client, standin_db: Path) -> None:
    expected = _oracle(standin_db)
    body = get_json(admin, "/sessions", limit=1000)
    assert body["count"] == len(expected)
    assert [s["id"] for s in body["sessions"]] == expected
    assert get_json(admin, "/sessions", limit=2, offset=7)["count"] == len(expected)


@pytest.mark.parametrize("limit", [1, 9, 100])
def test_cursor_and_offset_walks_yield_every_session_once_in_order(
    admin: httpx.Client, standin_db: Path, limit: int
) -> None:
    expected = _oracle(standin_db)
    assert walk_sessions_by_cursor(admin, limit) == expected
    assert walk_by_offset(admin, "/sessions", "sessions", limit) == expected


def test_filters_apply_before_grouping(admin: httpx.Client, standin_db: Path) -> None:
    (row,) = db_rows(
        standin_db,
        "SELECT session_id, initiator_id, MIN(model) FROM interceptions "
        "WHERE ended_at IS NOT NULL GROUP BY session_id, initiator_id "
        "HAVING COUNT(DISTINCT model) > 1 LIMIT 1",
    )
    session_id, _, model = row
    expected = _oracle(standin_db, "model = ?", model)
    assert walk_by_offset(admin, "/sessions", "sessions", 7, f'model:"{model}"') == expected
    body = get_json(admin, "/sessions", limit=1000, q=f'model:"{model}"')
    assert body["count"] == len(expected)
    (mixed,) = [s for s in body["sessions"] if s["id"] == session_id]
    # The lateral aggregates read every ended interception of the session, not just matches.
    assert len(mixed["models"]) > 1


def test_cursor_position_reads_the_whole_session(admin: httpx.Client, standin_db: Path) -> None:
    """Upstream quirk: with a filter, the after_session_id position still comes from *all* of
    the cursor session's ended interceptions, while the rows compare their filtered activity."""
    (row,) = db_rows(
        standin_db,
        "SELECT session_id, MIN(model) FROM interceptions WHERE ended_at IS NOT NULL "
        "GROUP BY session_id, initiator_id HAVING COUNT(DISTINCT model) > 1 LIMIT 1",
    )
    cursor, model = row
    overall = _activity(standin_db, "session_id = ?", cursor)
    (position,) = overall.values()
    filtered = _activity(standin_db, "model = ?", model)
    expected = sorted(
        (key for key, active in filtered.items() if (active, key[0]) < (position, cursor)),
        key=lambda key: (filtered[key], key[0]),
        reverse=True,
    )
    page = get_json(admin, "/sessions", limit=1000, q=f'model:"{model}"', after_session_id=cursor)
    assert [s["id"] for s in page["sessions"]] == [key[0] for key in expected]


def test_every_filter_key(admin: httpx.Client, standin_db: Path) -> None:
    def count(q: str) -> int:
        result: int = get_json(admin, "/sessions", q=q)["count"]
        return result

    some = db_rows(
        standin_db,
        "SELECT session_id, provider, provider_name, model, client FROM interceptions "
        "WHERE ended_at IS NOT NULL AND client IS NOT NULL AND client_session_id IS NOT NULL "
        "LIMIT 1",
    )[0]
    session_id, provider, provider_name, model, client = some
    assert (
        count(f'session_id:"{session_id}"')
        == len(_oracle(standin_db, "session_id = ?", session_id))
        == 1
    )
    for key, value in (("provider", provider), ("provider_name", provider_name), ("model", model)):
        assert count(f'{key}:"{value}"') == len(_oracle(standin_db, f"{key} = ?", value))
    assert count(f'client:"{client}"') == len(_oracle(standin_db, "client = ?", client))
    assert count("client:Unknown") == len(_oracle(standin_db, "client IS NULL")) > 0
    alice = db_rows(standin_db, "SELECT id FROM users WHERE username = 'alice'")[0][0]
    assert count("initiator:alice") == len(_oracle(standin_db, "initiator_id = ?", alice)) > 0
    (low, high) = (
        row[0]
        for row in db_rows(
            standin_db,
            "SELECT started_at FROM interceptions WHERE ended_at IS NOT NULL "
            "ORDER BY started_at LIMIT 2 OFFSET 200",
        )
    )
    window = f'started_after:"{_rfc3339(low)}" started_before:"{_rfc3339(high)}"'
    assert count(window) == len(_oracle(standin_db, "started_at BETWEEN ? AND ?", low, high)) > 0
    assert count(f'started_after:"{_rfc3339(low)}"') == len(
        _oracle(standin_db, "started_at >= ?", low)
    )


def _rfc3339(micros: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    return moment.isoformat().replace("+00:00", "Z")


def test_search_and_cursor_errors(admin: httpx.Client) -> None:
    assert error(admin, "/sessions", 400, q="alice") == {
        "message": "Invalid session search query.",
        "validations": [{"field": "q", "detail": "no search key specified"}],
    }
    some = get_json(admin, "/sessions", limit=1)["sessions"][0]["id"]
    assert error(admin, "/sessions", 400, after_session_id=some, offset=1) == {
        "message": "Query parameters have invalid values.",
        "detail": "Cannot use both after_session_id and offset pagination in the same request.",
    }
    assert error(admin, "/sessions", 400, after_session_id="no-such-session") == {
        "message": "Query parameter has invalid value.",
        "detail": 'after_session_id: session "no-such-session" not found',
    }
    assert (
        error(admin, "/sessions", 400, limit=1001)["message"] == "Invalid pagination limit value."
    )
    assert error(admin, "/sessions", 400, after_id="x")["validations"] == [
        {"field": "after_id", "detail": 'Query param "after_id" must be a valid uuid'}
    ]


def test_after_id_is_parsed_but_ignored(admin: httpx.Client) -> None:
    plain = get_json(admin, "/sessions", limit=5)
    assert get_json(admin, "/sessions", limit=5, after_id=str(uuid.uuid4()), offset=0) == plain


def test_member_sees_nothing(standin_url: str, tokens: dict[str, str], admin: httpx.Client) -> None:
    some = get_json(admin, "/sessions", limit=1)["sessions"][0]["id"]
    with api_client(standin_url, tokens["bogdan"]) as member:
        assert get_json(member, "/sessions") == {"count": 0, "sessions": []}
        assert error(member, "/sessions", 400, after_session_id=some)["detail"] == (
            f'after_session_id: session "{some}" not found'
        )
    with api_client(standin_url, tokens["auditor"]) as auditor:
        assert get_json(auditor, "/sessions", limit=3) == get_json(admin, "/sessions", limit=3)


def test_concurrent_requests_get_consistent_answers(admin: httpx.Client) -> None:
    paths = ["/sessions?limit=7", "/interceptions?limit=3", "/models", "/clients"] * 6
    expected = {path: admin.get(path).json() for path in set(paths)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda path: (path, admin.get(path)), paths))
    for path, response in answers:
        assert response.status_code == 200
        assert response.json() == expected[path]
