"""Guards in front of third-party code that trusts its input: validation rules and `_entities`.

- Strawberry's depth and alias limiters walk fragment spreads in their constructors and the depth
  limiter looks each fragment up unguarded: `{ models ...Missing }` raised `KeyError` (a masked
  internal error). `tolerate_unknown_fragments` runs such a rule only when every spread names a
  fragment; otherwise graphql-core's own `KnownFragmentNames` rule reports the unknown name.
- Strawberry's federation `_entities` resolver indexes each representation without checking it:
  `[{}]`, `[5]` or an unknown `__typename` nulled the whole field with an internal error.
  `representation_error` names what is wrong with one representation, so only it fails.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    ValidationContext,
    ValidationRule,
    Visitor,
    visit,
)

from aibridge_graphql.gateway.errors import BadUserInput


class _SpreadCollector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.spreads: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.spreads.add(node.name.value)


def _fragments_known(document: DocumentNode) -> bool:
    defined = {
        definition.name.value
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    collector = _SpreadCollector()
    visit(document, collector)
    return collector.spreads <= defined


def tolerate_unknown_fragments(rule: type[ValidationRule]) -> type[ValidationRule]:
    """`rule` (which does its work in `__init__`) skipped for documents with unknown spreads."""

    class Tolerant(rule):  # type: ignore[valid-type, misc]
        def __init__(self, context: ValidationContext) -> None:
            if _fragments_known(context.document):
                super().__init__(context)
            else:
                ValidationRule.__init__(self, context)

    Tolerant.__name__ = Tolerant.__qualname__ = f"Tolerant{rule.__name__}"
    return Tolerant


def representation_error(representation: object, entity_types: Collection[str]) -> Exception | None:
    """Why `representation` cannot be resolved (a `BadUserInput`), or None when it can be.

    Every entity here has the key `id` alone, so a representation is exactly
    `{"__typename": <entity type>, "id": <string>}`.
    """
    if not isinstance(representation, dict):
        return BadUserInput("An entity representation must be an object.")
    type_name = representation.get("__typename")
    if not isinstance(type_name, str):
        return BadUserInput("An entity representation needs a string `__typename`.")
    if type_name not in entity_types:
        known = ", ".join(sorted(entity_types))
        return BadUserInput(f"`__typename` must be one of the entity types ({known}).")
    if not isinstance(representation.get("id"), str):
        return BadUserInput(f"A {type_name} representation needs its key `id` as a string.")
    extra = sorted(set(representation) - {"__typename", "id"})
    if extra:
        return BadUserInput(f"A {type_name} representation has only `id`; unexpected: {extra[:5]}.")
    return None
