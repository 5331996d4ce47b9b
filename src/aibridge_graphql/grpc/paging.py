"""Page sizes and opaque page tokens of the gRPC face (AIP-158).

The arithmetic (page-size bounds, `limit = size + 1` to see past the page, what a cursor value
may name) is the core's (`core/pagination.py`), shared with the GraphQL face; here are only the
face's own parts: its token encoding and how its errors name the request field.

A token is URL-safe base64 of `[kind, upstream cursor, fingerprint]`; the fingerprint binds it
to the request that produced it (AIP-158: a token used with other parameters is an error).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from aibridge_graphql.core import pagination
from aibridge_graphql.core.errors import BadUserInput

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """A validated page request: `size` items after the upstream cursor `after` (if any)."""

    size: int
    after: str | None

    @property
    def limit(self) -> int:
        """What to ask the upstream for: one more row than needed, to see past the page."""
        return pagination.fetch_limit(self.size)


def page_size(value: int, *, default: int, maximum: int, field: str = "page_size") -> int:
    """`value` (0: `default`) within `[1, maximum]`; `BadUserInput` naming `field` otherwise."""
    problem = pagination.size_problem(value, maximum)
    if problem is not None:
        raise BadUserInput(
            f"`{field}` {problem} (got {value}).",
            extensions={"validations": [{"field": field, "detail": problem}]},
        )
    return value or default


def fingerprint(*parts: object) -> str:
    """A short stable digest of the request parameters a token must be used with."""
    text = json.dumps([str(part) for part in parts], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(kind: str, cursor: str, bound_to: str) -> str:
    """The opaque `next_page_token` of a page whose last upstream cursor value is `cursor`."""
    raw = json.dumps([kind, cursor, bound_to], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid(detail: str) -> BadUserInput:
    return BadUserInput(
        f"Invalid page_token: {detail}",
        extensions={"validations": [{"field": "page_token", "detail": detail}]},
    )


def decode_token(kind: str, token: str, bound_to: str) -> str | None:
    """The upstream cursor inside `token` (None for an empty token); `BadUserInput` otherwise."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode())
    except (ValueError, UnicodeError, binascii.Error):
        raise _invalid("malformed.") from None
    if not (isinstance(parts, list) and len(parts) == 3 and all(isinstance(p, str) for p in parts)):
        raise _invalid("malformed.")
    if parts[0] != kind:
        raise _invalid("it belongs to another method or list.")
    if parts[2] != bound_to:
        raise _invalid("it was issued for other request parameters (filter, session or prefix).")
    if not parts[1]:
        # Coder reads an empty cursor as none: it would silently restart from the first page.
        raise _invalid("malformed.")
    cursor: str = parts[1]
    return cursor


def cursor_uuid(value: str | None) -> UUID | None:
    """The UUID a decoded cursor names; the nil UUID is refused (Coder reads it as no cursor)."""
    try:
        return pagination.cursor_uuid(value)
    except pagination.MalformedCursor:
        raise _invalid("malformed.") from None


def cursor_offset(value: str | None) -> int:
    """The offset a decoded offset cursor names (0 for none)."""
    try:
        return pagination.cursor_offset(value)
    except pagination.MalformedCursor:
        raise _invalid("malformed.") from None


def cut(items: Sequence[T], window: Window) -> pagination.Cut[T]:
    """Cut an upstream page fetched with `window.limit` to the page; `has_next` is exact."""
    return pagination.cut(items, window.size)
