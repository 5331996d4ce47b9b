"""Limits on caller-chosen text both faces share, and the bounded echo of a refused input.

Names, ids and prefixes the AI Bridge API knows are short: `MAX_TEXT_LENGTH` leaves room for any
real one while keeping the upstream URL bounded (a 64 KB GraphQL prefix, and a 1 MB gRPC one,
broke the upstream client's URL). An error that quotes the caller's input quotes `preview(...)`
of it, so a huge input never makes a huge error (over gRPC the message travels in a trailer,
and one over the metadata limit reached the client as RESOURCE_EXHAUSTED instead).
"""

from __future__ import annotations

from typing import Final

from aibridge_graphql.core.errors import BadUserInput

MAX_TEXT_LENGTH: Final = 1024
# How much of a refused input an error quotes.
ECHO_LENGTH: Final = 64


def preview(value: str, limit: int = ECHO_LENGTH) -> str:
    """`value` as an error may quote it: its first `limit` characters, then `…` if cut."""
    return value if len(value) <= limit else value[:limit] + "…"


def checked_text(name: str, value: str | None) -> str | None:
    """`value` when it is a string the upstream can take; `BadUserInput` naming `name` otherwise.

    NUL is refused too: Coder's PostgreSQL cannot store or compare it, so it fails upstream.
    """
    if value is None:
        return None
    if len(value) > MAX_TEXT_LENGTH:
        raise BadUserInput(
            f"`{name}` takes at most {MAX_TEXT_LENGTH} characters (got {len(value)}).",
            extensions={"field": name},
        )
    if "\x00" in value:
        raise BadUserInput(f"`{name}` must not contain NUL characters.", extensions={"field": name})
    return value
