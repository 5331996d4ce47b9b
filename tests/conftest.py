"""Shared pytest configuration; its presence puts tests/ on sys.path so `support` is importable.

Session-scoped stand-in fixtures: a seeded database, the stand-in serving it on loopback, and
every seeded user's token.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.seed import seed_database
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import read_tokens
from support.servers import run_app_in_thread

STANDIN_INTERCEPTIONS = 600
STANDIN_SEED_VALUE = 7
STANDIN_ADMIN_TOKEN = "AdminTestK-0123456789abcdefghijkl"


@pytest.fixture(scope="session")
def standin_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database seeded with 600 synthetic interceptions (seed value 7)."""
    path = tmp_path_factory.mktemp("standin") / "standin.db"
    with contextlib.closing(open_database(path)) as conn:
        # Plain session ids for now: the gateway's path encoding is being fixed (issue 8).
        seed_database(
            conn,
            STANDIN_INTERCEPTIONS,
            STANDIN_SEED_VALUE,
            STANDIN_ADMIN_TOKEN,
            awkward_session_ids=False,
        )
        conn.commit()
    return path


@pytest.fixture(scope="session")
def standin_url(standin_db: Path) -> Iterator[str]:
    """Base URL (no /api/v2/aibridge suffix) of the stand-in serving `standin_db`.

    Pinned to the sessions era until the gateway's tests run against both eras (issue 8).
    """
    with run_app_in_thread(lambda: create_app(standin_db, api_era="sessions")) as url:
        yield url


@pytest.fixture(scope="session")
def tokens(standin_db: Path) -> dict[str, str]:
    """Username → token for every seeded user ("admin" is the owner, "auditor" the auditor)."""
    with contextlib.closing(sqlite3.connect(standin_db)) as conn:
        return {user.username: user.token for user in read_tokens(conn)}
