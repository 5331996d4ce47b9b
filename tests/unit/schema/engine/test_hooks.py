"""The cached-hooks runner runs every kind of extension hook as Strawberry's own runner does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from aibridge_graphql.schema.engine.hooks import CachedHooksRunner, HookCache


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "hi"


def recording(calls: list[str]) -> list[type[SchemaExtension]]:
    class Generator(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            calls.append("generator operation before")
            yield
            calls.append("generator operation after")

        def on_parse(self) -> Iterator[None]:
            calls.append("generator parse")
            yield

    class AsyncGenerator(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            calls.append("async operation before")
            yield
            calls.append("async operation after")

        async def on_execute(self) -> AsyncIterator[None]:
            calls.append("async execute")
            yield

    class Plain(SchemaExtension):
        def on_validate(self) -> None:  # type: ignore[override]
            calls.append("plain validate")

    class Coroutine(SchemaExtension):
        async def on_operation(self) -> None:  # type: ignore[override]
            calls.append("coroutine operation")

    return [Generator, AsyncGenerator, Plain, Coroutine]


class CachedSchema(strawberry.Schema):
    cache = HookCache()

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return CachedHooksRunner(execution_context, extensions, cache=self.cache)


async def run(schema_class: type[strawberry.Schema]) -> list[str]:
    calls: list[str] = []
    schema = schema_class(query=Query, extensions=recording(calls))
    for _ in range(2):  # the second request uses what the first one cached
        result = await schema.execute("{ hello }")
        assert result.data == {"hello": "hi"}
        calls.append("--")
    return calls


async def test_hooks_run_in_strawberry_order_every_request() -> None:
    expected: Any = await run(strawberry.Schema)
    assert {"plain validate", "async execute", "coroutine operation"} <= set(expected)
    assert await run(CachedSchema) == expected
