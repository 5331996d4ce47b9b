"""Demand control: estimate a document's upstream calls before it runs, refuse it over budget.

The estimate walks the selected operation (fragments, inline fragments, `@skip`/`@include`,
variables and their defaults resolved) and adds up what each selected field declares beside its
resolver (needs.py): a field without a declaration makes no call of its own and costs what is
selected below it. On an abstract type the costliest possible object type counts. Aliases count
separately although identical sub-requests de-duplicate at run time, and so do entities primed by
a list: the estimate never undercounts by that. Walks that the data decides (models/clients past
1000 names, backward thread pages past 200, by-id fallbacks) count as one call each; the loaders'
`CallBudget` stops any excess at run time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    SelectionSetNode,
    Undefined,
    get_named_type,
    is_abstract_type,
    value_from_ast_untyped,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from aibridge_graphql.core.errors import COST_ESTIMATED_TOO_EXPENSIVE
from aibridge_graphql.schema.engine.compat import graphql_core_schema, validate_document
from aibridge_graphql.schema.engine.needs import needs_of
from aibridge_graphql.schema.engine.operations import OperationCache
from aibridge_graphql.schema.engine.selections import Selection, collect_fields
from aibridge_graphql.settings import Settings

__all__ = [
    "EstimateCache",
    "Estimator",
    "FieldEstimate",
    "Scope",
    "UpstreamCallBudget",
    "estimate_upstream_calls",
    "estimator_for",
]


@dataclass(frozen=True, slots=True)
class Scope:
    """What the enclosing fields decide for the ones below."""

    page: int = 1  # items of the enclosing connection's page
    exact: bool = True  # the entities here carry whole-entity aggregates (no filter applied)


class Estimator:
    """One document's walk: its fragments, its variables (defaults applied) and the limits."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        settings: Settings,
    ) -> None:
        self.schema = schema
        self.settings = settings
        self._fragments = fragments
        self._variables = variables

    def arg(self, field: FieldNode, name: str) -> Any:
        """The argument's value as given (variables resolved), or None when absent."""
        for argument in field.arguments or ():
            if argument.name.value == name:
                value = value_from_ast_untyped(argument.value, self._variables)
                return None if value is Undefined else value
        return None

    def page(self, field: FieldNode, *names: str) -> int:
        """The page size the resolver will use: the first size argument given, or the default."""
        for name in names:
            value = self.arg(field, name)
            if value is None:
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, int) and not isinstance(value, bool):
                # Out of range is refused by the resolver; clamping keeps an upper bound.
                return max(0, min(value, self.settings.max_page_size))
            break  # not an Int: variable coercion refuses the request before any call
        return self.settings.default_page_size

    def _included(self, node: Selection) -> bool:
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next(
                (
                    value_from_ast_untyped(a.value, self._variables)
                    for a in directive.arguments or ()
                    if a.name.value == "if"
                ),
                None,
            )
            if (name == "skip" and condition is True) or (name == "include" and condition is False):
                return False
        return True

    def fields(
        self, sets: Sequence[SelectionSetNode], type_: GraphQLObjectType
    ) -> dict[str, list[FieldNode]]:
        """Fields by response key, as execution merges them (graphql-core's `collect_fields`)."""
        fields: dict[str, list[FieldNode]] = {}
        seen: set[str] = set()
        for selection_set in sets:
            collect_fields(
                self.schema, self._fragments, type_, selection_set, fields, self._included, seen
            )
        return fields

    def object_type(self, name: str) -> GraphQLObjectType:
        """A named object type of the schema."""
        type_ = self.schema.get_type(name)
        assert isinstance(type_, GraphQLObjectType)
        return type_

    def cost_on(
        self, sets: Sequence[SelectionSetNode], type_: GraphQLNamedType | None, scope: Scope
    ) -> int:
        """Calls made by `sets` selected on one value of `type_`."""
        if not sets:
            return 0
        if isinstance(type_, GraphQLObjectType):
            return self._object_cost(sets, type_, scope)
        if type_ is not None and is_abstract_type(type_):
            possible = self.schema.get_possible_types(type_)
            return max((self._object_cost(sets, t, scope) for t in possible), default=0)
        return 0

    def _object_cost(
        self, sets: Sequence[SelectionSetNode], type_: GraphQLObjectType, scope: Scope
    ) -> int:
        total = 0
        shared: set[str] = set()
        made: set[str] = set()
        for nodes in self.fields(sets, type_).values():
            definition = type_.fields.get(nodes[0].name.value)
            if definition is None:  # `__typename` and introspection: no upstream call
                continue
            estimate = FieldEstimate(self, nodes, definition, scope)
            needs = needs_of(definition)
            if needs is None:
                total += estimate.children()
                continue
            calls = needs.calls
            total += calls + estimate.children() if isinstance(calls, int) else calls(estimate)
            if needs.shares is not None:
                shared.add(needs.shares)
            if needs.makes is not None:
                made.add(needs.makes)
        return total + len(shared - made)  # each shared call once per object, if not made


class FieldEstimate:
    """One selected field, as a declared rule (needs.py) sees it."""

    __slots__ = ("definition", "estimator", "nodes", "scope", "sets")

    def __init__(
        self,
        estimator: Estimator,
        nodes: list[FieldNode],
        definition: GraphQLField,
        scope: Scope,
    ) -> None:
        self.estimator = estimator
        self.nodes = nodes
        self.definition = definition
        self.scope = scope
        self.sets = [node.selection_set for node in nodes if node.selection_set]

    @property
    def field(self) -> FieldNode:
        """The first node of the field (where its arguments are read)."""
        return self.nodes[0]

    def arg(self, name: str) -> Any:
        """The argument's value (variables resolved), or None."""
        return self.estimator.arg(self.field, name)

    def list_arg(self, name: str) -> list[Any]:
        """A list argument; GraphQL input coercion makes a single value a one-item list."""
        value = self.arg(name)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def page(self, *names: str) -> int:
        """The page size its resolver will use (`Estimator.page`)."""
        return self.estimator.page(self.field, *names)

    def children(self, *, page: int | None = None, exact: bool | None = None) -> int:
        """The calls of what is selected below this field, in this scope or one narrowed."""
        scope = self.scope
        if page is not None or exact is not None:
            scope = Scope(
                page=scope.page if page is None else page,
                exact=scope.exact if exact is None else exact,
            )
        return self.estimator.cost_on(self.sets, get_named_type(self.definition.type), scope)

    def cost_as(self, type_name: str) -> int:
        """The calls of what is selected below this field on an object of `type_name`, in a
        fresh scope (a lookup by id)."""
        return self.estimator.cost_on(self.sets, self.estimator.object_type(type_name), Scope())

    def selects(self, name: str) -> bool:
        """Whether a field `name` is selected directly below this one (on an object type)."""
        type_ = get_named_type(self.definition.type)
        if not isinstance(type_, GraphQLObjectType):
            return False
        fields = self.estimator.fields(self.sets, type_)
        return any(node.name.value == name for nodes in fields.values() for node in nodes)


def _variables_with_defaults(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    operation = get_operation_ast(document, operation_name)
    values: dict[str, Any] = {}
    if operation is not None:
        for definition in operation.variable_definitions or ():
            if definition.default_value is not None:
                default = value_from_ast_untyped(definition.default_value)
                values[definition.variable.name.value] = default
    values.update(variables)
    return operation, values


def estimator_for(info: GraphQLResolveInfo[Any], settings: Settings) -> FieldEstimate:
    """The field a resolver runs, as the estimate saw it: a resolver that decides what to call
    with the same rule as its estimate makes the count what runs."""
    # Strawberry hands resolvers the coerced values as a plain dict, not graphql-core's container.
    variables: Any = info.variable_values
    values = dict(getattr(variables, "coerced", variables))
    estimator = Estimator(info.schema, info.fragments, values, settings)
    definition = info.parent_type.fields[info.field_name]
    return FieldEstimate(estimator, list(info.field_nodes), definition, Scope())


def estimate_upstream_calls(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    settings: Settings,
) -> int:
    """An upper bound of the upstream calls the operation would make (module docstring)."""
    operation, values = _variables_with_defaults(
        document, operation_name, variables if isinstance(variables, Mapping) else {}
    )
    if operation is None:
        return 0  # execution reports the missing or ambiguous operation itself
    root = schema.get_root_type(operation.operation)
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    estimator = Estimator(schema, fragments, values, settings)
    return estimator.cost_on([operation.selection_set], root, Scope())


class EstimateCache:
    """The last estimates, per document, operation and variables: a view repeats its query."""

    def __init__(self, max_size: int = 256) -> None:
        self._items: OperationCache[int] = OperationCache(max_size)

    def estimate(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        *,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        settings: Settings,
    ) -> int:
        """`estimate_upstream_calls`, remembered."""

        def estimate() -> int:
            return estimate_upstream_calls(
                schema,
                document,
                operation_name=operation_name,
                variables=variables,
                settings=settings,
            )

        try:
            shown = json.dumps(variables, sort_keys=True)
        except (TypeError, ValueError):
            return estimate()
        return self._items.get(document, estimate, extra=(operation_name, shown))


class UpstreamCallBudget(SchemaExtension):
    """Refuse a valid document whose estimate exceeds `settings.upstream_call_budget`.

    Variables change the estimate, so it cannot be a (cached) validation rule; it runs in the
    validation step, on the validation result, and its error is one more validation error: no
    data, no execution, no upstream call, the same HTTP status.
    """

    def __init__(self, *, settings: Settings, estimates: EstimateCache | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._estimates = estimates or EstimateCache(max_size=0)

    def on_validate(self) -> Iterator[None]:
        # Strawberry decides on the errors before the hooks' after-yield parts run, so this works
        # before the yield: on the result `ValidationCache` (listed earlier) left, else on its own.
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            context.pre_execution_errors = validate_document(
                graphql_core_schema(context.schema), document, context.validation_rules
            )
        if document is not None and not context.pre_execution_errors:
            self._check(context, document)
        yield

    def _check(self, context: ExecutionContext, document: DocumentNode) -> None:
        estimate = self._estimates.estimate(
            graphql_core_schema(context.schema),
            document,
            operation_name=context.operation_name,
            variables=context.variables,
            settings=self._settings,
        )
        budget = self._settings.upstream_call_budget
        if estimate > budget:
            message = (
                f"This query could make up to {estimate} upstream calls; the budget is {budget} "
                "per request. Ask for smaller pages or fewer nested lists, or split the query."
            )
            extensions = {
                "code": COST_ESTIMATED_TOO_EXPENSIVE,
                "estimate": estimate,
                "budget": budget,
            }
            # A new list: the one there may be the validation cache's own.
            context.pre_execution_errors = [GraphQLError(message, extensions=extensions)]
