"""Demand control: estimate a document's upstream calls before it runs, refuse it over budget.

The estimate walks the selected operation (fragments, inline fragments, `@skip`/`@include`,
variables and their defaults resolved) and counts what the resolvers would send, an upper bound:
- `sessions`/`interceptions` (on `Query` or `User`): 1, and everything under their `nodes` or
  `edges` once per item of the page (`first`, else `AIBRIDGE_DEFAULT_PAGE_SIZE`, at most
  `AIBRIDGE_MAX_PAGE_SIZE`); `session(sessionId:)`: 1, or 0 when its `GET /sessions/{id}`
  (forward `threads` or network fields, counted below) answers everything selected of it (see
  `session_by_detail`); `models`, `clients`: 1 each (paged by 1000 upstream; further pages are
  left to the run-time cap);
- `aiSpend` (on `Query` or `User`) and `aiGroupSpend`: 1 each (Coder's spend routes);
- `usage`: its `maxUpstreamCalls` (default: the whole budget), the most its scan may make;
- `Session.tokenUsage { cost }`: 1 per session (its threads' walk; past 200 threads, the
  run-time cap counts the rest);
- `Session.threads`: 1 per session (`first` or `last` items under it); the session-detail
  network fields (`networkCallLogs`, `networkTopDomains`, `networkDomainCount`): 1 per session
  together, 0 when `threads` is also selected (they share its call); `providers`: 1;
  `ThreadConnection.totalCount`: 1 under a `sessions` list filtered on more than
  `initiator`/`sessionId`, else free;
- `node(id:)`, each `nodes(ids:)` item and each `_entities` representation: 1 (2 for a Thread ID:
  its page and its session), plus what is selected on that object's type;
- everything else (`agenticActions`, `initiator`, `pageInfo`, ...) comes with its parent: free.
On an abstract type the costliest possible object type counts. Aliases count separately although
identical sub-requests de-duplicate at run time, and so do entities primed by a list: the estimate
never undercounts by that. Walks that the data decides (models/clients past 1000 names, backward
thread pages past 200, by-id fallbacks) count as one call each; the loaders' `CallBudget` stops
any excess at run time.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
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
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from aibridge_graphql.core.errors import COST_ESTIMATED_TOO_EXPENSIVE, BadUserInput
from aibridge_graphql.core.refs import InterceptionRef, SessionRef, ThreadRef, UserRef
from aibridge_graphql.schema.ids import decode_global_id
from aibridge_graphql.schema.selections import Selection, collect_fields
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.requests import session_path_exact

_CONNECTIONS = frozenset({"SessionConnection", "InterceptionConnection", "ThreadConnection"})
# Session filter keys that select whole sessions (exact aggregates, see `SessionFilter`).
_WHOLE_SESSION_KEYS = frozenset({"initiator", "sessionId"})
# What one ID lookup costs, by the type its global ID names (see `resolve_node`).
_REF_COST: dict[type[object], tuple[str, int]] = {
    UserRef: ("User", 1),
    SessionRef: ("Session", 1),
    InterceptionRef: ("Interception", 1),
    ThreadRef: ("Thread", 2),
}
# Types `_entities` resolves through the loaders (`resolve_reference`), one call each.
_ENTITY_TYPES = frozenset({"User", "Session", "Interception"})
_MAX_NODES = 100  # `nodes(ids:)` rejects longer lists without calling upstream
# Session fields read from its `GET /sessions/{id}` (one call for all of them and `threads`).
_NETWORK_FIELDS = frozenset({"networkCallLogs", "networkTopDomains", "networkDomainCount"})
# Session fields only a `GET /sessions` item carries (`GET /sessions/{id}` lacks them), and the
# one ThreadConnection field that reads the session's thread count.
_LIST_ONLY = frozenset({"lastActiveAt", "lastPrompt", "threadCount"})
# The fields through which a selection reaches the same session again (a thread's `session`).
_BACK_TO_SESSION = frozenset(
    {
        ("Session", "threads"),
        ("ThreadConnection", "nodes"),
        ("ThreadConnection", "edges"),
        ("ThreadEdge", "node"),
        ("Thread", "session"),
    }
)


@dataclass(frozen=True, slots=True)
class _Scope:
    """What the enclosing fields decide for the ones below."""

    page: int = 1  # items of the enclosing connection's page
    exact: bool = True  # sessions here carry whole-session aggregates


class _Estimator:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        settings: Settings,
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables
        self._settings = settings

    # -- arguments ----------------------------------------------------------------------------

    def _arg(self, field: FieldNode, name: str) -> Any:
        for argument in field.arguments or ():
            if argument.name.value == name:
                value = value_from_ast_untyped(argument.value, self._variables)
                return None if value is Undefined else value
        return None

    def _page(self, field: FieldNode, *names: str) -> int:
        """The page size the resolver will use: the first size argument given, or the default."""
        for name in names:
            value = self._arg(field, name)
            if value is None:
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, int) and not isinstance(value, bool):
                # Out of range is refused by the resolver; clamping keeps an upper bound.
                return max(0, min(value, self._settings.max_page_size))
            break  # not an Int: variable coercion refuses the request before any call
        return self._settings.default_page_size

    def _whole_sessions(self, field: FieldNode) -> bool:
        value = self._arg(field, "filter")
        if not isinstance(value, Mapping):
            return True
        return all(v is None for k, v in value.items() if k not in _WHOLE_SESSION_KEYS)

    def _list(self, field: FieldNode, name: str) -> list[Any]:
        value = self._arg(field, name)
        if value is None:
            return []
        # GraphQL input coercion makes a single value a one-item list.
        return list(value) if isinstance(value, list) else [value]

    # -- selections ---------------------------------------------------------------------------

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

    def cost_on(
        self, sets: list[SelectionSetNode], type_: GraphQLNamedType | None, scope: _Scope
    ) -> int:
        """Calls made by `sets` selected on one value of `type_`."""
        if not sets:
            return 0
        if isinstance(type_, GraphQLObjectType):
            return self._object_cost(sets, type_, scope)
        if type_ is not None and is_abstract_type(type_):
            possible = self._schema.get_possible_types(type_)
            return max((self._object_cost(sets, t, scope) for t in possible), default=0)
        return 0

    def _object_cost(
        self, sets: list[SelectionSetNode], type_: GraphQLObjectType, scope: _Scope
    ) -> int:
        fields = self._fields(sets, type_)
        total = 0
        names = {nodes[0].name.value for nodes in fields.values()}
        for nodes in fields.values():
            field = nodes[0]
            definition = type_.fields.get(field.name.value)
            if definition is None:  # `__typename` and introspection: no upstream call
                continue
            subsets = [node.selection_set for node in nodes if node.selection_set]
            child = get_named_type(definition.type)
            total += self._field_cost(type_.name, field, subsets, child, scope)
        if type_.name == "Session" and "threads" not in names and names & _NETWORK_FIELDS:
            total += 1  # the session-detail call; with `threads` selected it shares theirs
        return total

    def _fields(
        self, sets: Sequence[SelectionSetNode], type_: GraphQLObjectType
    ) -> dict[str, list[FieldNode]]:
        """Fields by response key, as execution merges them (graphql-core's `collect_fields`)."""
        fields: dict[str, list[FieldNode]] = {}
        seen: set[str] = set()
        for selection_set in sets:
            collect_fields(
                self._schema, self._fragments, type_, selection_set, fields, self._included, seen
            )
        return fields

    def _reads_list_only(self, sets: Sequence[SelectionSetNode], type_: GraphQLObjectType) -> bool:
        """Whether `sets` read, of this session or of it reached again, what only a list has."""
        for nodes in self._fields(sets, type_).values():
            name = nodes[0].name.value
            if (type_.name == "Session" and name in _LIST_ONLY) or (
                type_.name == "ThreadConnection" and name == "totalCount"
            ):
                return True
            definition = type_.fields.get(name)
            child = get_named_type(definition.type) if definition is not None else None
            if (type_.name, name) in _BACK_TO_SESSION and isinstance(child, GraphQLObjectType):
                subsets = [node.selection_set for node in nodes if node.selection_set]
                if self._reads_list_only(subsets, child):
                    return True
        return False

    def detail_answers(self, sets: Sequence[SelectionSetNode]) -> bool:
        """Whether the session-detail call these selections of a `Session` make anyway (a forward
        `threads` page, or the network fields) also answers everything else they read of it."""
        session = self._schema.get_type("Session")
        assert isinstance(session, GraphQLObjectType)
        fields = self._fields(sets, session)
        names = {nodes[0].name.value for nodes in fields.values()}
        # Fields by response key: aliases of `threads` are found by name.
        forward = any(
            self._arg(node, "last") is None and self._arg(node, "before") is None
            for nodes in fields.values()
            for node in nodes
            if node.name.value == "threads"
        )
        if not (forward or names & _NETWORK_FIELDS):
            return False
        return not self._reads_list_only(sets, session)

    def session_by_detail(self, field: FieldNode, sets: Sequence[SelectionSetNode]) -> bool:
        """Whether `session(sessionId:)` takes the session from its `GET /sessions/{id}` alone."""
        session_id = self._arg(field, "sessionId")
        return (
            self._arg(field, "initiator") is None
            and isinstance(session_id, str)
            and bool(session_id)
            and session_path_exact(session_id)
            and self.detail_answers(sets)
        )

    # -- the resolvers' costs -----------------------------------------------------------------

    def _field_cost(
        self,
        parent: str,
        field: FieldNode,
        sets: list[SelectionSetNode],
        child: GraphQLNamedType,
        scope: _Scope,
    ) -> int:
        name = field.name.value
        match parent, name:
            case ("Query" | "User", "sessions"):
                inner = _Scope(page=self._page(field, "first"), exact=self._whole_sessions(field))
                return 1 + self.cost_on(sets, child, inner)
            case ("Query" | "User", "interceptions"):
                return 1 + self.cost_on(sets, child, _Scope(page=self._page(field, "first")))
            case ("Query", "session"):
                # The lookup's call, unless the session-detail call counted below answers it.
                own = 0 if self.session_by_detail(field, sets) else 1
                return own + self.cost_on(sets, child, _Scope())
            case ("Query", "models" | "clients" | "providers" | "aiSpend" | "aiGroupSpend"):
                return 1
            case ("User", "aiSpend"):
                return 1
            case ("Query", "node"):
                return self._node_cost(self._arg(field, "id"), sets)
            case ("Query", "nodes"):
                ids = self._list(field, "ids")
                if len(ids) > _MAX_NODES:
                    return 0
                return sum(self._node_cost(global_id, sets) for global_id in ids)
            case ("Query", "_entities"):
                reps = self._list(field, "representations")
                return sum(self._entity_cost(rep, sets) for rep in reps)
            case ("Query", "usage"):
                # The scan's allowance is its most: `maxUpstreamCalls`, else the whole budget.
                value = self._arg(field, "maxUpstreamCalls")
                if isinstance(value, int) and not isinstance(value, bool):
                    return max(0, min(value, self._settings.upstream_call_budget))
                return self._settings.upstream_call_budget
            case ("Session", "tokenUsage"):
                # A session's cost walks its threads: one call per 200 threads (one counted).
                return 1 if self._selects(sets, child, "cost") else 0
            case ("Session", "threads"):
                inner = replace(scope, page=self._page(field, "first", "last"))
                return 1 + self.cost_on(sets, child, inner)
            case ("ThreadConnection", "totalCount"):
                return 0 if scope.exact else 1
            case (connection, "nodes" | "edges") if connection in _CONNECTIONS:
                return scope.page * self.cost_on(sets, child, scope)
        return self.cost_on(sets, child, scope)

    def _selects(self, sets: list[SelectionSetNode], type_: GraphQLNamedType, name: str) -> bool:
        if not isinstance(type_, GraphQLObjectType):
            return False
        fields = self._fields(sets, type_)
        return any(node.name.value == name for nodes in fields.values() for node in nodes)

    def _node_cost(self, global_id: object, sets: list[SelectionSetNode]) -> int:
        if not isinstance(global_id, str):
            return 0  # refused by input coercion
        try:
            ref = decode_global_id(global_id)
        except BadUserInput:
            return 0  # refused by the resolver before any call
        type_name, base = _REF_COST[type(ref)]
        return base + self.cost_on(sets, self._schema.get_type(type_name), _Scope())

    def _entity_cost(self, representation: object, sets: list[SelectionSetNode]) -> int:
        if not isinstance(representation, Mapping):
            return 0
        type_name = representation.get("__typename")
        if not isinstance(type_name, str) or type_name not in _ENTITY_TYPES:
            return 0  # no loader behind it: refused without an upstream call
        return 1 + self.cost_on(sets, self._schema.get_type(str(type_name)), _Scope())


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


def session_by_detail(info: GraphQLResolveInfo[Any], settings: Settings) -> bool:
    """Whether this `session(sessionId:)` field is answered by its `GET /sessions/{id}` alone.

    True when no `initiator` is given (the detail shows the session a `session_id` lookup finds:
    Coder looks it up the same way), the id reaches the handler unchanged by path, and what is
    selected of the session (through its threads back to it too) is in the detail response: all
    but `lastActiveAt`, `lastPrompt`, `threadCount` and `threads.totalCount`. The estimate and the
    resolver decide with this one function, so the count is what runs.
    """
    # Strawberry hands resolvers the coerced values as a plain dict, not graphql-core's container.
    variables: Any = info.variable_values
    values = dict(getattr(variables, "coerced", variables))
    estimator = _Estimator(info.schema, info.fragments, values, settings)
    sets = [node.selection_set for node in info.field_nodes if node.selection_set]
    return estimator.session_by_detail(info.field_nodes[0], sets)


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
    estimator = _Estimator(schema, fragments, values, settings)
    return estimator.cost_on([operation.selection_set], root, _Scope())


class EstimateCache:
    """The last estimates, per document, operation and variables: a view repeats its query.

    Keyed by the document node itself (the parser cache hands out the same node for the same
    text; holding it keeps the key's identity unique).
    """

    def __init__(self, max_size: int = 256) -> None:
        self._max_size = max_size
        self._items: OrderedDict[tuple[int, str | None, str], tuple[DocumentNode, int]] = (
            OrderedDict()
        )

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
        try:
            shown = json.dumps(variables, sort_keys=True)
        except (TypeError, ValueError):
            shown = None
        key = (id(document), operation_name, shown) if shown is not None else None
        known = self._items.get(key) if key is not None else None
        if known is not None and known[0] is document:
            return known[1]
        estimate = estimate_upstream_calls(
            schema, document, operation_name=operation_name, variables=variables, settings=settings
        )
        if key is not None:
            self._items[key] = (document, estimate)
            if len(self._items) > self._max_size:
                self._items.popitem(last=False)
        return estimate


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
                context.schema._schema, document, context.validation_rules
            )
        if document is not None and not context.pre_execution_errors:
            self._check(context, document)
        yield

    def _check(self, context: ExecutionContext, document: DocumentNode) -> None:
        estimate = self._estimates.estimate(
            context.schema._schema,
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
