"""Every field of the schema answers the same whether pages are parsed without unread record lists.

`schema/engine/projection.py` decides from the fields' declared needs which record lists a
document reads; a field that reads records it does not declare would fail (the parsed model lacks
them). Each leaf field reachable from the list roots is queried alone, once with the projection
and once with every record list parsed, and the two bodies must be equal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    is_leaf_type,
)

from aibridge_graphql.schema import build_schema
from aibridge_graphql.schema.engine import projection
from aibridge_graphql.settings import Settings
from tests.support.gateway_helpers import Gateway, serve_gateway

SCHEMA = build_schema(Settings())._schema

ROOTS = {
    "interceptions": "interceptions(first: 4)",
    "sessions": "sessions(first: 3)",
    "session": "session(sessionId: $id)",
}
MAX_DEPTH = 6
# Page sizes for nested connections, small enough for the call budget.
PAGED = {"threads": "threads(first: 2)"}
# A connection's `edges { node }` are its `nodes` again.
SKIP = {"edges"}


def _named(type_: GraphQLOutputType) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def leaf_paths(schema: GraphQLSchema) -> Iterator[list[str]]:
    """Every path from a root to a leaf field, through object types only, no type twice."""

    def walk(type_: GraphQLObjectType, path: list[str], seen: set[str]) -> Iterator[list[str]]:
        for name, field in type_.fields.items():
            if name in SKIP or any(isinstance(a.type, GraphQLNonNull) for a in field.args.values()):
                continue  # nothing to pass it here, or seen through `nodes`
            target = _named(field.type)
            step = PAGED.get(name, name)
            if is_leaf_type(target):
                yield [*path, step]
            elif (
                isinstance(target, GraphQLObjectType)
                and target.name not in seen
                and len(path) < MAX_DEPTH
            ):
                yield from walk(target, [*path, step], seen | {target.name})

    query = schema.query_type
    assert query is not None
    for root, call in ROOTS.items():
        target = _named(query.fields[root].type)
        yield from walk(target, [call], {target.name})


def document(path: list[str]) -> str:
    selection = path[-1]
    for step in reversed(path[:-1]):
        selection = f"{step} {{ {selection} }}"
    variables = "($id: String!)" if path[0].startswith("session(") else ""
    return f"query{variables} {{ {selection} }}"


async def a_session_id(gw: Gateway) -> str:
    data = await gw.data("{ sessions(first: 1) { nodes { sessionId } } }")
    session_id: str = data["sessions"]["nodes"][0]["sessionId"]
    return session_id


async def test_every_leaf_answers_the_same_with_and_without_the_projection(
    standin_url: str, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = list(leaf_paths(SCHEMA))
    assert len(paths) > 100
    projected = 0
    async with (
        serve_gateway(standin_url, tokens["admin"]) as gw,
        serve_gateway(standin_url, tokens["admin"]) as everything,
    ):
        variables = {"id": await a_session_id(gw)}
        real = projection.unread_records
        for path in paths:
            query = document(path)
            with monkeypatch.context() as patched:
                patched.setattr(projection, "unread_records", lambda *_: frozenset())
                expected = await everything.query(query, variables)
            got = await gw.query(query, variables)
            assert got == expected, query
            # Some leaves fail on purpose (an era without the spend API); none unexpectedly.
            codes = {error["extensions"]["code"] for error in got.get("errors", ())}
            assert "INTERNAL_SERVER_ERROR" not in codes, (query, got["errors"])
            projected += bool(real_unread(real, query))
    # Most leaves read no record list: the projection was on for them.
    assert projected > len(paths) / 2


def real_unread(real: Any, query: str) -> frozenset[str]:
    from graphql import parse

    unread: frozenset[str] = real(SCHEMA, parse(query), None)
    return unread
