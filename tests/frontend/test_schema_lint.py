"""`graphql-schema-linter` passes on schema.graphql with our rules (graphql-schema-linter.config.js
says which and why), and those rules do flag a field without a description or badly named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.frontend_schema import (
    FEDERATION_DIRECTIVES,
    FRONTEND_DIR,
    current_schema,
    field_definition,
)
from tests.support.node_tools import ensure_node_modules, run_node_bin


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return ensure_node_modules(FRONTEND_DIR)


def lint(node_modules: Path, schema: Path) -> list[dict[str, Any]]:
    """The linter's errors on `schema` (with the federation directive definitions)."""
    result = run_node_bin(
        node_modules,
        "graphql-schema-linter",
        "--config-directory",
        str(FRONTEND_DIR),
        "--format",
        "json",
        str(schema),
        str(FEDERATION_DIRECTIVES),
    )
    try:
        errors: list[dict[str, Any]] = json.loads(result.stdout)["errors"]
    except (ValueError, KeyError) as exc:
        raise AssertionError(f"no JSON report:\n{result.stdout}\n{result.stderr}") from exc
    # Exit code and report must agree, or the report is not what the linter decided.
    assert (result.returncode == 0) == (not errors), (result.returncode, errors)
    return errors


def describe(errors: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{error['location']['line']}:{error['location']['column']} {error['message']}"
        f" ({error['rule']})"
        for error in errors
    )


def test_schema_passes_the_linter(node_modules: Path, tmp_path: Path) -> None:
    errors = lint(node_modules, current_schema(tmp_path))
    assert not errors, "schema.graphql fails graphql-schema-linter:\n" + describe(errors)


def test_the_rules_flag_a_missing_description_and_a_snake_case_field(
    node_modules: Path, tmp_path: Path
) -> None:
    sdl = current_schema(tmp_path).read_text(encoding="utf-8")
    field = field_definition(sdl, "Session", "lastPrompt")
    assert field.loc is not None
    # The same field without its description, under a snake_case name.
    sdl = sdl[: field.loc.start] + "last_prompt: String" + sdl[field.loc.end :]
    mutated = tmp_path / "mutated.graphql"
    mutated.write_text(sdl, encoding="utf-8")

    flagged = {(error["rule"], error["message"]) for error in lint(node_modules, mutated)}
    assert flagged == {
        ("fields-have-descriptions", "The field `Session.last_prompt` is missing a description."),
        ("fields-are-camel-cased", "The field `Session.last_prompt` is not camel cased."),
    }
