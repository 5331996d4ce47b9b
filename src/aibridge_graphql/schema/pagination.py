"""Relay cursor connections over the upstream's cursors: argument checks and exact page info.

`first/after` become `limit = first + 1` plus the upstream cursor (`after_id`,
`after_session_id`): the extra row tells `hasNextPage` exactly and is dropped. Nothing is fetched
whole and sliced. `hasPreviousPage` is true exactly when `after` was given, because the upstream
rejects an `after` cursor that does not name an existing row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, Protocol, TypeVar

import strawberry

from aibridge_graphql.core import pagination
from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.schema.ids import decode_cursor
from aibridge_graphql.schema.node import computed
from aibridge_graphql.settings import Settings

T = TypeVar("T")


class Edge(Protocol):
    """What a `PageInfo` needs of an edge."""

    @property
    def cursor(self) -> str: ...


def _start_cursor(info: PageInfo) -> str | None:
    return None if info.first is None else info.first.cursor


def _end_cursor(info: PageInfo) -> str | None:
    return None if info.last is None else info.last.cursor


@strawberry.type(description="Relay page information (cursor connections spec).")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="True exactly when more items follow this page."
    )
    has_previous_page: bool = strawberry.field(
        description="True exactly when items precede this page."
    )
    # Made when selected, from the page's first and last edges (whose cursors are, too).
    start_cursor: str | None = computed(
        _start_cursor, "Cursor of the first edge, null when the page is empty."
    )
    end_cursor: str | None = computed(
        _end_cursor, "Cursor of the last edge, null when the page is empty."
    )
    first: strawberry.Private[Edge | None]
    last: strawberry.Private[Edge | None]


@dataclass(frozen=True, slots=True)
class Forward:
    """Validated `first/after`: `after` is the decoded upstream cursor value."""

    first: int
    after: str | None

    @property
    def limit(self) -> int:
        """What to ask the upstream for: one more row than needed, to see past the page."""
        return pagination.fetch_limit(self.first)


@dataclass(frozen=True, slots=True)
class Backward:
    """Validated `last/before`: `before` is the decoded upstream cursor value."""

    last: int
    before: str | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of items plus its exact page info flags."""

    items: Sequence[T]
    has_next_page: bool
    has_previous_page: bool


def _check_size(name: str, value: int, maximum: int) -> None:
    problem = pagination.size_problem(value, maximum)
    if problem is not None:
        raise BadUserInput(f"`{name}` {problem} (got {value}).")


def page_size_limit(settings: Settings, upstream_max: int) -> int:
    """The largest `first`/`last` a connection takes: the setting, within the upstream's cap."""
    return pagination.size_limit(settings, upstream_max)


def forward_args(
    kind: str, first: int | None, after: str | None, *, settings: Settings, upstream_max: int
) -> Forward:
    """Validate `first/after` for a forward-only connection."""
    size = settings.default_page_size if first is None else first
    _check_size("first", size, page_size_limit(settings, upstream_max))
    return Forward(first=size, after=decode_cursor(kind, after) if after is not None else None)


def both_ways_args(
    kind: str,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    *,
    settings: Settings,
    upstream_max: int,
) -> Forward | Backward:
    """Validate `first/after/last/before` for a connection that pages both ways."""
    if first is not None and last is not None:
        raise BadUserInput("Pass either `first` or `last`, not both.")
    if after is not None and before is not None:
        raise BadUserInput("Pass either `after` or `before`, not both.")
    if last is not None or before is not None:
        if after is not None or first is not None:
            raise BadUserInput("`last`/`before` cannot be combined with `first`/`after`.")
        size = settings.default_page_size if last is None else last
        _check_size("last", size, page_size_limit(settings, upstream_max))
        return Backward(last=size, before=decode_cursor(kind, before) if before else None)
    return forward_args(kind, first, after, settings=settings, upstream_max=upstream_max)


def forward_page(items: Sequence[T], args: Forward) -> Page[T]:
    """Cut an upstream page fetched with `args.limit` to the Relay page."""
    cut = pagination.cut(items, args.first)
    return Page(
        items=cut.items, has_next_page=cut.has_next, has_previous_page=args.after is not None
    )


def page_info(edges: Sequence[Edge], page: Page[T]) -> PageInfo:
    """The `PageInfo` of a page with these edges."""
    return PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        first=edges[0] if edges else None,
        last=edges[-1] if edges else None,
    )


# Connection arguments, described once.
First = Annotated[
    int | None,
    strawberry.argument(
        description="Page size forwards (default: the server's default page size; at most the "
        "maximum page size)."
    ),
]
After = Annotated[
    str | None, strawberry.argument(description="Return the items after this cursor.")
]
Last = Annotated[
    int | None,
    strawberry.argument(description="Page size backwards, from the end or from `before`."),
]
Before = Annotated[
    str | None, strawberry.argument(description="Return the items before this cursor.")
]
