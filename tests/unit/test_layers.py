"""The layers, read from the imports: upstream/ <- core/ <- faces (schema/, grpc/) <- server/.

Every `import`/`from … import` of `aibridge_graphql.*` in every module is parsed (with the AST,
so lazy imports inside functions and `TYPE_CHECKING` imports count too) and checked against the
arrows of docs/design.md, whose layer table is read here: nothing below a face knows GraphQL or
gRPC, the faces never import each other, and only the commands that run the stand-in (the demo
and the CLI) import it. Neither the parts nor the modules (of the package and of bench/) import
each other in a circle, but for the GraphQL object types, which refer to each other as the graph
does (`ALLOWED_CYCLES`).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
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
BENCH = REPO / "bench"
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


# Module circles that are meant: the GraphQL object types refer to each other as the graph does
# (a Session's initiator is a User, a User has sessions and interceptions, a Thread has its
# Session). A circle among any other modules, or one reaching out of this group, fails.
ALLOWED_CYCLES = [
    frozenset(
        {
            "aibridge_graphql.schema.interception",
            "aibridge_graphql.schema.session",
            "aibridge_graphql.schema.thread",
            "aibridge_graphql.schema.user",
        }
    ),
]


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py") if relative.parts else ""


def _imports(path: Path, package: str | None = None) -> Iterator[tuple[str, int, list[str]]]:
    """(module, line, names) of each import: `names` are what `from module import …` takes."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = ".".join((ROOT, *path.relative_to(PACKAGE).parent.parts))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module, node.lineno, [alias.name for alias in node.names]


def _layer_imports(path: Path) -> Iterator[tuple[str, int]]:
    for module, line, names in _imports(path):
        yield module, line
        if module == ROOT:  # `from aibridge_graphql import x`
            for name in names:
                yield f"{ROOT}.{name}", line


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "gen" not in p.relative_to(PACKAGE).parts)


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((package, *parts))


def _module_graph() -> dict[str, dict[str, int]]:
    """Module -> the modules of the package and of bench/ it imports (with a line of each)."""
    sources = {_module_name(p, PACKAGE, ROOT): p for p in _modules()}
    sources |= {_module_name(p, BENCH, "bench"): p for p in sorted(BENCH.rglob("*.py"))}

    def known(name: str) -> str | None:
        # `pkg.module.Name` is `pkg.module`; a name outside the package and bench/ is None.
        while name and name not in sources:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for name, path in sources.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph[name] = {}
        for module, line, names in _imports(path, package):
            # `from pkg import sub` imports the module `pkg.sub`; `from pkg import Name`, `pkg`.
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in sources]
            if len(targets) < len(names) or not names:
                targets.append(module)
            for target in map(known, targets):
                if target is not None and target != name:
                    edges.setdefault(target, line)
    return graph


def _cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(graph.get(successor, ()))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


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
    for module, line in _layer_imports(path):
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
        for module, _ in _layer_imports(path):
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


def test_no_import_cycle_between_modules() -> None:
    graph = _module_graph()
    wrong = []
    for component in _cycles(graph):
        if any(set(component) <= allowed for allowed in ALLOWED_CYCLES):
            continue
        members = set(component)
        arrows = [
            f"{source} -> {target} (line {line})"
            for source in component
            for target, line in sorted(graph[source].items())
            if target in members
        ]
        wrong.append(arrows)
    assert not wrong, (
        f"modules in an import cycle (move what they share to a module of its own): {wrong}"
    )


def test_every_allowed_cycle_is_still_one() -> None:
    """An allowance that no circle needs any more goes, so that it cannot hide a new one."""
    components = _cycles(_module_graph())
    stale = [
        sorted(allowed)
        for allowed in ALLOWED_CYCLES
        if not any(len(allowed.intersection(component)) > 1 for component in components)
    ]
    assert not stale, f"ALLOWED_CYCLES names groups that are no cycle: {stale}"


def test_the_cycle_check_sees_circles_of_any_length() -> None:
    graph = {
        "a": ["b"],
        "b": ["c", "d"],
        "c": ["a"],  # a -> b -> c -> a
        "d": ["e"],
        "e": ["d"],  # d <-> e
        "f": ["a"],  # reaches the circle, is not in it
    }
    assert _cycles(graph) == [["a", "b", "c"], ["d", "e"]]
    assert _cycles({"a": ["b"], "b": []}) == []
