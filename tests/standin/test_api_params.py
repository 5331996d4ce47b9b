"""Go-compatible parsing behind the stand-in's 400 messages (strconv, google/uuid, time)."""

from __future__ import annotations

import re

import pytest

from aibridge_graphql.standin.auth import go_time_string, split_api_token
from aibridge_graphql.standin.params import parse_int32, parse_uuid
from aibridge_graphql.standin.render import sanitize_credential_hint, timestamp

CANONICAL = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(
    "text",
    [
        CANONICAL,
        CANONICAL.upper(),
        "{" + CANONICAL + "}",
        "urn:uuid:" + CANONICAL,
        CANONICAL.replace("-", ""),
    ],
)
def test_uuid_forms_google_uuid_accepts(text: str) -> None:
    assert parse_uuid(text) == CANONICAL


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid UUID length: 0"),
        ("abc", "invalid UUID length: 3"),
        ("x" * 36, "invalid UUID format"),
        (CANONICAL.replace("-", "+"), "invalid UUID format"),
        ("urn:uuix:" + CANONICAL, 'invalid urn prefix: "urn:uuix:"'),
        ("é" * 18, "invalid UUID format"),  # 36 bytes: Go counts bytes, not characters
    ],
)
def test_uuid_errors_carry_google_uuid_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_uuid(text)


@pytest.mark.parametrize(("text", "value"), [("+5", 5), ("-0", 0), ("007", 7)])
def test_int32_accepts_what_strconv_accepts(text: str, value: int) -> None:
    assert parse_int32(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (" 5", 'strconv.ParseInt: parsing " 5": invalid syntax'),
        ("5_0", 'strconv.ParseInt: parsing "5_0": invalid syntax'),
        ("1e3", 'strconv.ParseInt: parsing "1e3": invalid syntax'),
        ("-2147483649", 'strconv.ParseInt: parsing "-2147483649": value out of range'),
    ],
)
def test_int32_errors_carry_strconv_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_int32(text)


def test_times_format_like_go() -> None:
    assert timestamp(0) == "1970-01-01T00:00:00Z"
    assert timestamp(1_500_000) == "1970-01-01T00:00:01.5Z"
    assert timestamp(1_000_001) == "1970-01-01T00:00:01.000001Z"
    assert go_time_string(86_400_000_000) == "1970-01-02 00:00:00 +0000 UTC"


@pytest.mark.parametrize(
    ("hint", "shown"),
    [
        ("", ""),
        ("sk-a...efgh", "sk-a...efgh"),
        ("sk-abc...wxyz12", "sk-abc...wxyz12"),  # exactly 15 bytes
        ("sk-abcd...wxyz12", "..."),  # 16 bytes
        ("sk-abcdefgh", "..."),  # not masked
        ("ключ...ключ", "..."),  # 11 characters but 19 bytes
    ],
)
def test_credential_hint_masking(hint: str, shown: str) -> None:
    assert sanitize_credential_hint(hint) == shown


def test_token_split_counts_bytes() -> None:
    assert split_api_token("abcdefghij-0123456789012345678901") == (
        "abcdefghij",
        "0123456789012345678901",
    )
    with pytest.raises(ValueError, match="expected 10 got 12"):
        split_api_token("ééééééabcdefgh"[:6] + "-0123456789012345678901")
