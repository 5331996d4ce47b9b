"""The plan executor answers exactly as graphql-core's executor does, errors and nulls included.

Each document runs on a schema with the plan executor and on the same types with Strawberry's
default executor; data and errors (message, path, locations) must be equal. The types fail in
every way a resolver can: raising, sync and async, returning null for non-null fields, wrong
values for scalars, non-iterables for lists, in lists of non-null items.
"""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
import strawberry
from graphql import GraphQLError, SourceLocation
from strawberry.extensions import ParserCache
from strawberry.types import ExecutionResult

from aibridge_graphql.schema.engine.executor import _error_order, plan_executor_class


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Leaf(Named):
    index: int
    colour: Colour = Colour.RED
    at: datetime = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    @strawberry.field
    def fails(self) -> str | None:
        raise ValueError(f"leaf {self.index} fails")

    @strawberry.field
    def must(self) -> str:
        if self.index == 2:
            raise ValueError("must fails at 2")
        return f"m{self.index}"

    @strawberry.field
    async def later(self, suffix: str = "") -> str:
        await asyncio.sleep(0)
        return f"later{self.index}{suffix}"

    @strawberry.field
    async def later_must(self) -> str:
        await asyncio.sleep(0)
        if self.index == 1:
            return None  # type: ignore[return-value]
        return "ok"

    @strawberry.field
    def bad_int(self) -> int | None:
        return 2**40 if self.index == 0 else self.index

    @strawberry.field
    def bad_string(self) -> str | None:
        return 42  # type: ignore[return-value]  # coerced by String like graphql-core does

    @strawberry.field
    def not_list(self) -> list[int] | None:
        return 5  # type: ignore[return-value]


@strawberry.input
class Range:
    low: int = 0
    high: int = 10


@strawberry.type
class Branch:
    label: str

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:
        return f"{info.field_name}@{info.path.as_list()} {info.variable_values}"

    @strawberry.field
    def span(self, range: Range, colour: Colour = Colour.BLUE) -> str:
        range.low += 1  # a resolver mutating its argument must not change the next call's
        return f"{range.low}-{range.high}-{colour.value}"

    @strawberry.field
    def parent_label(self, root: Branch, times: int = 1) -> str:
        return root.label * times

    @strawberry.field
    def leaves(self, count: int = 3) -> list[Leaf]:
        return [Leaf(name=f"leaf{i}", index=i) for i in range(count)]

    @strawberry.field
    async def async_leaves(self) -> list[Leaf | None]:
        await asyncio.sleep(0)
        return [Leaf(name="a", index=0), None, Leaf(name="c", index=2)]

    @strawberry.field
    def strict_leaves(self) -> list[Leaf] | None:
        return [Leaf(name="a", index=0), None, Leaf(name="c", index=2)]  # type: ignore[list-item]

    @strawberry.field
    def grid(self) -> list[list[int | None]]:
        return [[1, None], [3]]

    @strawberry.field
    async def awaitable_items(self) -> list[int]:
        async def item(i: int) -> int:
            await asyncio.sleep(0)
            if i == 1:
                raise ValueError("item 1")
            return i

        return [item(i) for i in range(3)]  # type: ignore[misc]


Thing = Annotated[Leaf | Branch, strawberry.union("Thing")]


@strawberry.type
class Query:
    @strawberry.field
    def branch(self, label: str = "b") -> Branch:
        return Branch(label=label)

    @strawberry.field
    async def maybe_branch(self) -> Branch | None:
        await asyncio.sleep(0)
        return Branch(label="maybe")

    @strawberry.field
    def broken(self) -> Branch:
        raise RuntimeError("root broken")

    @strawberry.field
    def named(self) -> Named:
        return Leaf(name="n", index=9)

    @strawberry.field
    def things(self) -> list[Thing]:
        return [Leaf(name="t", index=7), Branch(label="t")]

    @strawberry.field
    def hello(self) -> str:
        return "hi"


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    # The gateway's parser cache hands the same document node to repeated queries: plans are
    # cached by operation node.
    planned = strawberry.Schema(
        query=Query,
        execution_context_class=plan_executor_class(),
        extensions=[ParserCache],
    )
    return planned, strawberry.Schema(query=Query)


def _shape(result: ExecutionResult) -> tuple[Any, list[tuple[str, Any, Any]]]:
    errors = [
        (e.message, e.path, [(loc.line, loc.column) for loc in e.locations or []])
        for e in result.errors or []
    ]
    return result.data, errors


DOCUMENTS: dict[str, str | dict[str, Any]] = {
    "plain": "{ hello branch { label leaves { name index colour at } } }",
    "aliases and args": """{ a: branch(label: "x") { label } b: branch { l: label
        leaves(count: 2) { index later(suffix: "!") x: later } } }""",
    "fragments": """query Q { ...Top branch { ...B ... on Branch { label } } }
        fragment Top on Query { hello }
        fragment B on Branch { leaves { ... on Named { name } ...L } }
        fragment L on Leaf { index __typename }""",
    "merged fields": "{ branch { leaves { index } leaves { name index } } }",
    "a union's fragment on a member": "{ branch { ... on Thing { ... on Branch { label } } } }",
    "nullable error": "{ branch { leaves { index fails } } }",
    "non-null error bubbles to the list item": "{ branch { leaves { index must } } }",
    "async non-null null": "{ branch { leaves { laterMust } } }",
    "async list with null items": "{ branch { asyncLeaves { name must } } }",
    "non-null list items": "{ branch { strictLeaves { name } } }",
    "root non-null error": "{ hello broken { label } }",
    "async root": "{ maybeBranch { label leaves { later } } }",
    "scalar coercion": "{ branch { leaves { badInt badString } } }",
    "not a list": "{ branch { leaves { notList } } }",
    "nested lists": "{ branch { grid } }",
    "awaitable items": "{ branch { awaitableItems } }",
    "typename": "{ __typename branch { __typename } }",
    "info, input objects, enums, root": """{ branch { where leaves { index } }
        a: branch { span(range: {high: 3}) parentLabel(times: 2) }
        b: branch(label: "bb") { span(range: {high: 3}, colour: RED) parentLabel } }""",
    "variables": {
        "query": """query V($n: Int!, $s: String) {
            branch { leaves(count: $n) { later(suffix: $s) } } }""",
        "variables": {"n": 2, "s": "?"},
    },
}
# These fall back to graphql-core (interface, directive, introspection): answers still match.
FALLBACKS: dict[str, str] = {
    "interface": "{ named { name ... on Leaf { index } } }",
    "directive": "query D($x: Boolean!) { hello @include(if: $x) branch { label } }",
    "introspection": "{ __schema { queryType { name } } }",
}


def _plans(schema: strawberry.Schema) -> list[bool]:
    """Per cached operation, whether it has a plan."""
    plans = schema.execution_context_class.plans  # type: ignore[union-attr]
    return [plan is not None for plan in plans.values()]


@pytest.mark.parametrize("name", [*DOCUMENTS, *FALLBACKS])
async def test_plan_executor_answers_as_graphql_core(name: str) -> None:
    document = DOCUMENTS.get(name) or FALLBACKS[name]
    if isinstance(document, str):
        query, variables = document, {"x": True}
    else:
        query, variables = document["query"], document["variables"]
    planned, reference = _schemas()
    got = await planned.execute(query, variable_values=variables)
    expected = await reference.execute(query, variable_values=variables)
    assert _shape(got) == _shape(expected)
    # The plan is cached: a second run (arguments converted once, when literal) answers alike.
    assert _shape(await planned.execute(query, variable_values=variables)) == _shape(expected)
    assert got.data is not None or got.errors
    assert _plans(planned) == [name in DOCUMENTS]


async def test_plans_are_compiled_once_and_only_for_what_they_cover() -> None:
    planned, _ = _schemas()
    for _ in range(3):
        await planned.execute("{ branch { label } }")
    assert _plans(planned) == [True]
    await planned.execute("{ named { name } }")
    await planned.execute("query D($x: Boolean!) { hello @skip(if: $x) }", {"x": False})
    assert _plans(planned) == [True, False, False]


async def test_each_schema_has_its_own_plans() -> None:
    first, second = _schemas()[0], _schemas()[0]
    await first.execute("{ hello }")
    assert (_plans(first), _plans(second)) == ([True], [])


@strawberry.type
class Race:
    """Two sibling fields that fail in the opposite order of their paths."""

    @strawberry.field
    async def alpha(self, info: strawberry.Info) -> str | None:
        await info.context["beta_failed"].wait()
        raise ValueError("alpha fails second")

    @strawberry.field
    async def beta(self, info: strawberry.Info) -> str | None:
        await asyncio.sleep(0)
        info.context["beta_failed"].set()
        raise ValueError("beta fails first")


@strawberry.type
class RaceQuery:
    @strawberry.field
    def race(self) -> Race:
        return Race()

    @strawberry.field
    def races(self) -> list[Race]:
        return [Race(), Race()]


RACE = "{ races { alpha beta } race { beta alpha } }"
# A directive: graphql-core's executor runs it, and builds the response in the same place.
RACE_FALLBACK = (
    "query R($x: Boolean!) { races { alpha beta @include(if: $x) } race { beta alpha } }"
)
SORTED_PATHS = [
    ["race", "alpha"],
    ["race", "beta"],
    ["races", 0, "alpha"],
    ["races", 0, "beta"],
    ["races", 1, "alpha"],
    ["races", 1, "beta"],
]


async def _error_paths(schema: strawberry.Schema, query: str) -> list[Any]:
    result = await schema.execute(
        query, variable_values={"x": True}, context_value={"beta_failed": asyncio.Event()}
    )
    assert result.data is not None
    return [error.path for error in result.errors or []]


@pytest.mark.parametrize("query", [RACE, RACE_FALLBACK], ids=["planned", "fallback"])
async def test_errors_come_sorted_by_path_whatever_order_fields_fail_in(query: str) -> None:
    planned = strawberry.Schema(query=RaceQuery, execution_context_class=plan_executor_class())
    reference = strawberry.Schema(query=RaceQuery)
    # graphql-core lists them as they fail: every `beta` before every `alpha`.
    unsorted = await _error_paths(reference, query)
    assert [path[-1] for path in unsorted] == ["beta"] * 3 + ["alpha"] * 3
    assert await _error_paths(planned, query) == SORTED_PATHS
    assert _plans(planned) == [query == RACE]


def test_error_order_puts_no_path_first_then_paths_then_locations() -> None:
    a, b = SourceLocation(1, 3), SourceLocation(1, 5)

    def error(path: list[str | int] | None, *at: SourceLocation) -> GraphQLError:
        located = GraphQLError("e", path=path)
        located.locations = list(at)
        return located

    errors = [
        error(["x", "b"]),
        error(["x", 1], b),
        error(["x", 1], a),
        error(["x", 0]),
        error(["x"]),
        error(None, b),
        error(None, a),
    ]
    ordered = sorted(errors, key=_error_order)
    assert [(e.path, e.locations) for e in ordered] == [
        (None, [a]),
        (None, [b]),
        (["x"], []),
        (["x", 0], []),
        (["x", 1], [a]),
        (["x", 1], [b]),
        (["x", "b"], []),
    ]
