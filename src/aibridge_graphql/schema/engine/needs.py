"""What a field asks of the upstream, declared beside its resolver.

A field that sends upstream calls, or is built from one of the upstream's record lists, says so
in its Strawberry metadata (`strawberry.field(metadata=needs(...))`, or `resolver(..., needs=)`):
- `calls`: how many calls it makes per parent object, with what it selects below it — a number
  (plus its selections' own calls), or a rule that reads the field's arguments and selections
  (`FieldEstimate`);
- `shares`: the name of a call that several fields of one object read together: it counts once
  per object whichever of them are selected, and not at all when a field that `makes` it (as
  part of its own `calls`) is selected too;
- `reads`: the record lists (upstream/projection.py) its value is built from;
- `marks`: facts other rules look for (e.g. that a field is only in a list item).
The call estimate (estimate.py) and the record projection (projection.py) read these and nothing
else; `tests/unit/schema/engine/test_needs.py` fails when a resolver that could call upstream or
read a record list has none. A rule sees its field through a `FieldEstimate`: one selected field
of a document's walk (`Estimator`), with its arguments, its selections and its scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
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

from aibridge_graphql.schema.engine.compat import strawberry_field_of
from aibridge_graphql.schema.engine.selections import Selection, collect_fields
from aibridge_graphql.settings import Settings

__all__ = [
    "NEEDS_KEY",
    "Estimator",
    "FieldEstimate",
    "Needs",
    "Rule",
    "Scope",
    "connection",
    "estimator_for",
    "needs",
    "needs_of",
    "per_item",
]

# Where a field's `Needs` sits in its Strawberry metadata (or a graphql-core field's extensions,
# for a field Strawberry generates, e.g. federation's `_entities`).
NEEDS_KEY: Final = "aibridge.needs"

# A field's calls, its selections' included: an upper bound of what its resolver sends.
Rule = Callable[["FieldEstimate"], int]


@dataclass(frozen=True, slots=True)
class Needs:
    """A field's upstream needs (module docstring)."""

    calls: int | Rule = 0
    shares: str | None = None
    makes: str | None = None
    reads: frozenset[str] = frozenset()
    marks: frozenset[str] = frozenset()


def needs(
    calls: int | Rule = 0,
    *,
    shares: str | None = None,
    makes: str | None = None,
    reads: frozenset[str] = frozenset(),
    marks: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Strawberry field metadata declaring a `Needs`."""
    return {NEEDS_KEY: Needs(calls, shares, makes, reads, marks)}


def needs_of(definition: GraphQLField) -> Needs | None:
    """The declaration of a schema field, or None (no call, no record list of its own)."""
    field = strawberry_field_of(definition)
    if field is not None and field.metadata:
        declared = field.metadata.get(NEEDS_KEY)
        if isinstance(declared, Needs):
            return declared
    declared = definition.extensions.get(NEEDS_KEY)
    return declared if isinstance(declared, Needs) else None


def connection(*size_args: str, whole: Callable[[FieldEstimate], bool] | None = None) -> Rule:
    """One call for a page, and what is selected of its items once per item: the page size is
    the first of `size_args` given (else the default); `whole` says whether the page's items
    carry whole-entity aggregates (default: as the enclosing scope says)."""

    def rule(estimate: FieldEstimate) -> int:
        exact = whole(estimate) if whole is not None else None
        return 1 + estimate.children(page=estimate.page(*size_args), exact=exact)

    return rule


def _per_item(estimate: FieldEstimate) -> int:
    return estimate.scope.page * estimate.children()


# A connection's `nodes`/`edges`: what is selected of them counts once per item of the page.
per_item: Final[Rule] = _per_item


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


def estimator_for(info: GraphQLResolveInfo[Any], settings: Settings) -> FieldEstimate:
    """The field a resolver runs, as the estimate saw it: a resolver that decides what to call
    with the same rule as its estimate makes the count what runs."""
    # Strawberry hands resolvers the coerced values as a plain dict, not graphql-core's container.
    variables: Any = info.variable_values
    values = dict(getattr(variables, "coerced", variables))
    estimator = Estimator(info.schema, info.fragments, values, settings)
    definition = info.parent_type.fields[info.field_name]
    return FieldEstimate(estimator, list(info.field_nodes), definition, Scope())
