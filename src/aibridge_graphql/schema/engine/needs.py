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
else; `tests/unit/schema/test_needs.py` fails when a resolver that could call upstream or read a
record list has none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from graphql import GraphQLField

from aibridge_graphql.schema.engine.compat import strawberry_field_of

if TYPE_CHECKING:
    from aibridge_graphql.schema.engine.estimate import FieldEstimate

__all__ = ["NEEDS_KEY", "Needs", "Rule", "connection", "needs", "needs_of", "per_item"]

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
