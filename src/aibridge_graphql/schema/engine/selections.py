"""A selection's fields by response key, merged as graphql-core's execution merges them.

The plan compiler (executor.py) and the call estimate (cost.py) walk documents the same way;
they differ only in what a directive means to them (`included`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    SelectionSetNode,
    is_abstract_type,
)

Selection = FieldNode | FragmentSpreadNode | InlineFragmentNode
# Whether a selection counts (its @skip/@include); it may raise to refuse the document.
Included = Callable[[Selection], bool]


def applies(
    schema: GraphQLSchema, condition: NamedTypeNode | None, type_: GraphQLObjectType
) -> bool:
    """Whether a fragment's type condition covers an object of `type_`."""
    if condition is None or condition.name.value == type_.name:
        return True
    named = schema.get_type(condition.name.value)
    return is_abstract_type(named) and schema.is_sub_type(named, type_)


def collect_fields(
    schema: GraphQLSchema,
    fragments: Mapping[str, FragmentDefinitionNode],
    type_: GraphQLObjectType,
    selection_set: SelectionSetNode,
    out: dict[str, list[FieldNode]],
    included: Included,
    seen: set[str] | None = None,
) -> None:
    """Add the fields `selection_set` selects on `type_` to `out`, by response key; each
    fragment is spread once, an unknown one not at all (validation reports it)."""
    seen = set() if seen is None else seen
    for selection in selection_set.selections:
        if not included(selection):  # type: ignore[arg-type]
            continue
        if isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            out.setdefault(key, []).append(selection)
        elif isinstance(selection, InlineFragmentNode):
            if applies(schema, selection.type_condition, type_):
                collect_fields(
                    schema, fragments, type_, selection.selection_set, out, included, seen
                )
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if name in seen or fragment is None:
                continue
            seen.add(name)
            if applies(schema, fragment.type_condition, type_):
                collect_fields(
                    schema, fragments, type_, fragment.selection_set, out, included, seen
                )
