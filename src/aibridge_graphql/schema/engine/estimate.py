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
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    value_from_ast_untyped,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from aibridge_graphql.core.errors import COST_ESTIMATED_TOO_EXPENSIVE
from aibridge_graphql.schema.engine.compat import graphql_core_schema, validate_document
from aibridge_graphql.schema.engine.needs import Estimator, Scope
from aibridge_graphql.schema.engine.operations import OperationCache
from aibridge_graphql.settings import Settings

__all__ = ["EstimateCache", "UpstreamCallBudget", "estimate_upstream_calls"]


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
