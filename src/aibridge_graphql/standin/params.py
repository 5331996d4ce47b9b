"""Coder's URL query parameter rules: `httpapi.ParsePagination` and the threads cursors.

Go's `url.Values.Get` reads the first value, and Coder treats an empty first value as absent;
a parameter given twice (with a non-empty first value) is an error. Numbers follow
`strconv.ParseInt(v, 10, 32)` and UUIDs google/uuid, so the error texts are theirs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from multidict import MultiMapping

from aibridge_graphql.standin.errors import ApiError, FieldError
from aibridge_graphql.standin.goparse import go_quote, parse_go_uuid

T = TypeVar("T")
Query = MultiMapping[str]

_DIGITS = re.compile(r"[+-]?[0-9]+")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

INVALID_PARAMS = "Query parameters have invalid values."
NIL_UUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Pagination:
    """Parsed `after_id`, `limit` and `offset` (0 when absent, as in Go)."""

    after_id: str | None
    limit: int
    offset: int


def first_value(query: Query, key: str) -> str:
    """`url.Values.Get`: the first value, or "" when the key is absent."""
    values = query.getall(key, [])
    return values[0] if values else ""


def parse_int32(text: str) -> int:
    """`strconv.ParseInt(text, 10, 32)`; ValueError carries Go's error text."""
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value


def uuid_error(text: str) -> str:
    """google/uuid's error text for a value `parse_go_uuid` rejected."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) not in (32, 36, 38, 45):
        return f"invalid UUID length: {len(raw)}"
    if len(raw) == 45 and raw[:9].lower() != b"urn:uuid:":
        return f"invalid urn prefix: {go_quote(raw[:9].decode('utf-8', 'replace'))}"
    return "invalid UUID format"


def parse_uuid(text: str) -> str:
    """google/uuid.Parse to the canonical lowercase form; ValueError carries its error text."""
    parsed = parse_go_uuid(text)
    if parsed is None:
        raise ValueError(uuid_error(text))
    return parsed


def _positive_int32(text: str) -> int:
    value = parse_int32(text)
    if value < 0:
        raise ValueError("value is negative")
    return value


class _Parser:
    """Collects every parameter's error before failing, like Coder's QueryParamParser."""

    def __init__(self, query: Query) -> None:
        self.query = query
        self.errors: list[FieldError] = []

    def one(self, key: str, parse: Callable[[str], T], describe: Callable[[str], str]) -> T | None:
        values = self.query.getall(key, [])
        if not values or values[0] == "":
            return None
        if len(values) > 1:
            self.errors.append(
                FieldError(
                    key,
                    f"Query param {go_quote(key)} provided more than once, found "
                    f"{len(values)} times. Only provide 1 instance of this query param.",
                )
            )
            return None
        try:
            return parse(values[0])
        except ValueError as exc:
            self.errors.append(FieldError(key, describe(str(exc))))
            return None


def parse_pagination(query: Query) -> Pagination:
    """`httpapi.ParsePagination`: after_id (uuid), limit and offset (positive int32)."""
    parser = _Parser(query)
    after_id = parser.one(
        "after_id", parse_uuid, lambda _: 'Query param "after_id" must be a valid uuid'
    )
    limit = parser.one("limit", _positive_int32, _int_detail("limit"))
    offset = parser.one("offset", _positive_int32, _int_detail("offset"))
    if parser.errors:
        raise ApiError(400, INVALID_PARAMS, validations=parser.errors)
    # Go compares the cursor with uuid.Nil: the all-zero UUID means "no cursor".
    return Pagination(None if after_id == NIL_UUID else after_id, limit or 0, offset or 0)


def _int_detail(key: str) -> Callable[[str], str]:
    return lambda err: f"Query param {go_quote(key)} must be a valid 32-bit positive integer: {err}"


def check_list_limit(pagination: Pagination, *, default: int = 100, maximum: int = 1000) -> int:
    """The page size of a list endpoint: 0 means the default; outside (0, max] is a 400."""
    limit = pagination.limit or default
    if not 0 < limit <= maximum:
        raise ApiError(
            400,
            "Invalid pagination limit value.",
            f"Pagination limit must be in range (0, {maximum}]",
        )
    return limit


@dataclass(frozen=True)
class ThreadPage:
    """The threads endpoint's own cursor and page size parameters."""

    after_id: str | None
    before_id: str | None
    limit: int


def _thread_cursor(query: Query, key: str) -> str | None:
    text = first_value(query, key)
    if not text:
        return None
    try:
        cursor = parse_uuid(text)
    except ValueError as exc:
        raise ApiError(400, f"Invalid {key} query parameter.", str(exc)) from None
    return None if cursor == NIL_UUID else cursor


def parse_thread_page(query: Query) -> ThreadPage:
    """`after_id` / `before_id` (uuid.Parse, not both) and `limit` (1..200, default 50)."""
    after_id = _thread_cursor(query, "after_id")
    before_id = _thread_cursor(query, "before_id")
    if after_id is not None and before_id is not None:
        raise ApiError(400, "Cannot use both after_id and before_id in the same request.")
    limit = 50
    text = first_value(query, "limit")
    if text:
        try:
            limit = parse_int32(text)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 200:
            raise ApiError(
                400, "Invalid limit query parameter.", "Limit must be between 1 and 200."
            )
    return ThreadPage(after_id, before_id, limit)
