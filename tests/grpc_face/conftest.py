"""Fixtures of the gRPC face's tests: the face on loopback before the seeded stand-in, once per
upstream era.

`standin_url` is overridden here, parametrised over both API eras of the stand-in (Coder's
sessions era and today's AI Gateway era) over the session's one seeded database, so every test
of this directory that asks for the stand-in (or the `face` before it) runs against both.

The live watches' tests have a small database of their own that records are appended to
(`appender`), the stand-in over it and a face polling it every second (`watch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.eras import API_ERAS, ApiEra
from tests.support.grpc_face import RunningGrpc, face_settings, run_grpc_in_thread
from tests.support.grpc_live import LIVE_SETTINGS, Appender, live_database
from tests.support.servers import run_app_in_thread


@pytest.fixture(scope="session", params=API_ERAS)
def api_era(request: pytest.FixtureRequest) -> ApiEra:
    """The stand-in's API era of this run of the test."""
    era: ApiEra = request.param
    return era


@pytest.fixture(scope="session")
def standin_url(standin_db: Path, api_era: ApiEra) -> Iterator[str]:
    """Base URL of the stand-in serving `standin_db` in `api_era`."""
    with run_app_in_thread(lambda: create_app(standin_db, api_era=api_era)) as url:
        yield url


@pytest.fixture(scope="module")
def face(standin_url: str) -> Iterator[RunningGrpc]:
    """The gRPC face before the stand-in of this era."""
    with run_grpc_in_thread(face_settings(standin_url)) as running:
        yield running


@pytest.fixture(scope="module")
def appender(api_era: ApiEra, tmp_path_factory: pytest.TempPathFactory) -> Appender:
    """A small database of this era's own that the test appends records to."""
    return live_database(tmp_path_factory.mktemp(f"live-{api_era}") / "live.db")


@pytest.fixture(scope="module")
def watch_standin(appender: Appender, api_era: ApiEra) -> Iterator[str]:
    """The stand-in over `appender`'s database."""
    with run_app_in_thread(lambda: create_app(appender.path, api_era=api_era)) as url:
        yield url


@pytest.fixture(scope="module")
def watch_face(watch_standin: str) -> Iterator[RunningGrpc]:
    """A face before `watch_standin`, polling live views every second."""
    with run_grpc_in_thread(face_settings(watch_standin, **LIVE_SETTINGS)) as running:
        yield running


@pytest.fixture
def watch(watch_face: RunningGrpc) -> Iterator[RunningGrpc]:
    """`watch_face`, whose hub the test must leave empty (every stream and poller gone)."""
    yield watch_face
    watch_face.wait_live(0, 0)
