"""Helpers of the stand-in API tests: an HTTP client, page walkers, and hand-built databases."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.eras import ApiEra
from aibridge_graphql.standin.records import InterceptionRecord, UserRecord
from aibridge_graphql.standin.records import insert_api_key as _insert_api_key
from aibridge_graphql.standin.records import insert_interceptions as _insert_interceptions
from aibridge_graphql.standin.records import insert_providers as _insert_providers
from aibridge_graphql.standin.records import insert_users as _insert_users
from aibridge_graphql.standin.store import open_database
from tests.support.servers import run_app_in_thread

API = "/api/v2/aibridge"
# Bounds every page walk: far more pages than any test database holds.
MAX_PAGES = 2000


def api_client(base_url: str, token: str | None = None) -> httpx.Client:
    """A client of the stand-in's API, authenticated with the header when a token is given."""
    headers = {"Coder-Session-Token": token} if token else {}
    return httpx.Client(base_url=base_url + API, headers=headers, timeout=30)


def get_json(client: httpx.Client, path: str, **params: Any) -> Any:
    """GET that must succeed; the decoded body."""
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def error(client: httpx.Client, path: str, status: int, **params: Any) -> dict[str, Any]:
    """GET that must fail with `status`; the decoded Coder error body."""
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def walk_interceptions_by_cursor(client: httpx.Client, limit: int, q: str = "") -> list[str]:
    """Every interception id, following `after_id` page by page."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": limit, "q": q}
    for _ in range(MAX_PAGES):
        page = get_json(client, "/interceptions", **params)["results"]
        ids += [item["id"] for item in page]
        if len(page) < limit:
            return ids
        params["after_id"] = page[-1]["id"]
    raise AssertionError("too many pages")


def walk_by_offset(client: httpx.Client, path: str, key: str, limit: int, q: str = "") -> list[str]:
    """Every item id of a list endpoint, page by page with `offset`."""
    ids: list[str] = []
    for number in range(MAX_PAGES):
        page = get_json(client, path, limit=limit, offset=number * limit, q=q)[key]
        ids += [item["id"] for item in page]
        if len(page) < limit:
            return ids
    raise AssertionError("too many pages")


def walk_sessions_by_cursor(client: httpx.Client, limit: int, q: str = "") -> list[str]:
    """Every session id, following `after_session_id` page by page."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": limit, "q": q}
    for _ in range(MAX_PAGES):
        page = get_json(client, "/sessions", **params)["sessions"]
        ids += [item["id"] for item in page]
        if len(page) < limit:
            return ids
        params["after_session_id"] = page[-1]["id"]
    raise AssertionError("too many pages")


def build_database(
    path: Path,
    users: Iterable[tuple[UserRecord, str]],
    interceptions: Iterable[InterceptionRecord],
    providers: Iterable[tuple[str, str]] = (("anthropic", "anthropic"), ("openai", "openai")),
    expires_at: int = 2**62,
) -> None:
    """Write a small hand-built database: users with their tokens, providers, interceptions."""
    with contextlib.closing(open_database(path)) as conn:
        users = list(users)
        _insert_users(conn, [user for user, _ in users])
        for user, token in users:
            _insert_api_key(conn, user.id, token, expires_at)
        _insert_providers(conn, providers)
        _insert_interceptions(conn, interceptions)
        conn.commit()


@contextlib.contextmanager
def serve(path: Path, api_era: ApiEra = "sessions") -> Iterator[str]:
    """Serve the stand-in over the database at `path`; yields the base URL."""
    with run_app_in_thread(lambda: create_app(path, api_era=api_era)) as url:
        yield url


def db_rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query straight from the database (the tests' independent oracle)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def add_api_key(path: Path, user_id: str, token: str, expires_at: int) -> None:
    """Give a user of a hand-built database one more token."""
    with contextlib.closing(open_database(path)) as conn:
        _insert_api_key(conn, user_id, token, expires_at)
        conn.commit()
