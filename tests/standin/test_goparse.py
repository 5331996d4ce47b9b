"""Go standard-library behaviour reproduced for the stand-in's messages (goparse)."""

from __future__ import annotations

import pytest

from aibridge_graphql.standin.goparse import (
    GO_ZERO_TIME_NS,
    GoTimeError,
    go_quote,
    go_to_lower,
    go_to_upper,
    parse_go_uuid,
    parse_rfc3339nano,
)

LAYOUT_Q = '"2006-01-02T15:04:05.999999999Z07:00"'


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain", '"plain"'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("tab\tnl\nnul\x00del\x7f", '"tab\\tnl\\nnul\\x00del\\x7f"'),
        ("café 😀", '"café 😀"'),
        ("zero\u200bwidth", '"zero\\u200bwidth"'),
        ("\U000e0001", '"\\U000e0001"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_go_case_mapping_is_per_rune() -> None:
    assert go_to_upper("straße 2025-01-01t00:00:00z") == "STRAßE 2025-01-01T00:00:00Z"
    assert go_to_lower("İD") == "id"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1a", "8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1a"),
        ("8E1E0F4A-8B1E-4C1A-9A1E-0F4A8B1E4C1A", "8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1a"),
        ("{8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1a}", "8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1a"),
        ("URN:UUID:8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1a", "8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1a"),
        ("8e1e0f4a8b1e4c1a9a1e0f4a8b1e4c1a", "8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1a"),
        ("8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1", None),
        ("8e1e0f4a_8b1e-4c1a-9a1e-0f4a8b1e4c1a", None),
        ("8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1g", None),
        ("uuid:8e1e0f4a-8b1e-4c1a-9a1e-0f4a8b1e4c1a", None),
        ("alice", None),
    ],
)
def test_parse_go_uuid(text: str, expected: str | None) -> None:
    assert parse_go_uuid(text) == expected


@pytest.mark.parametrize(
    ("value", "seconds", "nanos"),
    [
        ("1970-01-01T00:00:00Z", 0, 0),
        ("2025-01-01T00:00:00Z", 1_735_689_600, 0),
        ("2025-01-01T00:00:00.5Z", 1_735_689_600, 500_000_000),
        ("2025-01-01T00:00:00,25Z", 1_735_689_600, 250_000_000),
        ("2025-01-01T00:00:00.1234567891234Z", 1_735_689_600, 123_456_789),
        ("2025-01-01T05:30:00+05:30", 1_735_689_600, 0),
        ("2024-12-31T19:00:00-05:00", 1_735_689_600, 0),
        ("2025-01-01T1:00:00Z", 1_735_693_200, 0),
        ("2024-02-29T00:00:00Z", 1_709_164_800, 0),
        ("0000-01-01T00:00:00Z", -62_167_219_200, 0),
    ],
)
def test_parse_rfc3339nano(value: str, seconds: int, nanos: int) -> None:
    assert parse_rfc3339nano(value) == seconds * 1_000_000_000 + nanos


def test_go_zero_time() -> None:
    assert parse_rfc3339nano("0001-01-01T00:00:00Z") == GO_ZERO_TIME_NS


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2025-01-01", f'parsing time "2025-01-01" as {LAYOUT_Q}: cannot parse "" as "T"'),
        (
            "25-01-01T00:00:00Z",
            f'parsing time "25-01-01T00:00:00Z" as {LAYOUT_Q}: cannot parse'
            ' "25-01-01T00:00:00Z" as "2006"',
        ),
        (
            "2025/01/01T00:00:00Z",
            f'parsing time "2025/01/01T00:00:00Z" as {LAYOUT_Q}: cannot'
            ' parse "/01/01T00:00:00Z" as "-"',
        ),
        (
            "2025-1-01T00:00:00Z",
            f'parsing time "2025-1-01T00:00:00Z" as {LAYOUT_Q}: cannot'
            ' parse "1-01T00:00:00Z" as "01"',
        ),
        ("2025-00-01T00:00:00Z", 'parsing time "2025-00-01T00:00:00Z": month out of range'),
        ("2025-02-29T00:00:00Z", 'parsing time "2025-02-29T00:00:00Z": day out of range'),
        ("2025-04-00T00:00:00Z", 'parsing time "2025-04-00T00:00:00Z": day out of range'),
        ("2025-01-01T24:00:00Z", 'parsing time "2025-01-01T24:00:00Z": hour out of range'),
        ("2025-01-01T00:60:00Z", 'parsing time "2025-01-01T00:60:00Z": minute out of range'),
        ("2025-01-01T00:00:60Z", 'parsing time "2025-01-01T00:00:60Z": second out of range'),
        (
            "2025-01-01T00:00:00",
            f'parsing time "2025-01-01T00:00:00" as {LAYOUT_Q}: cannot parse "" as "Z07:00"',
        ),
        (
            "2025-01-01T00:00:00+0100",
            f'parsing time "2025-01-01T00:00:00+0100" as {LAYOUT_Q}:'
            ' cannot parse "+0100" as "Z07:00"',
        ),
        (
            "2025-01-01T00:00:00*01:00",
            f'parsing time "2025-01-01T00:00:00*01:00" as'
            f' {LAYOUT_Q}: cannot parse "*01:00" as "Z07:00"',
        ),
        (
            "2025-01-01T00:00:00+25:00",
            'parsing time "2025-01-01T00:00:00+25:00": time zone offset hour out of range',
        ),
        ("2025-01-01T00:00:00Z ", 'parsing time "2025-01-01T00:00:00Z ": extra text: " "'),
        (
            "2025-01-01T00:00:00Zé",
            'parsing time "2025-01-01T00:00:00Z\\xc3\\xa9": extra text: "\\xc3\\xa9"',
        ),
        ('"', f'parsing time "\\"" as {LAYOUT_Q}: cannot parse "\\"" as "2006"'),
    ],
)
def test_parse_errors_match_go(value: str, message: str) -> None:
    with pytest.raises(GoTimeError) as caught:
        parse_rfc3339nano(value)
    assert str(caught.value) == message
