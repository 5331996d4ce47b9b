"""No breaking change against the last released schema, checked by `graphql-inspector diff`.

`released/schema-v<version>.graphql` holds the schema each release shipped; the newest one is
"the last released schema". v0.1.0 is a copy of `schema.graphql` as of that version (the
`version` in pyproject.toml). Clients built against it (persisted Relay queries, generated types)
must keep working, so the current schema may add but not remove or retype: removing a field,
changing its type or adding a required argument fails this test. To ship a deliberate breaking
change, deprecate first, and add the new `schema-v<next major>.graphql` when releasing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.frontend_schema import (
    FRONTEND_DIR,
    current_schema,
    field_definition,
    standalone_schema,
)
from tests.support.node_tools import ensure_node_modules, run_node_bin

RELEASED_DIR = FRONTEND_DIR / "released"
_VERSION = re.compile(r"schema-v(\d+)\.(\d+)\.(\d+)\.graphql")


def last_released_schema() -> Path:
    """The released schema with the highest version."""
    versions = {
        tuple(int(part) for part in match.groups()): path
        for path in RELEASED_DIR.glob("schema-v*.graphql")
        if (match := _VERSION.fullmatch(path.name))
    }
    assert versions, f"no released schema in {RELEASED_DIR}"
    return versions[max(versions)]


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return ensure_node_modules(FRONTEND_DIR)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("released")
    return standalone_schema(last_released_schema(), folder / "released.graphql")


def diff(node_modules: Path, old: Path, new: Path) -> subprocess.CompletedProcess[str]:
    return run_node_bin(node_modules, "graphql-inspector", "diff", str(old), str(new))


def test_current_schema_has_no_breaking_change(
    node_modules: Path, released: Path, tmp_path: Path
) -> None:
    current = standalone_schema(current_schema(tmp_path), tmp_path / "current.graphql")
    result = diff(node_modules, released, current)
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"breaking change against {last_released_schema().name}:\n{output}"
    )
    assert "No breaking changes detected" in output or "No changes detected" in output, output


def test_a_removed_field_and_a_changed_type_are_caught(
    node_modules: Path, released: Path, tmp_path: Path
) -> None:
    sdl = released.read_text(encoding="utf-8")
    removed = field_definition(sdl, "Interception", "providerName")
    retyped = field_definition(sdl, "Session", "lastPrompt").type
    assert removed.loc is not None
    assert retyped.loc is not None
    # Edit from the end so the earlier offsets stay valid.
    for start, end, text in sorted(
        [(removed.loc.start, removed.loc.end, ""), (retyped.loc.start, retyped.loc.end, "Int")],
        reverse=True,
    ):
        sdl = sdl[:start] + text + sdl[end:]
    mutated = tmp_path / "mutated.graphql"
    mutated.write_text(sdl, encoding="utf-8")

    result = diff(node_modules, released, mutated)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Field providerName was removed from object type Interception" in output, output
    assert "Field Session.lastPrompt changed type from String to Int" in output, output
    assert "Detected 2 breaking changes" in output, output
