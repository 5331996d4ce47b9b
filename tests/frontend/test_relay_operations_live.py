"""The exact queries Relay generates from relay/*.js run on the gateway, in front of the stand-in,
without errors: the sessions page and its next page, a session's page by `node(id:)` and its next
threads, and an interception refetched by `node(id:)` equal to the one the list showed. Each runs
in both API eras (the ai-gateway era has no interceptions: that test asserts so instead).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from aibridge_graphql.server.serving import build_gateway
from aibridge_graphql.settings import Settings
from tests.support.frontend_schema import FRONTEND_DIR, current_schema
from tests.support.node_tools import ensure_node_modules
from tests.support.relay_build import compile_relay, operation_text
from tests.support.servers import run_app_in_thread

PAGE = 2
# The threads page size SessionDetail_session asks for by default.
SESSION_THREADS = 10
# Runs one generated operation with variables; returns its `data`.
Run = Callable[[str, dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node_modules = ensure_node_modules(FRONTEND_DIR)
    schema = current_schema(tmp_path_factory.mktemp("schema"))
    result, folder = compile_relay(node_modules, schema, tmp_path_factory.mktemp("relay"))
    assert result.returncode == 0, f"relay-compiler failed:\n{result.stdout}\n{result.stderr}"
    return folder


@pytest.fixture(scope="module")
def gateway_url(standin_url: str) -> Iterator[str]:
    settings = Settings(upstream_url=standin_url, graphiql=False)
    with run_app_in_thread(lambda: build_gateway(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def admin_token(tokens: dict[str, str]) -> str:
    """The stand-in owner's token: it sees every user's sessions."""
    return tokens["admin"]


@pytest.fixture
def run(artifacts: Path, gateway_url: str, admin_token: str) -> Run:
    """`run(operation, variables)`: POST Relay's text for `operation`; its `data` (no errors)."""

    def execute(operation: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{gateway_url}/graphql",
            json={"query": operation_text(artifacts, operation), "variables": variables},
            headers={"Coder-Session-Token": admin_token},
            timeout=30.0,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    return execute


def test_sessions_page_and_its_next_page(run: Run) -> None:
    first = run("SessionsListQuery", {"first": PAGE})["sessions"]
    assert len(first["edges"]) == PAGE
    assert first["pageInfo"]["hasNextPage"]

    after = first["pageInfo"]["endCursor"]
    second = run("SessionsListPaginationQuery", {"first": PAGE, "after": after})["sessions"]
    assert second["totalCount"] == first["totalCount"]
    seen = {edge["node"]["id"] for edge in first["edges"]}
    assert second["edges"]
    assert not seen & {edge["node"]["id"] for edge in second["edges"]}


def test_session_page_by_node_id_and_its_next_threads(run: Run) -> None:
    sessions = run("SessionsListQuery", {"first": 20})["sessions"]["edges"]
    # A session with more threads than one page, to page through them.
    row = next((e["node"] for e in sessions if e["node"]["threadCount"] > PAGE), None)
    assert row is not None, "no session with several threads in the first page"

    session = run("SessionDetailThreadsPaginationQuery", {"id": row["id"], "first": PAGE})["node"]
    assert session["__typename"] == "Session"
    assert session["sessionId"] == row["sessionId"]
    threads = session["threads"]
    assert threads["totalCount"] == row["threadCount"]
    assert threads["pageInfo"]["hasNextPage"]

    variables = {"id": row["id"], "first": PAGE, "after": threads["pageInfo"]["endCursor"]}
    more = run("SessionDetailThreadsPaginationQuery", variables)["node"]["threads"]
    first_ids = {edge["node"]["id"] for edge in threads["edges"]}
    assert more["edges"]
    assert not first_ids & {edge["node"]["id"] for edge in more["edges"]}


def tool_calls_by_thread(threads: list[dict[str, Any]], *, rest: bool) -> list[Any]:
    """Each thread's id with its actions' tool call ids, from either side's JSON."""
    if rest:
        return [
            (t["id"], [[c["id"] for c in a.get("tool_calls", [])] for a in t["agentic_actions"]])
            for t in threads
        ]
    return [
        (t["threadId"], [[c["toolCallId"] for c in a["toolCalls"]] for a in t["agenticActions"]])
        for t in threads
    ]


def test_session_page_shows_the_threads_tool_calls(
    run: Run, standin_url: str, admin_token: str
) -> None:
    sessions = run("SessionsListQuery", {"first": 20})["sessions"]["edges"]
    row = next((e["node"] for e in sessions if e["node"]["threadCount"] > 1), None)
    assert row is not None, "no session with several threads in the first page"
    detail = run("SessionDetailQuery", {"id": row["id"]})["node"]
    assert detail["id"] == row["id"]
    # Encoded as a path segment needs, no more: the stand-in, like Coder, matches the raw path.
    segment = quote(row["sessionId"], safe="!$&'()*+,;=:@")
    response = httpx.get(
        f"{standin_url}/api/v2/aibridge/sessions/{segment}",
        params={"limit": SESSION_THREADS},
        headers={"Coder-Session-Token": admin_token},
    )
    assert response.status_code == 200, response.text
    expected = tool_calls_by_thread(response.json()["threads"], rest=True)
    shown = tool_calls_by_thread([e["node"] for e in detail["threads"]["edges"]], rest=False)
    assert shown == expected
    assert any(calls for _, actions in shown for calls in actions), "no tool call to show"


@pytest.mark.needs_interceptions("{ interceptions(first: 3) { edges { node { id } } } }")
def test_interception_refetch_equals_the_listed_node(run: Run) -> None:
    listed = run("InterceptionNodeListQuery", {"first": 3})["interceptions"]["edges"]
    assert len(listed) == 3
    for edge in listed:
        refetched = run("InterceptionNodeRefetchQuery", {"id": edge["node"]["id"]})["node"]
        assert refetched.pop("__typename") == "Interception"
        assert refetched == edge["node"]
