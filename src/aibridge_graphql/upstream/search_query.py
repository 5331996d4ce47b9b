"""The `q` search string of the AI Bridge list endpoints, built from typed filters.

Coder's `searchTerms` splits `q` on spaces, keeps double-quoted strings whole and then strips
the quotes; it never un-escapes backslashes. So every value is sent as `key:"value"` verbatim:
spaces and colons are safe inside the quotes, a backslash is sent as-is (and arrives as-is), and
a value holding a double quote cannot be expressed at all; it is rejected with
`SearchValueError` instead of being sent as a query that would silently mean something else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime


def format_rfc3339nano(dt: datetime) -> str:
    """Go's `time.RFC3339Nano` of the UTC instant: `2025-01-01T00:00:00.5Z` (fraction trimmed)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    utc = dt.astimezone(UTC)
    # Not strftime: glibc's %Y gives "1", not "0001", for the year 1, which Go cannot parse.
    text = utc.replace(microsecond=0, tzinfo=None).isoformat()
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


class SearchValueError(ValueError):
    """A filter value the `q` syntax cannot carry; `key` names the search key."""

    def __init__(self, key: str, value: str) -> None:
        super().__init__(f"search values cannot contain a double quote: {key} = {value!r}")
        self.key = key


def quote_value(key: str, value: str) -> str:
    """`"value"` as Coder's search parser reads it back unchanged; rejects values with `"`."""
    if '"' in value:
        raise SearchValueError(key, value)
    return f'"{value}"'


@dataclass(frozen=True)
class InterceptionFilter:
    """Filters of `GET /interceptions` (and, extended, `GET /sessions`)."""

    initiator: str | None = None
    provider: str | None = None
    provider_name: str | None = None
    model: str | None = None
    client: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


@dataclass(frozen=True)
class SessionFilter(InterceptionFilter):
    """Filters of `GET /sessions`: the interception filters plus `session_id`."""

    session_id: str | None = None


# Stable key order: the q text is part of the loader key, so equal filters give equal keys.
_KEY_ORDER = (
    "session_id",
    "initiator",
    "provider",
    "provider_name",
    "model",
    "client",
    "started_after",
    "started_before",
)


def build_q(search: InterceptionFilter | None) -> str:
    """Space-joined `key:"value"` terms of the set fields, in a stable order; `""` for none."""
    if search is None:
        return ""
    present = {f.name for f in fields(search)}
    terms: list[str] = []
    for key in _KEY_ORDER:
        if key not in present:
            continue
        value = getattr(search, key)
        if value is None:
            continue
        text = format_rfc3339nano(value) if isinstance(value, datetime) else str(value)
        terms.append(f"{key}:{quote_value(key, text)}")
    return " ".join(terms)


def prefix_q(key: str, prefix: str | None) -> str:
    """`key:"prefix"` for the models/clients endpoints; `""` for no (or an empty) prefix."""
    if not prefix:
        return ""
    return f"{key}:{quote_value(key, prefix)}"
