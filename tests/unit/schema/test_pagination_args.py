"""Relay argument checks, page cutting, global IDs and cursors (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.refs import InterceptionRef, SessionRef, ThreadRef, UserRef
from aibridge_graphql.schema.ids import (
    cursor_uuid,
    decode_cursor,
    decode_global_id,
    decode_typed_global_id,
    encode_cursor,
    encode_global_id,
)
from aibridge_graphql.schema.pagination import (
    Backward,
    Forward,
    both_ways_args,
    forward_args,
    forward_page,
)
from aibridge_graphql.settings import Settings

SETTINGS = Settings(default_page_size=20, max_page_size=100)


def test_first_defaults_to_the_setting_and_asks_one_more() -> None:
    args = forward_args("Session", None, None, settings=SETTINGS, upstream_max=1000)
    assert args == Forward(first=20, after=None)
    assert args.limit == 21


@pytest.mark.parametrize(
    ("first", "message"),
    [(101, "at most 100"), (-1, "must not be negative")],
)
def test_first_out_of_range_is_bad_user_input(first: int, message: str) -> None:
    with pytest.raises(BadUserInput, match=message):
        forward_args("Session", first, None, settings=SETTINGS, upstream_max=1000)


def test_threads_page_size_is_capped_by_the_upstream_limit() -> None:
    big = Settings(max_page_size=1000)
    both_ways_args("Thread", 199, None, None, None, settings=big, upstream_max=200)
    with pytest.raises(BadUserInput, match="at most 199"):
        both_ways_args("Thread", 200, None, None, None, settings=big, upstream_max=200)


@pytest.mark.parametrize(
    ("first", "after", "last", "before", "message"),
    [
        (1, None, 1, None, "either `first` or `last`"),
        (None, "a", None, "b", "either `after` or `before`"),
        (1, None, None, "b", "cannot be combined"),
        (None, None, -2, None, "must not be negative"),
    ],
)
def test_both_ways_rejects_mixed_arguments(
    first: int | None, after: str | None, last: int | None, before: str | None, message: str
) -> None:
    before_cursor = encode_cursor("Thread", str(uuid4())) if before else None
    after_cursor = encode_cursor("Thread", str(uuid4())) if after else None
    with pytest.raises(BadUserInput, match=message):
        both_ways_args(
            "Thread", first, after_cursor, last, before_cursor, settings=SETTINGS, upstream_max=200
        )


def test_last_and_before_decode_the_cursor() -> None:
    thread_id = str(uuid4())
    args = both_ways_args(
        "Thread",
        None,
        None,
        3,
        encode_cursor("Thread", thread_id),
        settings=SETTINGS,
        upstream_max=200,
    )
    assert args == Backward(last=3, before=thread_id)


def test_forward_page_is_exact() -> None:
    args = Forward(first=3, after=None)
    full = forward_page([1, 2, 3, 4], args)
    assert (list(full.items), full.has_next_page, full.has_previous_page) == (
        [1, 2, 3],
        True,
        False,
    )
    short = forward_page([1, 2, 3], Forward(first=3, after="x"))
    assert (list(short.items), short.has_next_page, short.has_previous_page) == (
        [1, 2, 3],
        False,
        True,
    )
    empty = forward_page([9], Forward(first=0, after=None))
    assert (list(empty.items), empty.has_next_page) == ([], True)


def test_cursor_of_another_connection_is_rejected() -> None:
    cursor = encode_cursor("Session", "s-1")
    assert decode_cursor("Session", cursor) == "s-1"
    with pytest.raises(BadUserInput, match="not a cursor of this Thread connection"):
        decode_cursor("Thread", cursor)
    with pytest.raises(BadUserInput, match="Malformed cursor"):
        decode_cursor("Thread", "!!not base64!!")


@pytest.mark.parametrize(
    "ref",
    [
        UserRef(uuid4()),
        SessionRef("claude:session/with:colons", uuid4()),
        ThreadRef(SessionRef("s", uuid4()), uuid4()),
        InterceptionRef(uuid4(), uuid4(), datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)),
    ],
)
def test_global_ids_round_trip(ref: UserRef | SessionRef | ThreadRef | InterceptionRef) -> None:
    global_id = encode_global_id(ref)
    assert decode_global_id(global_id) == ref


def test_user_global_id_is_the_raw_uuid() -> None:
    user_id = uuid4()
    assert encode_global_id(UserRef(user_id)) == str(user_id)
    assert decode_typed_global_id(str(user_id), UserRef) == UserRef(UUID(str(user_id)))


@pytest.mark.parametrize("value", ["", "abc", "WyJGb28iXQ", encode_cursor("Session", "x")])
def test_malformed_or_unknown_ids_are_bad_user_input(value: str) -> None:
    with pytest.raises(BadUserInput):
        decode_global_id(value)


def test_typed_decode_rejects_another_type() -> None:
    session_id = encode_global_id(SessionRef("s", uuid4()))
    with pytest.raises(BadUserInput, match="not an ID of type User"):
        decode_typed_global_id(session_id, UserRef)


@pytest.mark.parametrize("value", ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_cursors_coder_would_read_as_none_are_refused(value: str) -> None:
    # Coder treats an empty cursor and the nil UUID as "no cursor": the page would restart.
    with pytest.raises(BadUserInput, match="Malformed"):
        cursor_uuid("Thread", decode_cursor("Thread", encode_cursor("Thread", value)))


def test_cursor_uuid_of_a_real_cursor() -> None:
    value = uuid4()
    assert cursor_uuid("Interception", str(value)) == value
    assert cursor_uuid("Interception", None) is None


@pytest.mark.parametrize(
    "ref", [SessionRef("", uuid4()), ThreadRef(SessionRef("", uuid4()), uuid4())]
)
def test_ids_without_a_session_id_are_malformed(ref: SessionRef | ThreadRef) -> None:
    with pytest.raises(BadUserInput, match="Malformed node ID"):
        decode_global_id(encode_global_id(ref))
