"""Shared pytest configuration for every suite (tests/ and its folders are packages).

Session-scoped stand-in fixtures: one seeded database per API era, the stand-in serving it on
loopback, and every seeded user's token; `live_standin`, a test's own served copy that it
appends traffic to. `api_era` picks the era: the sessions era, except in
the gateway suites of `TWO_ERA_SUITES`, where every test runs once per era.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.eras import API_ERAS, ApiEra
from aibridge_graphql.standin.seed import seed_database
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import read_tokens
from tests.support.eras import TWO_ERA_SUITES, assert_interceptions_unsupported, has_interceptions
from tests.support.live_standin import LiveStandin, live_copy
from tests.support.servers import run_app_in_thread

TESTS = Path(__file__).parent
STANDIN_INTERCEPTIONS = 600
STANDIN_SEED_VALUE = 7
STANDIN_ADMIN_TOKEN = "AdminTestK-0123456789abcdefghijkl"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_interceptions(query): the test needs `GET /interceptions`; in the ai-gateway era "
        "it asserts instead that `query` answers UPSTREAM_UNSUPPORTED (tests/support/eras.py)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test of a two-era suite that reaches the stand-in runs once per era (ids: the era)."""
    if "api_era" not in metafunc.fixturenames:
        return
    where = Path(metafunc.definition.path).relative_to(TESTS).as_posix()
    if any(where == suite or where.startswith(f"{suite}/") for suite in TWO_ERA_SUITES):
        metafunc.parametrize(
            "api_era", API_ERAS, indirect=True, ids=list(API_ERAS), scope="session"
        )


@pytest.fixture(scope="session")
def api_era(request: pytest.FixtureRequest) -> ApiEra:
    """The era of the stand-in behind `standin_url`: the parametrized one, else "sessions"."""
    era: ApiEra = getattr(request, "param", "sessions")
    return era


@pytest.fixture(scope="session")
def _seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded database every era's copy starts from (seeded once per test session)."""
    path = tmp_path_factory.mktemp("standin-seed") / "standin.db"
    with contextlib.closing(open_database(path)) as conn:
        # Awkward session ids (`:`, `@`, `+`, `=`, spaces) on: the gateway encodes path segments.
        seed_database(conn, STANDIN_INTERCEPTIONS, STANDIN_SEED_VALUE, STANDIN_ADMIN_TOKEN)
        conn.commit()
    return path


@pytest.fixture(scope="session")
def standin_db_for(
    _seeded_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[ApiEra], Path]:
    """The database of an era: a copy of the seed made on first use, one per era per session.

    One file per era, because the ai-gateway era prices spend into its database on first start.
    """
    made: dict[ApiEra, Path] = {}

    def database(era: ApiEra) -> Path:
        if era not in made:
            path = tmp_path_factory.mktemp(f"standin-{era}") / "standin.db"
            shutil.copyfile(_seeded_db, path)
            made[era] = path
        return made[era]

    return database


@pytest.fixture(scope="session")
def standin_url_for(standin_db_for: Callable[[ApiEra], Path]) -> Iterator[Callable[[ApiEra], str]]:
    """The base URL of the stand-in serving an era's database, started on first use and shared."""
    urls: dict[ApiEra, str] = {}
    with contextlib.ExitStack() as stack:

        def url(era: ApiEra) -> str:
            if era not in urls:
                path = standin_db_for(era)
                urls[era] = stack.enter_context(
                    run_app_in_thread(lambda: create_app(path, api_era=era))
                )
            return urls[era]

        yield url


@pytest.fixture(scope="session")
def standin_db(api_era: ApiEra, standin_db_for: Callable[[ApiEra], Path]) -> Path:
    """A database seeded with 600 synthetic interceptions (seed value 7), of `api_era`."""
    return standin_db_for(api_era)


@pytest.fixture(scope="session")
def standin_url(api_era: ApiEra, standin_url_for: Callable[[ApiEra], str]) -> str:
    """Base URL (no /api/v2/aibridge suffix) of the stand-in serving `standin_db` in `api_era`."""
    return standin_url_for(api_era)


@pytest.fixture
def live_standin(_seeded_db: Path, api_era: ApiEra, tmp_path: Path) -> Iterator[LiveStandin]:
    """The stand-in of `api_era` over a fresh copy of the seeded database, for this test alone,
    with `.traffic` to append to it (tests/support/live_standin.py); `tokens` sign in to it."""
    with live_copy(_seeded_db, tmp_path, api_era) as standin:
        yield standin


@pytest.fixture(scope="session")
def tokens(_seeded_db: Path) -> dict[str, str]:
    """Username → token for every seeded user ("admin" is the owner, "auditor" the auditor)."""
    with contextlib.closing(sqlite3.connect(_seeded_db)) as conn:
        return {user.username: user.token for user in read_tokens(conn)}


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A `needs_interceptions` test in an era without them asserts UPSTREAM_UNSUPPORTED instead.

    It is not skipped: it checks what the gateway promises there (tests/support/eras.py).
    """
    marker = pyfuncitem.get_closest_marker("needs_interceptions")
    if marker is None:
        return None
    era = pyfuncitem.funcargs.get("api_era")
    assert era in API_ERAS, "a needs_interceptions test reaches the stand-in (`api_era`)"
    if has_interceptions(era):
        return None
    url = pyfuncitem.funcargs.get("standin_url")
    tokens = pyfuncitem.funcargs.get("tokens")
    assert isinstance(url, str), "a needs_interceptions test asks for `standin_url`"
    assert isinstance(tokens, dict), "a needs_interceptions test asks for `tokens`"
    # Its own loop, not set as current: the test's asyncio loop stays as pytest-asyncio left it.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            assert_interceptions_unsupported(url, tokens["admin"], *marker.args)
        )
    finally:
        loop.close()
    return True
