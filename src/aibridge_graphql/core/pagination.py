"""The pagination arithmetic both faces share, with no protocol in it.

Each face pages the upstream the same way: a page size within the settings and the upstream's
cap, `limit = size + 1` so the extra row tells exactly whether another page follows, the
upstream cursor (a row UUID, a session id or an `offset`) carried inside the face's own opaque
cursor or token. How a cursor is written and how an error reads stay in the face
(`schema/ids.py` and `schema/pagination.py` for Relay, `grpc/paging.py` for AIP-158 tokens).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from aibridge_graphql.settings import Settings

T = TypeVar("T")

# Offsets are int32 upstream (Coder's SQL), written in ASCII digits only: `str.isdigit` also
# accepts `²` and other digits `int()` refuses.
MAX_OFFSET = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


class MalformedCursor(ValueError):
    """A decoded cursor value names no upstream position; each face words the caller's error."""


def size_limit(settings: Settings, upstream_max: int) -> int:
    """The largest page a list takes: the setting, within the upstream's cap (minus the extra
    row that `fetch_limit` adds)."""
    return min(settings.max_page_size, upstream_max - 1)


def size_problem(value: int, maximum: int) -> str | None:
    """Why `value` is no page size within `[0, maximum]` (None when it is one)."""
    if value < 0:
        return "must not be negative"
    if value > maximum:
        return f"must be at most {maximum}"
    return None


def fetch_limit(size: int) -> int:
    """What to ask the upstream for: one more row than the page, to see past it."""
    return size + 1


@dataclass(frozen=True, slots=True)
class Cut(Generic[T]):
    """One page cut from an upstream page fetched with `fetch_limit(size)`."""

    items: Sequence[T]
    has_next: bool


def cut(items: Sequence[T], size: int) -> Cut[T]:
    """The page of `size` items; `has_next` is exact (the extra row was there)."""
    return Cut(items=items[:size], has_next=len(items) > size)


def cursor_uuid(value: str | None) -> UUID | None:
    """The row UUID a decoded cursor value names (None for no cursor).

    The nil UUID is refused: Coder reads it as no cursor, so it would restart the walk.
    """
    if value is None:
        return None
    try:
        parsed = UUID(value)
    except ValueError:
        raise MalformedCursor(value) from None
    if parsed.int == 0:
        raise MalformedCursor(value)
    return parsed


def cursor_offset(value: str | None) -> int:
    """The upstream `offset` a decoded offset cursor value names (0 for no cursor)."""
    if value is None:
        return 0
    if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= MAX_OFFSET:
        raise MalformedCursor(value)
    return int(value)


class SessionKeys(Protocol):
    """The `GET /sessions` filter keys that select interceptions (both faces' filters have them)."""

    @property
    def provider(self) -> str | None: ...
    @property
    def provider_name(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def client(self) -> str | None: ...
    @property
    def started_after(self) -> datetime | None: ...
    @property
    def started_before(self) -> datetime | None: ...


def selects_whole_sessions(search: SessionKeys) -> bool:
    """True when only whole-session keys (initiator, session id) are set: the aggregates are
    exact and the session cursor works. Otherwise Coder places its cursor by the whole session's
    activity but orders by the filtered one, so such lists page by `offset`."""
    return all(
        value is None
        for value in (
            search.provider,
            search.provider_name,
            search.model,
            search.client,
            search.started_after,
            search.started_before,
        )
    )
