"""Global IDs and cursors keep their exact bytes: IDs clients stored stay valid."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from aibridge_graphql.schema.ids import _decode, _encode, decode_cursor, encode_cursor

# Any text that encodes to UTF-8 (lone surrogates cannot be part of an ID at all).
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


def reference(parts: list[str]) -> str:
    """The encoding IDs were minted with so far."""
    raw = json.dumps(parts, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@given(st.lists(TEXT, min_size=1, max_size=5))
def test_the_encoding_is_byte_for_byte_the_json_dumps_one(parts: list[str]) -> None:
    assert _encode(parts) == reference(parts)
    assert _decode(_encode(parts), "ID") == parts


def test_quotes_controls_and_non_ascii_round_trip() -> None:
    value = 'a"b\\c\nd\x00e\u2028f ü 😀 /+='
    assert _encode(["SessionCursor", value]) == reference(["SessionCursor", value])
    assert decode_cursor("Session", encode_cursor("Session", value)) == value
