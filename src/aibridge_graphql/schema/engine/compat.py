"""Every private or undocumented part of Strawberry and graphql-core the gateway relies on.

The GraphQL engine builds on library internals for speed; it (and the schema's types) reach them
only through this module, so an upgrade that moves one breaks here, and the canary test
(tests/unit/schema/engine/test_compat.py) names the attribute that went. pydantic-core's schema
layout, which the record projection edits, is the one internal below the faces: it stays in
upstream/projection.py (the layers keep GraphQL libraries out of upstream/), under the same
canary. pyproject.toml pins these libraries to the ranges the suite passed with.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField
from strawberry.types.nodes import convert_arguments as convert_node_arguments
from strawberry.types.nodes import convert_directives as convert_node_directives

__all__ = [
    "STRAWBERRY_FIELD_KEY",
    "ExecutingContextManager",
    "ExecutionContextBase",
    "ExtensionContextManagerBase",
    "OperationContextManager",
    "ParsingContextManager",
    "SchemaExtensionsRunner",
    "ValidationContextManager",
    "WrappedHook",
    "convert_arguments",
    "convert_node_arguments",
    "convert_node_directives",
    "drop_async_helpers",
    "exception_handlers",
    "gather_with_cancel",
    "graphql_core_schema",
    "hide_from_dataclass",
    "is_default_resolver",
    "is_type_of",
    "make_info",
    "raw_info",
    "scalar_registry",
    "strawberry_config",
    "strawberry_field_of",
    "validate_document",
]

# -- Strawberry -------------------------------------------------------------------------------

# Where Strawberry keeps a field's `StrawberryField` on the graphql-core field it converted.
STRAWBERRY_FIELD_KEY = "strawberry-definition"
# Strawberry's executor class (graphql-core's `ExecutionContext` with its own error handling).
ExecutionContextBase = StrawberryGraphQLCoreExecutionContext


def strawberry_field_of(definition: GraphQLField) -> StrawberryField | None:
    """The Strawberry field a graphql-core field was converted from, if any."""
    field = definition.extensions.get(STRAWBERRY_FIELD_KEY)
    return field if isinstance(field, StrawberryField) else None


def is_default_resolver(definition: GraphQLField) -> bool:
    """Whether Strawberry gave the field its default resolver (a plain attribute read)."""
    return bool(getattr(definition.resolve, "_is_default", False))


def _strawberry_schema(schema: GraphQLSchema) -> Any:
    return getattr(schema, "_strawberry_schema", None)


def exception_handlers(schema: GraphQLSchema) -> Any:
    """The schema's custom exception handlers (a sequence), or None on an unknown Strawberry."""
    converter = getattr(_strawberry_schema(schema), "schema_converter", None)
    return getattr(converter, "_exception_handler_specs", None)


def strawberry_config(schema: GraphQLSchema) -> Any:
    """The `StrawberryConfig` of the Strawberry schema behind a graphql-core schema."""
    return _strawberry_schema(schema).config


def scalar_registry(schema: GraphQLSchema) -> Any:
    """The scalar registry Strawberry converts arguments with."""
    return _strawberry_schema(schema).schema_converter.scalar_registry


def graphql_core_schema(schema: Any) -> GraphQLSchema:
    """The graphql-core schema of a Strawberry schema."""
    core: GraphQLSchema = schema._schema
    return core


def raw_info(info: Any) -> GraphQLResolveInfo[Any]:
    """graphql-core's resolve info inside a Strawberry `Info`."""
    raw: GraphQLResolveInfo[Any] = info._raw_info
    return raw


def make_info(info_class: Any, raw: GraphQLResolveInfo[Any], field: StrawberryField) -> Any:
    """A Strawberry `Info` as Strawberry's resolver wrapper builds it."""
    return info_class(_raw_info=raw, _field=field)


def hide_from_dataclass(field: StrawberryField) -> None:
    """Keep a field out of the dataclass's `__init__`, `repr` and `==` (Strawberry's `init=False`
    is a hint for type checkers only; the dataclass machinery reads these flags)."""
    field.init = field.repr = field.compare = False


# -- graphql-core -----------------------------------------------------------------------------


def drop_async_helpers(executor: Any) -> None:
    """Break the cycle graphql-core's executor makes with bound methods of itself."""
    del executor.async_helpers


def is_type_of(type_: GraphQLObjectType, value: Any) -> bool:
    """`type_.is_type_of` without a resolve info: Strawberry's is an isinstance test that never
    reads it (true when the type has none)."""
    check = type_.is_type_of
    return check is None or bool(check(value, None))  # type: ignore[arg-type]
