"""Relay: the frontend operations in tests/frontend/relay compile with `relay-compiler` against
schema.graphql — a paginated sessions list (`@connection`, `@refetchable` on `first`/`after`),
a session detail with threads, agentic actions and tool calls, and an interception fragment that
refetches itself through `node(id:)`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.frontend_schema import FRONTEND_DIR, current_schema
from tests.support.node_tools import ensure_node_modules
from tests.support.relay_build import OPERATIONS_DIR, compile_relay, operation_text

EXPECTED_ARTIFACTS = {
    # Operations
    "SessionsListQuery",
    "SessionsListPaginationQuery",
    "SessionDetailQuery",
    "SessionDetailThreadsPaginationQuery",
    "InterceptionNodeListQuery",
    "InterceptionNodeRefetchQuery",
    # Fragments
    "SessionsList_query",
    "SessionsList_row",
    "SessionDetail_session",
    "SessionDetail_thread",
    "InterceptionNode_interception",
}


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return ensure_node_modules(FRONTEND_DIR)


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return current_schema(tmp_path_factory.mktemp("schema"))


@pytest.fixture(scope="module")
def compiled(
    node_modules: Path, schema: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    return compile_relay(node_modules, schema, tmp_path_factory.mktemp("relay"))


@pytest.fixture(scope="module")
def artifacts(compiled: tuple[subprocess.CompletedProcess[str], Path]) -> Path:
    result, folder = compiled
    assert result.returncode == 0, f"relay-compiler failed:\n{result.stdout}\n{result.stderr}"
    return folder


def test_operations_compile_to_the_expected_artifacts(artifacts: Path) -> None:
    generated = {path.name.removesuffix(".graphql.js") for path in artifacts.glob("*.graphql.js")}
    assert generated == EXPECTED_ARTIFACTS


def test_sessions_list_paginates_forwards_over_the_connection(artifacts: Path) -> None:
    text = operation_text(artifacts, "SessionsListPaginationQuery")
    assert "sessions(first: $first, after: $after, filter: $filter)" in text
    # Relay's `@connection` adds what pagination needs; the schema must have all of it.
    for selection in ("cursor", "pageInfo {", "endCursor", "hasNextPage", "__typename"):
        assert selection in text, selection


@pytest.mark.parametrize(
    "operation", ["InterceptionNodeRefetchQuery", "SessionDetailThreadsPaginationQuery"]
)
def test_refetchable_fragments_refetch_through_node(artifacts: Path, operation: str) -> None:
    text = operation_text(artifacts, operation)
    assert f"query {operation}(" in text
    assert "node(id: $id) {" in text


def test_session_detail_reaches_tool_calls(artifacts: Path) -> None:
    text = operation_text(artifacts, "SessionDetailQuery")
    for selection in ("threads(first: 10)", "agenticActions {", "toolCalls {", "thinking"):
        assert selection in text, selection


def test_an_operation_with_an_unknown_field_does_not_compile(
    node_modules: Path, schema: Path, tmp_path: Path
) -> None:
    src = tmp_path / "relay"
    shutil.copytree(OPERATIONS_DIR, src)
    page = src / "SessionsList.js"
    page.write_text(page.read_text("utf-8").replace("lastPrompt", "lastPromptText"), "utf-8")

    result, _ = compile_relay(node_modules, schema, tmp_path / "out", src=src)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "lastPromptText" in output, output
