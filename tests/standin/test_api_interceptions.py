"""GET /api/v2/aibridge/interceptions against the seeded stand-in over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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
    walk_interceptions_by_cursor,
)

INTERCEPTION_KEYS = [
    "id",
    "api_key_id",
    "initiator",
    "provider",
    "provider_name",
    "model",
    "client",
    "metadata",
    "started_at",
    "ended_at",
    "token_usages",
    "user_prompts",
    "tool_usages",
]


@pytest.fixture(scope="module")
def admin(standin_url: str, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with api_client(standin_url, tokens["admin"]) as client:
        yield client


def _ordered_ids(db: Path, where: str = "1", *params: Any) -> list[str]:
    sql = (
        "SELECT id FROM interceptions WHERE ended_at IS NOT NULL AND "  # noqa: S608
        f"{where} ORDER BY started_at DESC, id DESC"
    )
    return [row[0] for row in db_rows(db, sql, *params)]


def _some(db: Path, column: str) -> str:
    sql = (
        f"SELECT {column} FROM interceptions WHERE ended_at IS NOT NULL "  # noqa: S608
        f"AND {column} IS NOT NULL GROUP BY {column} ORDER BY COUNT(*) DESC LIMIT 1"
    )
    return str(db_rows(db, sql)[0][0])


def test_shape_of_an_interception(admin: httpx.Client, standin_db: Path) -> None:
    body = get_json(admin, "/interceptions", limit=1000)
    item = body["results"][0]
    assert list(item) == INTERCEPTION_KEYS
    assert set(item["initiator"]) <= {"id", "username", "name", "avatar_url"}
    with_tools = next(i for i in body["results"] if i["tool_usages"])
    tool = with_tools["tool_usages"][0]
    assert list(tool) == [
        "id",
        "interception_id",
        "provider_response_id",
        "server_url",
        "tool",
        "input",
        "injected",
        "invocation_error",
        "metadata",
        "created_at",
    ]
    usage = with_tools["token_usages"][0]
    assert {"cache_read_input_tokens", "cache_write_input_tokens"} <= set(usage)
    for items in (
        with_tools["token_usages"],
        with_tools["user_prompts"],
        with_tools["tool_usages"],
    ):
        assert [_micros(i["created_at"]) for i in items] == sorted(
            _micros(i["created_at"]) for i in items
        )
    ((started, ended),) = db_rows(
        standin_db, "SELECT started_at, ended_at FROM interceptions WHERE id = ?", item["id"]
    )
    assert (_micros(item["started_at"]), _micros(item["ended_at"])) == (started, ended)


def _micros(text: str) -> int:
    """Microseconds since the epoch of an RFC 3339 UTC timestamp (independent of the server)."""
    assert text.endswith("Z")
    moment = datetime.fromisoformat(text)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_count_excludes_in_flight_and_ignores_pagination(
    admin: httpx.Client, standin_db: Path
) -> None:
    expected = _ordered_ids(standin_db)
    in_flight = {
        r[0] for r in db_rows(standin_db, "SELECT id FROM interceptions WHERE ended_at IS NULL")
    }
    assert in_flight, "the seed has in-flight interceptions"
    for params in ({}, {"limit": 3}, {"limit": 3, "offset": 10}, {"after_id": expected[5]}):
        assert get_json(admin, "/interceptions", **params)["count"] == len(expected)
    assert in_flight.isdisjoint(walk_interceptions_by_cursor(admin, 1000))


@pytest.mark.parametrize("limit", [7, 100, 1000])
def test_cursor_and_offset_walks_yield_every_row_once_in_order(
    admin: httpx.Client, standin_db: Path, limit: int
) -> None:
    expected = _ordered_ids(standin_db)
    assert walk_interceptions_by_cursor(admin, limit) == expected
    assert walk_by_offset(admin, "/interceptions", "results", limit) == expected


def test_filtered_walk_matches_the_filter(admin: httpx.Client, standin_db: Path) -> None:
    model = _some(standin_db, "model")
    expected = _ordered_ids(standin_db, "model = ?", model)
    assert walk_interceptions_by_cursor(admin, 13, f"model:{model}") == expected
    assert walk_by_offset(admin, "/interceptions", "results", 13, f"model:{model}") == expected
    assert get_json(admin, "/interceptions", q=f"model:{model}")["count"] == len(expected)


def test_default_limit_is_100_and_zero_means_default(admin: httpx.Client) -> None:
    assert len(get_json(admin, "/interceptions")["results"]) == 100
    assert len(get_json(admin, "/interceptions", limit=0)["results"]) == 100
    assert len(get_json(admin, "/interceptions", limit="")["results"]) == 100


def _count(client: httpx.Client, q: str) -> int:
    count: int = get_json(client, "/interceptions", q=q)["count"]
    return count


def test_every_filter_key(admin: httpx.Client, standin_db: Path, tokens: dict[str, str]) -> None:
    def expected(where: str, *params: Any) -> int:
        return len(_ordered_ids(standin_db, where, *params))

    for column in ("provider", "provider_name", "model"):
        value = _some(standin_db, column)
        assert _count(admin, f'{column}:"{value}"') == expected(f"{column} = ?", value) > 0
    client = _some(standin_db, "client")
    assert _count(admin, f'client:"{client}"') == expected("client = ?", client) > 0
    assert _count(admin, "client:Unknown") == expected("client IS NULL") > 0
    alice = db_rows(standin_db, "SELECT id FROM users WHERE username = 'alice'")[0][0]
    assert _count(admin, "initiator:alice") == expected("initiator_id = ?", alice) > 0
    assert _count(admin, "alice") == expected("initiator_id = ?", alice)  # bare term → initiator
    assert _count(admin, f"initiator:{alice.upper()}") == expected("initiator_id = ?", alice)
    assert _count(admin, f"initiator:{uuid.uuid4()}") == 0  # a UUID is not checked
    admin_id = db_rows(standin_db, "SELECT id FROM users WHERE username = 'admin'")[0][0]
    assert _count(admin, "initiator:me") == expected("initiator_id = ?", admin_id) > 0


def test_started_after_and_before_are_inclusive(admin: httpx.Client, standin_db: Path) -> None:
    items = get_json(admin, "/interceptions", limit=50)["results"]
    newest, older = items[0]["started_at"], items[40]["started_at"]
    window = get_json(
        admin,
        "/interceptions",
        limit=1000,
        q=f'started_after:"{older}" started_before:"{newest}"',
    )
    assert [i["id"] for i in window["results"]] == [i["id"] for i in items[:41]]
    assert window["count"] == 41


def test_unknown_top_level_params_are_ignored(admin: httpx.Client) -> None:
    assert get_json(admin, "/interceptions", bogus="x", limit=2)["results"]


def test_search_query_errors(admin: httpx.Client) -> None:
    body = error(admin, "/interceptions", 400, q="colour:red")
    assert body == {
        "message": "Invalid workspace search query.",
        "validations": [{"field": "colour", "detail": '"colour" is not a valid query param'}],
    }
    body = error(admin, "/interceptions", 400, q="initiator:nobody")
    assert body["validations"] == [
        {
            "field": "initiator",
            "detail": 'Query param "initiator" has invalid value: user "nobody" either does not '
            "exist, or you are unauthorized to view them",
        }
    ]
    body = error(admin, "/interceptions", 400, q="provider_name:nope")
    assert body["validations"] == [
        {
            "field": "provider_name",
            "detail": 'Query param "provider_name" has invalid value: provider not found or '
            "unauthorized",
        }
    ]


INVALID = "Query parameters have invalid values."
INT32 = 'Query param "{}" must be a valid 32-bit positive integer: '


@pytest.mark.parametrize(
    ("query", "validations"),
    [
        (
            "limit=-1",
            [
                (
                    "limit",
                    INT32.format("limit") + "value is negative",
                )
            ],
        ),
        (
            "limit=ten",
            [
                (
                    "limit",
                    'Query param "limit" must be a valid 32-bit positive integer: '
                    'strconv.ParseInt: parsing "ten": invalid syntax',
                )
            ],
        ),
        (
            "offset=2147483648",
            [
                (
                    "offset",
                    'Query param "offset" must be a valid 32-bit positive integer: '
                    'strconv.ParseInt: parsing "2147483648": value out of range',
                )
            ],
        ),
        ("after_id=nope", [("after_id", 'Query param "after_id" must be a valid uuid')]),
        (
            "limit=1&limit=2",
            [
                (
                    "limit",
                    'Query param "limit" provided more than once, found 2 times. Only provide 1 '
                    "instance of this query param.",
                )
            ],
        ),
        (
            "after_id=x&limit=y&offset=-3",
            [
                ("after_id", 'Query param "after_id" must be a valid uuid'),
                (
                    "limit",
                    'Query param "limit" must be a valid 32-bit positive integer: '
                    'strconv.ParseInt: parsing "y": invalid syntax',
                ),
                (
                    "offset",
                    INT32.format("offset") + "value is negative",
                ),
            ],
        ),
    ],
)
def test_pagination_parameter_errors(
    admin: httpx.Client, query: str, validations: list[tuple[str, str]]
) -> None:
    response = admin.get(f"/interceptions?{query}")
    assert response.status_code == 400
    assert response.json() == {
        "message": INVALID,
        "validations": [{"field": f, "detail": d} for f, d in validations],
    }


def test_empty_first_value_counts_as_absent(admin: httpx.Client) -> None:
    # Go's url.Values.Get reads the first value; Coder treats "" as absent before counting.
    response = admin.get("/interceptions?limit=&limit=5")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 100


def test_limit_range_and_cursor_conflicts(admin: httpx.Client) -> None:
    for limit in (1001, 2147483647):
        assert error(admin, "/interceptions", 400, limit=limit) == {
            "message": "Invalid pagination limit value.",
            "detail": "Pagination limit must be in range (0, 1000]",
        }
    some_id = get_json(admin, "/interceptions", limit=1)["results"][0]["id"]
    assert error(admin, "/interceptions", 400, after_id=some_id, offset=3) == {
        "message": INVALID,
        "detail": "Cannot use both after_id and offset pagination in the same request.",
    }
    missing = str(uuid.uuid4())
    assert error(admin, "/interceptions", 400, after_id=missing) == {
        "message": "Invalid pagination cursor.",
        "detail": f"after_id: interception {missing} not found: invalid pagination cursor",
    }


def test_nil_uuid_cursor_means_no_cursor(admin: httpx.Client) -> None:
    body = get_json(
        admin, "/interceptions", after_id="00000000-0000-0000-0000-000000000000", offset=2
    )
    assert len(body["results"]) == 100


def test_in_flight_interception_is_a_valid_cursor(admin: httpx.Client, standin_db: Path) -> None:
    (row,) = db_rows(
        standin_db,
        "SELECT id, started_at FROM interceptions WHERE ended_at IS NULL "
        "ORDER BY started_at LIMIT 1",
    )
    expected = _ordered_ids(standin_db, "(started_at, id) < (?, ?)", row[1], row[0])
    page = get_json(admin, "/interceptions", after_id=row[0], limit=1000)
    assert [i["id"] for i in page["results"]] == expected


def test_member_sees_nothing_and_auditor_everything(
    standin_url: str, tokens: dict[str, str], admin: httpx.Client
) -> None:
    everything = get_json(admin, "/interceptions", limit=5)
    with api_client(standin_url, tokens["auditor"]) as auditor:
        assert get_json(auditor, "/interceptions", limit=5) == everything
    with api_client(standin_url, tokens["alice"]) as member:
        assert get_json(member, "/interceptions", q="initiator:me") == {"count": 0, "results": []}
        assert get_json(member, "/interceptions") == {"count": 0, "results": []}
        cursor = everything["results"][0]["id"]
        assert error(member, "/interceptions", 400, after_id=cursor)["message"] == (
            "Invalid pagination cursor."
        )
