"""The canary: every library internal the engine (compat.py) and the record projection
(upstream/projection.py) rely on, each checked by name, so an upgrade that removes one fails
here saying which (docs/development.md: pins and `make lock`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import strawberry
from graphql import GraphQLObjectType, parse
from pydantic import BaseModel

from aibridge_graphql.schema.engine import compat
from aibridge_graphql.upstream import projection


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Item(Named):
    @strawberry.field
    def loud(self, info: strawberry.Info) -> str:
        SEEN["info"] = info
        return self.name.upper()


@strawberry.type
class Query:
    @strawberry.field
    def item(self) -> Item:
        return Item(name="x")


SEEN: dict[str, Any] = {}
SCHEMA = strawberry.Schema(query=Query)
CORE = compat.graphql_core_schema(SCHEMA)


class Model(BaseModel):
    records: list[int] = []


def _item_type() -> GraphQLObjectType:
    item = CORE.get_type("Item")
    assert isinstance(item, GraphQLObjectType)
    return item


def _info() -> Any:
    SEEN.clear()
    result = SCHEMA.execute_sync("{ item { loud } }")
    assert result.errors is None, result.errors
    return SEEN["info"]


def _executor() -> Any:
    executor = compat.ExecutionContextBase.build(CORE, parse("{ item { name } }"))
    assert not isinstance(executor, list), executor
    return executor


def _drops_async_helpers() -> bool:
    executor = _executor()
    present = hasattr(executor, "async_helpers")
    compat.drop_async_helpers(executor)  # deleting it must work
    return present


CANARIES: dict[str, Callable[[], object]] = {
    # Strawberry
    "graphql-core field extensions['strawberry-definition']": lambda: (
        compat.strawberry_field_of(_item_type().fields["name"]) is not None
    ),
    "StrawberryField.metadata": lambda: hasattr(
        compat.strawberry_field_of(_item_type().fields["name"]), "metadata"
    ),
    "default resolver's `_is_default`": lambda: (
        compat.is_default_resolver(_item_type().fields["name"])
        and not compat.is_default_resolver(_item_type().fields["loud"])
    ),
    "GraphQLSchema._strawberry_schema.schema_converter._exception_handler_specs": lambda: (
        compat.exception_handlers(CORE) is not None
    ),
    "StrawberryConfig.info_class": lambda: compat.strawberry_config(CORE).info_class is not None,
    "schema_converter.scalar_registry": lambda: compat.scalar_registry(CORE) is not None,
    "Schema._schema": lambda: CORE.query_type is not None,
    "Info._raw_info": lambda: compat.raw_info(_info()).field_name == "loud",
    "Info(_raw_info=, _field=)": lambda: (
        compat.make_info(
            compat.strawberry_config(CORE).info_class,
            compat.raw_info(_info()),
            compat.strawberry_field_of(_item_type().fields["loud"]),  # type: ignore[arg-type]
        ).field_name
        == "loud"
    ),
    "StrawberryField.init/.repr/.compare (dataclass flags)": lambda: all(
        hasattr(compat.strawberry_field_of(_item_type().fields["name"]), flag)
        for flag in ("init", "repr", "compare")
    ),
    "StrawberryField.base_resolver/.extensions/.python_name/.arguments/.get_result": lambda: all(
        hasattr(compat.strawberry_field_of(_item_type().fields["loud"]), name)
        for name in ("base_resolver", "extensions", "python_name", "arguments", "get_result")
    ),
    "StrawberryResolver info/self/parent/root parameters": lambda: all(
        hasattr(
            compat.strawberry_field_of(_item_type().fields["loud"]).base_resolver,  # type: ignore[union-attr]
            name,
        )
        for name in ("info_parameter", "self_parameter", "parent_parameter", "root_parameter")
    ),
    "convert_arguments(values, arguments, scalar_registry, config, info)": lambda: (
        list(inspect.signature(compat.convert_arguments).parameters)[:4]
        == ["value", "arguments", "scalar_registry", "config"]
    ),
    "strawberry.types.nodes.convert_arguments/convert_directives(info, nodes)": lambda: all(
        list(inspect.signature(f).parameters)[:2] == ["info", "nodes"]
        for f in (compat.convert_node_arguments, compat.convert_node_directives)
    ),
    "validate_document(schema, document, rules)": lambda: (
        compat.validate_document(CORE, parse("{ item { name } }"), ()) == []
    ),
    "extension context managers: HOOK_NAME and get_hook": lambda: all(
        isinstance(getattr(cls, "HOOK_NAME", None), str) and hasattr(cls, "get_hook")
        for cls in (
            compat.OperationContextManager,
            compat.ValidationContextManager,
            compat.ParsingContextManager,
            compat.ExecutingContextManager,
        )
    ),
    "WrappedHook(extension, hook, is_async)": lambda: (
        list(inspect.signature(compat.WrappedHook).parameters) == ["extension", "hook", "is_async"]
    ),
    "SchemaExtensionsRunner(execution_context, extensions) and its stage methods": lambda: all(
        hasattr(compat.SchemaExtensionsRunner, stage)
        for stage in ("operation", "validation", "parsing", "executing")
    ),
    # graphql-core
    "ExecutionContext.async_helpers": lambda: _drops_async_helpers(),
    "ExecutionContext internals the plan runs with": lambda: all(
        hasattr(_executor(), name)
        for name in (
            "collected_errors",
            "settle_in_background",
            "build_resolve_info",
            "is_awaitable",
            "hide_suggestions",
            "error_propagation",
            "abort_signal",
            "middleware_manager",
            "build_response",
        )
    ),
    "GraphQLObjectType.is_type_of(value, None) without an info": lambda: (
        _item_type().is_type_of is not None
        and compat.is_type_of(_item_type(), Item(name="x"))
        and not compat.is_type_of(_item_type(), object())
    ),
    "graphql.pyutils.gather_with_cancel": lambda: inspect.iscoroutinefunction(
        compat.gather_with_cancel
    ),
    # pydantic-core (upstream/projection.py)
    "__pydantic_core_schema__ layout (type 'model', cls, schema.fields)": lambda: (
        (schema := projection.core_schema_of(Model))["type"] == "model"
        and schema["cls"] is Model
        and "records" in schema["schema"]["fields"]
    ),
    "model construction (__dict__, __pydantic_extra__/_fields_set__/_private__)": lambda: (
        projection.construct_model(Model, ({"records": [1]}, None, {"records"}))
        == Model(records=[1])
    ),
}


@pytest.mark.parametrize("name", list(CANARIES))
def test_library_internal_is_still_there(name: str) -> None:
    try:
        present = CANARIES[name]()
    except Exception as error:  # the internal moved: say which, and how it broke
        pytest.fail(f"library internal gone: {name} ({type(error).__name__}: {error})")
    assert present, f"library internal changed: {name}"
