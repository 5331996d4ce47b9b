"""The `q` string: quoting, RFC3339Nano dates, stable key order, unrepresentable values rejected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aibridge_graphql.upstream.search_query import (
    InterceptionFilter,
    SearchValueError,
    SessionFilter,
    build_q,
    format_rfc3339nano,
)


def test_rfc3339nano_trims_fraction_and_converts_to_utc() -> None:
    assert format_rfc3339nano(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00Z"
    assert format_rfc3339nano(datetime(2025, 1, 1, 0, 0, 0, 500000, UTC)) == (
        "2025-01-01T00:00:00.5Z"
    )
    assert format_rfc3339nano(datetime(2025, 1, 1, 0, 0, 0, 123450, UTC)) == (
        "2025-01-01T00:00:00.12345Z"
    )
    plus_two = timezone(timedelta(hours=2))
    assert format_rfc3339nano(datetime(2025, 1, 1, 1, 30, tzinfo=plus_two)) == (
        "2024-12-31T23:30:00Z"
    )


def test_rfc3339nano_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_rfc3339nano(datetime(2025, 1, 1))


def test_empty_filters_give_an_empty_q() -> None:
    assert build_q(None) == ""
    assert build_q(InterceptionFilter()) == ""
    assert build_q(SessionFilter()) == ""


def test_terms_are_quoted_in_a_stable_order() -> None:
    search = SessionFilter(
        started_before=datetime(2025, 2, 1, tzinfo=UTC),
        model="claude 4: opus",
        initiator="me",
        session_id="abc",
        provider="anthropic",
        client="Claude Code",
        provider_name="corp-anthropic",
        started_after=datetime(2025, 1, 1, 12, tzinfo=UTC),
    )
    assert build_q(search) == (
        'session_id:"abc" initiator:"me" provider:"anthropic" provider_name:"corp-anthropic" '
        'model:"claude 4: opus" client:"Claude Code" '
        'started_after:"2025-01-01T12:00:00Z" started_before:"2025-02-01T00:00:00Z"'
    )


def test_backslashes_are_sent_verbatim_because_coder_does_not_unescape() -> None:
    assert build_q(InterceptionFilter(model="a\\b")) == 'model:"a\\b"'


def test_a_double_quote_cannot_be_expressed_and_is_rejected() -> None:
    with pytest.raises(SearchValueError, match="double quote") as caught:
        build_q(InterceptionFilter(client='say "hi"'))
    assert caught.value.key == "client"


def test_equal_filters_give_equal_q() -> None:
    a = InterceptionFilter(model="m", provider="p")
    b = InterceptionFilter(provider="p", model="m")
    assert a == b
    assert hash(a) == hash(b)
    assert build_q(a) == build_q(b)


def test_rfc3339nano_pads_early_years_to_four_digits() -> None:
    assert format_rfc3339nano(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    assert format_rfc3339nano(datetime(999, 12, 31, 23, 59, 59, 5, tzinfo=UTC)) == (
        "0999-12-31T23:59:59.000005Z"
    )
