"""GET /api/v2/aibridge/models and /clients against the seeded stand-in over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.standin_api import api_client, db_rows, error, get_json


@pytest.fixture(scope="module")
def admin(standin_url: str, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with api_client(standin_url, tokens["admin"]) as client:
        yield client


def _models(db: Path) -> list[str]:
    rows = db_rows(
        db, "SELECT DISTINCT model FROM interceptions WHERE ended_at IS NOT NULL ORDER BY model"
    )
    return [row[0] for row in rows]


def _clients(db: Path) -> set[str]:
    rows = db_rows(
        db,
        "SELECT DISTINCT COALESCE(client, 'Unknown') FROM interceptions WHERE ended_at IS NOT NULL",
    )
    return {row[0] for row in rows}


def test_models_are_distinct_and_ordered(admin: httpx.Client, standin_db: Path) -> None:
    assert get_json(admin, "/models") == _models(standin_db)


def test_model_prefix_is_case_sensitive(admin: httpx.Client, standin_db: Path) -> None:
    claude = [m for m in _models(standin_db) if m.startswith("claude")]
    assert claude
    assert get_json(admin, "/models", q="claude") == claude  # a bare term is the model
    assert get_json(admin, "/models", q="model:claude") == claude
    assert get_json(admin, "/models", q="Claude") == []
    assert get_json(admin, "/models", q=f'model:"{claude[-1]}"') == [claude[-1]]


def test_models_paginate_by_offset(admin: httpx.Client, standin_db: Path) -> None:
    expected = _models(standin_db)
    pages = [get_json(admin, "/models", limit=4, offset=o) for o in range(0, len(expected), 4)]
    assert [m for page in pages for m in page] == expected
    assert get_json(admin, "/models", limit=4, offset=len(expected)) == []


def test_clients_include_unknown_and_match_by_prefix(admin: httpx.Client, standin_db: Path) -> None:
    clients = get_json(admin, "/clients")
    assert len(clients) == len(set(clients))
    assert set(clients) == _clients(standin_db)
    assert "Unknown" in clients
    assert get_json(admin, "/clients", q="Unk") == ["Unknown"]
    assert get_json(admin, "/clients", q="client:Unknown") == ["Unknown"]
    github = sorted(get_json(admin, "/clients", q='client:"GitHub Copilot"'))
    assert github == sorted(c for c in _clients(standin_db) if c.startswith("GitHub Copilot"))
    assert get_json(admin, "/clients", q="github") == []


def test_clients_paginate_by_offset(admin: httpx.Client, standin_db: Path) -> None:
    total = len(_clients(standin_db))
    pages = [get_json(admin, "/clients", limit=3, offset=o) for o in range(0, total, 3)]
    flat = [c for page in pages for c in page]
    assert sorted(flat) == sorted(_clients(standin_db))


def test_search_and_pagination_errors(admin: httpx.Client) -> None:
    assert error(admin, "/models", 400, q="provider:openai") == {
        "message": "Invalid AI Bridge models search query.",
        "validations": [{"field": "provider", "detail": '"provider" is not a valid query param'}],
    }
    assert error(admin, "/clients", 400, q="model:x") == {
        "message": "Invalid AI Bridge clients search query.",
        "validations": [{"field": "model", "detail": '"model" is not a valid query param'}],
    }
    for path in ("/models", "/clients"):
        assert error(admin, path, 400, limit=1001) == {
            "message": "Invalid pagination limit value.",
            "detail": "Pagination limit must be in range (0, 1000]",
        }
        assert error(admin, path, 400, offset=-1)["message"] == (
            "Query parameters have invalid values."
        )


def test_member_sees_no_models_or_clients(
    standin_url: str, tokens: dict[str, str], admin: httpx.Client
) -> None:
    with api_client(standin_url, tokens["dara"]) as member:
        assert get_json(member, "/models") == []
        assert get_json(member, "/clients") == []
    with api_client(standin_url, tokens["auditor"]) as auditor:
        assert get_json(auditor, "/models") == get_json(admin, "/models")
