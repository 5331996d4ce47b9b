"""A bounded property-based run of schemathesis against the stand-in's own OpenAPI document.

Each API era is served over one seeded database and fuzzed three ways: as the owner, as a member
who owns nothing (every list empty, every session 404, providers 404), and anonymously with
schemathesis' generated token carriers (always 401, with one of Coder's details). Every
response must be documented (status code, content type, body schema), none may be a 5xx, a
request the document calls invalid must be refused, and the stand-in must log nothing at ERROR.
Generation is derandomized and capped per operation, so a run is the same every time.

Built with `schema.parametrize()` over the package's documents (the served ones are the same,
test_openapi.py and test_api_eras.py check that): schemathesis' fixture-based lazy schemas do
not work under pytest 9.2 (they set `Item._nodeid`, which it no longer has).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import strategies as st
from schemathesis import checks as base_checks
from schemathesis.specs.openapi import checks as openapi_checks

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.auth import SIGNED_OUT
from aibridge_graphql.standin.eras import API_ERAS, ApiEra
from aibridge_graphql.standin.openapi import document
from aibridge_graphql.standin.records import UserRecord, insert_api_key, insert_users
from aibridge_graphql.standin.seed import seed_database
from aibridge_graphql.standin.store import open_database
from tests.support.servers import run_app_in_thread

OWNER_TOKEN = "FuzzOwner0-0123456789abcdefghijkl"
NEWCOMER_TOKEN = "FuzzNewbie-0123456789abcdefghijkl"
NEWCOMER = UserRecord(
    "0f0e0d0c-0b0a-4908-8706-050403020100", "newcomer", "newcomer@example.com", "New", "", "member"
)
ROLES = ("owner", "newcomer", "anonymous")
# Fuzzed cases per operation and generation mode (positive and negative); the owner's runs add
# the coverage phase's boundary values. The whole module takes seconds, not minutes.
MAX_EXAMPLES = 12
SEED = 7
CHECKS = [
    base_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.negative_data_rejection,
]


@dataclass(frozen=True)
class Corpus:
    """Real ids of the fuzzed database, mixed into generated parameters so that 200s happen."""

    session_ids: list[str]
    interception_ids: list[str]


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with contextlib.closing(open_database(path)) as conn:
        seed_database(conn, 60, SEED, OWNER_TOKEN)
        insert_users(conn, [NEWCOMER])
        insert_api_key(conn, NEWCOMER.id, NEWCOMER_TOKEN, 2**62)
        conn.commit()
    return path


@pytest.fixture(scope="module")
def corpus(fuzz_db: Path) -> Corpus:
    with contextlib.closing(sqlite3.connect(fuzz_db)) as conn:
        sessions = conn.execute(
            "SELECT DISTINCT session_id FROM interceptions ORDER BY session_id LIMIT 20"
        ).fetchall()
        interceptions = conn.execute("SELECT id FROM interceptions ORDER BY id LIMIT 20").fetchall()
    return Corpus([str(r[0]) for r in sessions], [str(r[0]) for r in interceptions])


_CORPUS: list[Corpus] = []


@pytest.fixture(scope="module")
def servers(fuzz_db: Path, corpus: Corpus) -> Iterator[dict[str, str]]:
    """Era -> base URL of the stand-in serving it; publishes the corpus to the hooks."""
    _CORPUS[:] = [corpus]

    def factory(name: ApiEra) -> Callable[[], web.Application]:
        return lambda: create_app(fuzz_db, api_era=name)

    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {
            name: stack.enter_context(run_app_in_thread(factory(name))) for name in API_ERAS
        }
        yield urls


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module")
def error_log() -> Iterator[list[str]]:
    """ERROR lines logged anywhere in the process (the stand-in runs in a thread of it).

    The stand-in logs before it answers, so a request's lines are in when its response is.
    """
    handler = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)


def _session_ids() -> Any:
    return st.sampled_from(_CORPUS[0].session_ids)


def _interception_ids() -> Any:
    return st.sampled_from(_CORPUS[0].interception_ids)


def _schema(api_era: ApiEra, role: str) -> Any:
    schema = schemathesis.openapi.from_dict(document(api_era))
    schema.config.seed = SEED
    schema.config.generation.update(
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        # Anonymous runs send whatever token carriers schemathesis makes up; the others one
        # real header.
        with_security_parameters=role == "anonymous",
    )
    coverage = schema.config.phases.coverage
    # The coverage phase's boundary values (limits, formats, empty and duplicate values) are
    # the owner's, where they reach the queries; the other callers are refused before that.
    coverage.enabled = role == "owner"
    # Other methods are the router's (405, or the data plane): tested in test_api_auth.py.
    coverage.unexpected_methods = set()

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
        if not path_parameters or "session_id" not in path_parameters:
            return st.just(path_parameters)
        real = st.deferred(_session_ids).map(lambda sid: {**path_parameters, "session_id": sid})
        return st.one_of(st.just(path_parameters), real)

    @schema.hook
    def flatmap_query(context: Any, query: Any) -> Any:
        names = {p.name for p in context.operation.query} & {"after_id", "before_id"}
        if query is None or not names:
            return st.just(query)
        cursor = st.deferred(_interception_ids)
        real = st.fixed_dictionaries({}, optional=dict.fromkeys(names, cursor))
        return st.one_of(st.just(query), real.map(lambda r: {**query, **r}))

    return schema


def _headers(role: str) -> dict[str, str]:
    token = {"owner": OWNER_TOKEN, "newcomer": NEWCOMER_TOKEN}.get(role)
    return {"Coder-Session-Token": token} if token else {}


# Every detail Coder's ExtractAPIKey gives a token that is missing, malformed or unknown.
_CODER_401_DETAIL = re.compile(
    r'Cookie "coder_session_token" or query parameter must be provided\.'
    r"|Invalid API key format: (incorrect amount of API key parts, expected 2 got \d+"
    r"|invalid API key ID length, expected 10 got \d+"
    r"|invalid API key secret length, expected 22 got \d+)"
    r"|API key is invalid\."
)
_EMPTY_LISTS: dict[str, Any] = {
    "/interceptions": {"count": 0, "results": []},
    "/sessions": {"count": 0, "sessions": []},
    "/models": [],
    "/clients": [],
}


def _check_role(role: str, path: str, response: Any) -> None:
    """What the caller may see: anonymous nothing (401), the newcomer only empty lists."""
    status = response.status_code
    if path.endswith("/openapi.json"):
        assert status == 200
    elif role == "anonymous":
        assert status == 401, response.text
        body = response.json()
        assert body["message"] == SIGNED_OUT
        assert _CODER_401_DETAIL.fullmatch(body["detail"]), body["detail"]
    elif role == "newcomer":
        # Owners and auditors read providers and others' sessions; models and clients come
        # from interceptions the newcomer has none of.
        suffix = next((key for key in _EMPTY_LISTS if path.endswith(key)), None)
        if suffix is None:
            assert status in (400, 404), (path, status, response.text)
        elif status == 200:
            assert response.json() == _EMPTY_LISTS[suffix]


def _fuzz_test(api_era: ApiEra, role: str) -> Any:
    schema = _schema(api_era, role)

    @schema.parametrize()  # type: ignore[untyped-decorator]
    @hypothesis.settings(derandomize=True, database=None, deadline=None)
    def test(case: Any, servers: dict[str, str], error_log: list[str]) -> None:
        base_url = servers[api_era] + "/api/v2"
        error_log.clear()
        response = case.call(base_url=base_url, headers=_headers(role), timeout=30)
        case.validate_response(response, checks=CHECKS)
        assert error_log == []
        if case.method == "GET":
            _check_role(role, case.operation.path, response)

    return test


test_sessions_era_as_owner = _fuzz_test("sessions", "owner")
test_sessions_era_as_newcomer = _fuzz_test("sessions", "newcomer")
test_sessions_era_anonymously = _fuzz_test("sessions", "anonymous")
test_ai_gateway_era_as_owner = _fuzz_test("ai-gateway", "owner")
test_ai_gateway_era_as_newcomer = _fuzz_test("ai-gateway", "newcomer")
test_ai_gateway_era_anonymously = _fuzz_test("ai-gateway", "anonymous")


@pytest.mark.parametrize("api_era", API_ERAS)
def test_empty_query_values_are_documented_as_absent(
    api_era: ApiEra, servers: dict[str, str]
) -> None:
    # Found by the run above (negative_data_rejection): `?after_id=` is answered like no
    # after_id, as Coder reads an empty first value as absent, so the document says so.
    # Only the management API: the spend routes refuse an empty required value (Coder's 400).
    headers = _headers("owner")
    for path, item in document(api_era)["paths"].items():
        if not path.startswith(("/aibridge/", "/ai-gateway/")):
            continue
        query = [p for p in item["get"].get("parameters", []) if p["in"] == "query"]
        assert all(p.get("allowEmptyValue") is True for p in query), path
        if not query or "{" in path:
            continue
        url = servers[api_era] + "/api/v2" + path
        empty = requests.get(
            url, params={p["name"]: "" for p in query}, headers=headers, timeout=30
        )
        absent = requests.get(url, headers=headers, timeout=30)
        assert (empty.status_code, empty.json()) == (200, absent.json()), path
