"""Shared by the frontend tests: their folders, and the schema files the Node tools read."""

from __future__ import annotations

from pathlib import Path

from graphql import FieldDefinitionNode, ObjectTypeDefinitionNode, parse

from aibridge_graphql.server.cli import schema_sdl

REPO_ROOT = Path(__file__).resolve().parents[2]
FRONTEND_DIR = REPO_ROOT / "tests" / "frontend"
SCHEMA_FILE = REPO_ROOT / "schema.graphql"
# Strawberry prints `@link`/`@key` usages but not their definitions (federation gateways supply
# them); tools that build a standalone schema from the SDL need these definitions added.
FEDERATION_DIRECTIVES = FRONTEND_DIR / "schema" / "federation-directives.graphql"


def current_schema(tmp_dir: Path) -> Path:
    """The schema a frontend builds against: `schema.graphql` at the repository root.

    `make schema` writes it and tests/unit/schema/test_drift.py keeps it equal to the code; on a
    tree without it (e.g. mid-change) the code's SDL is exported into `tmp_dir` instead.
    """
    if SCHEMA_FILE.is_file():
        return SCHEMA_FILE
    exported = tmp_dir / "schema.graphql"
    exported.write_text(schema_sdl(), encoding="utf-8")
    return exported


def standalone_schema(schema: Path, out: Path) -> Path:
    """`schema` plus the federation directive definitions, written to `out` (a valid SDL)."""
    out.write_text(
        schema.read_text(encoding="utf-8") + "\n" + FEDERATION_DIRECTIVES.read_text("utf-8"),
        encoding="utf-8",
    )
    return out


def field_definition(sdl: str, type_name: str, field_name: str) -> FieldDefinitionNode:
    """The AST node of `type_name.field_name` in `sdl` (with its source location)."""
    for definition in parse(sdl).definitions:
        if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value == type_name:
            for field in definition.fields or ():
                if field.name.value == field_name:
                    return field
    raise AssertionError(f"{type_name}.{field_name} is not in the schema")
