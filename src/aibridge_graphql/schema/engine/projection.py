"""Which upstream record lists an operation reads, so its pages are parsed without the others.

An interceptions page is mostly token usages, prompts and tool usages, a session page mostly
agentic actions (`upstream/projection.py`); an operation none of whose fields is declared to read
them (`Needs.reads`, beside each resolver) has its pages parsed without them. The walk is the
estimate's and the plan's (`selections.collect_fields`), on every possible type of an abstract
one and whatever the directives say, so it can only over-include; a field that reads a list it
does not declare fails loudly (the model lacks the attribute), and
`tests/integration/test_gateway_projection.py` runs every field of the schema both ways.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from aibridge_graphql.schema.context import GatewayContext
from aibridge_graphql.schema.engine.compat import graphql_core_schema
from aibridge_graphql.schema.engine.needs import needs_of
from aibridge_graphql.schema.engine.operations import OperationCache
from aibridge_graphql.schema.engine.selections import collect_fields
from aibridge_graphql.upstream.projection import ALL_RECORDS

__all__ = ["RecordProjection", "unread_records"]


def unread_records(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> frozenset[str]:
    """The record lists no field of the operation is declared to read."""
    operation = get_operation_ast(document, operation_name)
    root = schema.get_root_type(operation.operation) if operation is not None else None
    if operation is None or root is None:
        return frozenset()  # execution reports it; nothing to narrow
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    read: set[str] = set()
    for reads in _reads(schema, fragments, [operation.selection_set], root):
        read.update(reads)
        if read >= ALL_RECORDS:
            break
    return ALL_RECORDS - read


def _reads(
    schema: GraphQLSchema,
    fragments: Mapping[str, FragmentDefinitionNode],
    sets: Sequence[SelectionSetNode],
    type_: GraphQLNamedType,
) -> Iterator[frozenset[str]]:
    """What each field selected by `sets` on `type_` (or under it) is declared to read."""
    if isinstance(type_, GraphQLObjectType):
        types: Sequence[GraphQLObjectType] = [type_]
    elif is_abstract_type(type_):
        types = schema.get_possible_types(type_)
    else:
        return
    for object_type in types:
        fields: dict[str, list[FieldNode]] = {}
        seen: set[str] = set()
        for selection_set in sets:
            collect_fields(schema, fragments, object_type, selection_set, fields, _all, seen)
        for nodes in fields.values():
            definition = object_type.fields.get(nodes[0].name.value)
            if definition is None:
                continue
            declared = needs_of(definition)
            if declared is not None and declared.reads:
                yield declared.reads
            subsets = [n.selection_set for n in nodes if n.selection_set]
            if subsets:
                yield from _reads(schema, fragments, subsets, get_named_type(definition.type))


def _all(_: object) -> bool:
    return True  # a skipped field may still be read: over-include


class RecordProjection(SchemaExtension):
    """Hands the request's context the record lists its operation never reads, before the
    operation runs: the loaders, built on first use, parse pages without them."""

    def __init__(self, *, cache: OperationCache[frozenset[str]]) -> None:
        super().__init__()
        self._cache = cache

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        context = execution.context
        if document is not None and isinstance(context, GatewayContext):
            schema = graphql_core_schema(execution.schema)
            name = execution.operation_name
            context.skip_records = self._cache.get(
                document, lambda: unread_records(schema, document, name), extra=name
            )
        yield
