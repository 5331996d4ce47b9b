"""The `q` search-query parser of the AI Bridge list endpoints (contract §3).

Mirrors coder/coder `coderd/searchquery` (`searchTerms` and the AIBridge* functions) and
`coderd/httpapi` (QueryParamParser): the same splitting, the same validation messages and the
same reporting order. A term-level problem (bad `:` use, a bare term on /sessions) stops at the
first one; parameter problems are collected and reported together, in parse order, then the
unknown keys (Go reports those in map order; here they keep their order in `q`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

from aibridge_graphql.standin.goparse import (
    GO_ZERO_TIME_NS,
    RFC3339NANO_LAYOUT,
    GoTimeError,
    go_quote,
    go_to_lower,
    go_to_upper,
    parse_go_uuid,
    parse_rfc3339nano,
)

_Values = dict[str, list[str]]
_NIL_UUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Validation:
    """One entry of a Coder error body's `validations` array."""

    field: str
    detail: str


class SearchError(Exception):
    """An invalid `q`; `validations` go into the 400 body under the endpoint's message."""

    def __init__(self, validations: list[Validation]) -> None:
        super().__init__("; ".join(v.detail for v in validations))
        self.validations = validations


class Lookups(Protocol):
    """Database look-ups the parser needs (Coder resolves these inside the parser too)."""

    def user_id_by_username(self, username: str) -> str | None:
        """The id of the non-deleted user so named (Coder compares case-insensitively), or None."""

    def provider_name_exists(self, name: str) -> bool:
        """Whether a configured (non-deleted) AI provider has exactly this name."""


@dataclass(frozen=True)
class InterceptionSearch:
    """Filters of `GET /interceptions`; None means "do not filter". Times: µs since epoch, UTC."""

    initiator_id: str | None = None
    provider: str | None = None
    provider_name: str | None = None
    model: str | None = None
    client: str | None = None
    started_after: int | None = None
    started_before: int | None = None


@dataclass(frozen=True)
class SessionSearch(InterceptionSearch):
    """Filters of `GET /sessions`: the interception filters plus `session_id`."""

    session_id: str | None = None


def parse_interceptions_query(q: str, *, caller_id: str, lookups: Lookups) -> InterceptionSearch:
    """Parse `q` of /interceptions; a bare term is the initiator. Raises SearchError."""
    if q == "":
        return InterceptionSearch()
    found = _parse_filters(_Params(_search_terms(q, _default_key("initiator"))), caller_id, lookups)
    return InterceptionSearch(
        **{f.name: getattr(found, f.name) for f in fields(InterceptionSearch)}
    )


def parse_sessions_query(q: str, *, caller_id: str, lookups: Lookups) -> SessionSearch:
    """Parse `q` of /sessions (bare terms are an error; adds `session_id`). Raises SearchError."""
    if q == "":
        return SessionSearch()
    params = _Params(_search_terms(q, _no_default_key))
    return _parse_filters(params, caller_id, lookups, with_session_id=True)


def parse_models_query(q: str) -> str | None:
    """The model prefix of /models' `q` (`model:x` or a bare term). Raises SearchError."""
    return _parse_single_key(q, "model")


def parse_clients_query(q: str) -> str | None:
    """The client prefix of /clients' `q` (`client:x` or a bare term). Raises SearchError."""
    return _parse_single_key(q, "client")


def _parse_single_key(q: str, key: str) -> str | None:
    if q == "":
        return None
    params = _Params(_search_terms(q, _default_key(key)))
    value = params.single(key)
    params.finish()
    return value


def _parse_filters(
    params: _Params, caller_id: str, lookups: Lookups, *, with_session_id: bool = False
) -> SessionSearch:
    # Field order is Coder's parse order, which is the order its validations come out in.
    initiator_id = _initiator(params, caller_id, lookups)
    provider = params.single("provider")
    provider_name = _provider_name(params, lookups)
    model = params.single("model")
    client = params.single("client")
    session_id = params.single("session_id") if with_session_id else None
    started_after = _time(params, "started_after")
    started_before = _time(params, "started_before")
    if started_after is not None and started_before is not None and started_before <= started_after:
        params.errors.append(
            Validation(
                "started_before",
                'Query param "started_before" has invalid value: "started_before" must be'
                ' after "started_after" if set',
            )
        )
    params.finish()
    return SessionSearch(
        initiator_id=initiator_id,
        provider=provider,
        provider_name=provider_name,
        model=model,
        client=client,
        started_after=_postgres_us(started_after),
        started_before=_postgres_us(started_before),
        session_id=session_id,
    )


def _initiator(params: _Params, caller_id: str, lookups: Lookups) -> str | None:
    value = params.single("initiator")
    if value is None:
        return None
    if value == "me" and caller_id:
        return caller_id
    # A UUID is taken as-is, without an existence check (unknown ids just match nothing).
    user_id = parse_go_uuid(value) or lookups.user_id_by_username(value)
    if user_id is None:
        params.errors.append(
            Validation(
                "initiator",
                f'Query param "initiator" has invalid value: user {go_quote(value)} either does'
                " not exist, or you are unauthorized to view them",
            )
        )
    # Coder's SQL skips the initiator filter for the nil UUID (its "unset" value).
    return None if user_id == _NIL_UUID else user_id


def _provider_name(params: _Params, lookups: Lookups) -> str | None:
    name = params.single("provider_name")
    if name is None or lookups.provider_name_exists(name):
        return name
    params.errors.append(
        Validation(
            "provider_name",
            'Query param "provider_name" has invalid value: provider not found or unauthorized',
        )
    )
    return None


def _time(params: _Params, key: str) -> int | None:
    """An RFC3339Nano value in ns (UTC); Go's zero time counts as unset, as in Coder."""
    value = params.single(key)
    if value is None:
        return None
    try:
        # Coder upper-cases first, so `t`/`z` are accepted (and echoed upper-cased in errors).
        ns = parse_rfc3339nano(go_to_upper(value))
    except GoTimeError as exc:
        params.errors.append(
            Validation(
                key,
                f"Query param {go_quote(key)} must be a valid date format"
                f" ({RFC3339NANO_LAYOUT}): {exc}",
            )
        )
        return None
    return None if ns == GO_ZERO_TIME_NS else ns


_ZERO_TIME_US = GO_ZERO_TIME_NS // 1000


def _postgres_us(ns: int | None) -> int | None:
    """The µs Postgres stores for a Go time sent as text: strtod of the fraction, then rint.

    The SQL skips a bound equal to the zero time, so that maps to None as well.
    """
    if ns is None:
        return None
    seconds, frac_ns = divmod(ns, 1_000_000_000)
    frac_us = round(float(f"0.{frac_ns:09d}") * 1_000_000) if frac_ns else 0
    us = seconds * 1_000_000 + frac_us
    return None if us == _ZERO_TIME_US else us


class _Params:
    """QueryParamParser: reads keys once each, collects errors, flags unread keys."""

    def __init__(self, values: _Values) -> None:
        self.values = values
        self.parsed: set[str] = set()
        self.errors: list[Validation] = []

    def single(self, key: str) -> str | None:
        """The key's value, None when absent or empty; repeats are an error if the first is set."""
        self.parsed.add(key)
        found = self.values.get(key)
        if not found or found[0] == "":
            return None
        if len(found) > 1:
            self.errors.append(
                Validation(
                    key,
                    f"Query param {go_quote(key)} provided more than once, found {len(found)}"
                    " times. Only provide 1 instance of this query param.",
                )
            )
            return None
        return found[0]

    def finish(self) -> None:
        """Report keys nobody read, then raise if anything was wrong."""
        for key in self.values:
            if key not in self.parsed:
                self.errors.append(Validation(key, f"{go_quote(key)} is not a valid query param"))
        if self.errors:
            raise SearchError(self.errors)


def _default_key(key: str) -> Callable[[str, _Values], None]:
    def add(term: str, values: _Values) -> None:
        values.setdefault(key, []).append(term)

    return add


def _no_default_key(term: str, values: _Values) -> None:
    # /sessions has no default key on purpose upstream ("to prevent user confusion").
    raise SearchError([Validation("q", "no search key specified")])


def _search_terms(q: str, default: Callable[[str, _Values], None]) -> _Values:
    """searchTerms: `key:value` elements in order, then all bare terms joined into one."""
    tokens = _split(q, " ", keep_quotes=True)
    elements = [t for t in tokens if ":" in t]
    bare = [t for t in tokens if ":" not in t]
    if bare:
        elements.append(" ".join(bare))
    values: _Values = {}
    for element in elements:
        if element.startswith(":") or element.endswith(":"):
            raise SearchError(
                [Validation("q", f"Query element {go_quote(element)} cannot start or end with ':'")]
            )
        parts = _split(element, ":", keep_quotes=False)
        if len(parts) == 1:
            # The element itself, quotes included, as Coder passes it on.
            default(element, values)
        elif len(parts) == 2:
            values.setdefault(go_to_lower(parts[0]), []).append(parts[1])
        else:
            raise SearchError(
                [Validation("q", f"Query element {go_quote(element)} can only contain 1 ':'")]
            )
    return values


def _split(text: str, delimiter: str, *, keep_quotes: bool) -> list[str]:
    """Split on `delimiter` outside double quotes, dropping empty pieces (strings.FieldsFunc)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if not quoted and char == delimiter:
            if current:
                parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        parts.append("".join(current))
    return parts if keep_quotes else [part.strip('"') for part in parts]
