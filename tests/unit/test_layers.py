"""The layers, read from the imports: upstream/ <- core/ <- faces (schema/, grpc/) <- server/.

Every `import`/`from … import` of `aibridge_graphql.*` in every module is parsed (with the AST,
so lazy imports inside functions count too) and checked against the arrows of docs/design.md,
whose layer table is read here: nothing below a face knows GraphQL or gRPC, the faces never
import each other, and only the commands that run the stand-in (the demo and the CLI) import it.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

import aibridge_graphql
from tests.support.docs import REPO

PACKAGE = Path(aibridge_graphql.__file__).parent
ROOT = "aibridge_graphql"
DESIGN = REPO / "docs" / "design.md"
_ROW = re.compile(r"^\| `(?P<part>[\w.]+)` \| (?P<allowed>.*) \|$")


def read_layer_table(design: Path) -> dict[str, set[str]]:
    """The design's table of which top-level parts each part may import (itself always allowed)."""
    lines = design.read_text(encoding="utf-8").splitlines()
    start = lines.index("| Part | May import |") + 2  # the header and its rule
    table: dict[str, set[str]] = {}
    for line in lines[start:]:
        row = _ROW.match(line)
        if row is None:
            break
        table[row["part"]] = set(re.findall(r"`([\w.]+)`", row["allowed"]))
    assert table, f"no layer table in {design}"
    return table


ALLOWED = read_layer_table(DESIGN)
# The commands that start the stand-in beside the gateway (a development tool, not the gateway).
MAY_IMPORT_STANDIN = {"server/demo.py", "server/cli.py", "cli.py"}
# Third-party libraries that belong to one face (or the server) only.
FACE_LIBRARIES = {
    "strawberry": {"schema", "server"},
    "graphql": {"schema", "server"},
    "grpc": {"grpc", "server"},
    "grpc_health": {"grpc", "server"},
    "grpc_reflection": {"grpc", "server"},
    "grpc_status": {"grpc", "server"},
    "aiohttp": {"server", "standin", "upstream"},
}


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py") if relative.parts else ""


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join((ROOT, *path.relative_to(PACKAGE).parent.parts))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module, node.lineno
            if module == ROOT:  # `from aibridge_graphql import x`
                for alias in node.names:
                    yield f"{ROOT}.{alias.name}", node.lineno


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "gen" not in p.relative_to(PACKAGE).parts)


def _target(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != ROOT or len(parts) < 2:
        return None
    # `aibridge_graphql.__version__` and the like: the package's own `__init__`.
    return parts[1] if parts[1] in ALLOWED else "__init__"


def test_the_layout_has_the_designed_parts() -> None:
    parts = {_part(path) for path in _modules()}
    assert {"upstream", "core", "schema", "grpc", "server", "standin"} <= parts
    assert parts <= set(ALLOWED), f"parts the layer rules do not know: {parts - set(ALLOWED)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    part = _part(path)
    relative = str(path.relative_to(PACKAGE))
    wrong = []
    for module, line in _imports(path):
        target = _target(module)
        if target is not None and target != part:
            if target == "standin" and relative in MAY_IMPORT_STANDIN:
                continue
            if target not in ALLOWED[part]:
                wrong.append(f"line {line}: {module}")
        library = module.split(".")[0]
        if library in FACE_LIBRARIES and part not in FACE_LIBRARIES[library]:
            wrong.append(f"line {line}: {module} (belongs to {sorted(FACE_LIBRARIES[library])})")
    assert not wrong, f"{relative} ({part}) imports across the layers: {wrong}"


def test_no_import_cycle_between_parts() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in _modules():
        part = _part(path)
        for module, _ in _imports(path):
            target = _target(module)
            if target is not None and target != part:
                edges[part].add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(part for part in edges if reaches(part, part, {part}))
    assert not cycles, f"parts in an import cycle: {cycles} ({dict(edges)})"
