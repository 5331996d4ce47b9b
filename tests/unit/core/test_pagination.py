"""The pagination arithmetic both faces share (core/pagination.py), and the faces' wording of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from aibridge_graphql.core import pagination
from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.grpc import paging
from aibridge_graphql.schema import ids
from aibridge_graphql.schema.filters import SessionFilter
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import search_query as q


def test_size_limit_is_the_setting_within_the_upstream_cap() -> None:
    assert pagination.size_limit(Settings(max_page_size=100), 1000) == 100
    # The extra row must fit under the upstream's cap too.
    assert pagination.size_limit(Settings(max_page_size=500), 200) == 199


@pytest.mark.parametrize(
    ("value", "problem"),
    [(0, None), (7, None), (10, None), (11, "must be at most 10"), (-1, "must not be negative")],
)
def test_size_problem(value: int, problem: str | None) -> None:
    assert pagination.size_problem(value, 10) == problem


def test_cut_sees_past_the_page_exactly() -> None:
    assert pagination.fetch_limit(3) == 4
    full = pagination.cut([1, 2, 3, 4], 3)
    assert (list(full.items), full.has_next) == ([1, 2, 3], True)
    short = pagination.cut([1, 2, 3], 3)
    assert (list(short.items), short.has_next) == ([1, 2, 3], False)


@pytest.mark.parametrize("value", ["²", "١", "0", "-1", "+1", " 1", "1.0", str(2**31), "0x10", ""])
def test_offsets_are_ascii_int32_above_zero(value: str) -> None:
    with pytest.raises(pagination.MalformedCursor):
        pagination.cursor_offset(value)
    # Each face words it as the caller's error, never a crash.
    with pytest.raises(BadUserInput, match="Malformed cursor value"):
        ids.cursor_offset(value)
    with pytest.raises(BadUserInput, match="page_token"):
        paging.cursor_offset(value)


def test_offsets_and_uuids_that_name_a_position() -> None:
    assert pagination.cursor_offset(None) == 0
    assert pagination.cursor_offset(str(2**31 - 1)) == 2**31 - 1
    value = uuid4()
    assert pagination.cursor_uuid(str(value)) == value
    assert pagination.cursor_uuid(None) is None
    for bad in ("nope", str(UUID(int=0))):
        with pytest.raises(pagination.MalformedCursor):
            pagination.cursor_uuid(bad)
        with pytest.raises(BadUserInput, match="Malformed thread cursor"):
            ids.cursor_uuid("Thread", bad)
        with pytest.raises(BadUserInput, match="page_token"):
            paging.cursor_uuid(bad)


def test_page_size_errors_name_the_field_in_each_face() -> None:
    with pytest.raises(BadUserInput) as caught:
        paging.page_size(11, default=5, maximum=10)
    assert str(caught.value) == "`page_size` must be at most 10 (got 11)."
    assert caught.value.extensions["validations"] == [
        {"field": "page_size", "detail": "must be at most 10"}
    ]
    assert paging.page_size(0, default=5, maximum=10) == 5


@dataclass
class _Keys:
    provider: str | None = None
    provider_name: str | None = None
    model: str | None = None
    client: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


def test_whole_sessions_are_selected_by_initiator_and_session_id_only() -> None:
    assert pagination.selects_whole_sessions(q.SessionFilter(initiator="me", session_id="s"))
    assert not pagination.selects_whole_sessions(q.SessionFilter(model="m"))
    assert not pagination.selects_whole_sessions(_Keys(started_before=datetime.now(UTC)))
    # The GraphQL input answers the same through the core.
    assert SessionFilter(initiator="me").selects_whole_sessions
    assert not SessionFilter(client="c").selects_whole_sessions
