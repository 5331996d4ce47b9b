"""schema.graphql at the repository root must be exactly what the code's schema prints."""

from __future__ import annotations

import difflib
from pathlib import Path

from click.testing import CliRunner

from aibridge_graphql.cli import main
from aibridge_graphql.server.cli import schema_sdl

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.is_file(), "schema.graphql is missing: run `make schema` and commit it"
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    current = schema_sdl()
    if committed != current:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    current.splitlines(keepends=True),
                    "schema.graphql (committed)",
                    "schema (code)",
                )
            )[:60]
        )
        raise AssertionError(
            f"schema.graphql drifted from the code: run `make schema` and commit it\n{diff}"
        )


def test_export_schema_command_writes_and_prints_the_sdl(tmp_path: Path) -> None:
    output = tmp_path / "schema.graphql"
    runner = CliRunner()
    written = runner.invoke(main, ["export-schema", "--output", str(output)])
    printed = runner.invoke(main, ["export-schema"])
    assert written.exit_code == 0, written.output
    assert printed.exit_code == 0, printed.output
    assert output.read_text(encoding="utf-8") == schema_sdl()
    assert printed.stdout == schema_sdl()
    assert "type Query" in printed.stdout
