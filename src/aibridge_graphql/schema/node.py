"""The Relay `Node` interface and the context helpers resolvers share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import strawberry
from strawberry.scalars import JSON

from aibridge_graphql.core.loaders import Loaders
from aibridge_graphql.schema.context import GatewayContext
from aibridge_graphql.schema.engine.compat import hide_from_dataclass

NODE_DESCRIPTION = (
    "An object with a global ID, refetchable with `node(id:)`. The AI Bridge REST API has no "
    "get-by-id for most entities, so each global ID carries what one list call needs to find the "
    "entity again: an Interception ID holds its UUID, initiator and exact start time (refetched "
    "with a one-microsecond `started_after`/`started_before` window on `GET /interceptions`); a "
    "Session ID holds its initiator and session id (one `GET /sessions` call filtered by "
    "`session_id` and `initiator`); a Thread ID holds its session and thread UUID "
    "(`GET /sessions/{id}` pages of 200 until found, usually one call, plus the session's call); "
    "a User's ID is its Coder UUID (found through the user's sessions). Entities already seen in "
    "the same request cost nothing more."
)


@strawberry.interface(description=NODE_DESCRIPTION)
class Node:
    id: strawberry.ID = strawberry.field(description="The opaque global ID.")


Info = strawberry.Info[GatewayContext, None]


def loaders_of(info: Info) -> Loaders:
    """The request's loaders."""
    return info.context.loaders


F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S")
T = TypeVar("T")


def resolver(description: str, needs: dict[str, Any] | None = None) -> Callable[[F], F]:
    """`@strawberry.field(description=...)` for a resolver method, typed for mypy --strict, with
    what it asks of the upstream (`engine.needs`) when it calls it or reads a record list.

    Strawberry types the no-resolver form of `strawberry.field` as `Any`; at runtime the
    decorated attribute is a `StrawberryField`, which only Strawberry calls.
    """
    return cast(Callable[[F], F], strawberry.field(description=description, metadata=needs))


def json_value(value: object) -> JSON:
    """An upstream JSON value (metadata objects) as the `JSON` scalar."""
    return cast(JSON, value)


class _Computed(Generic[S, T]):
    """A non-data descriptor: the class attribute of a `computed` field, read per instance."""

    __slots__ = ("_compute",)

    def __init__(self, compute: Callable[[S], T]) -> None:
        self._compute = compute

    def __get__(self, obj: S | None, owner: type[Any] | None = None) -> Any:
        return self if obj is None else self._compute(obj)


def computed(
    compute: Callable[[S], T], description: str, needs: dict[str, Any] | None = None
) -> Any:
    """A field whose value `compute(obj)` makes when the executor reads it: only if selected.

    Strawberry and the plan executor still resolve it as a plain attribute (no resolver, no
    `Info`, the cheapest field there is), so `compute` returns the value itself, never an
    awaitable (the plan executor does not await attributes). The field stays out of
    `__init__`, `repr` and `==`, which would compute it.
    """
    field = strawberry.field(description=description, default=_Computed(compute), metadata=needs)
    hide_from_dataclass(field)
    return field


# Marks (`engine.needs`) that `session.session_by_detail` looks for: a Session field only a
# `GET /sessions` item carries (its detail response lacks it), and the fields through which a
# selection reaches the same session again (its threads' `session`).
LIST_ONLY = frozenset({"list-only"})
SAME_SESSION = frozenset({"same-session"})
# The `shares` name of a session's `GET /sessions/{id}`: its threads page and network fields.
SESSION_DETAIL = "GET /sessions/{id}"
