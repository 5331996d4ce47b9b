"""Opaque global IDs and cursors: URL-safe base64 of a typed JSON tuple.

A global ID carries everything needed to find the entity again with one upstream call, because
the AI Bridge API has no get-by-id for interceptions (see `schema/node.py`). A user's global ID
is its Coder UUID itself: UUIDs are globally unique and never collide with the base64 ids here.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import TypeVar, assert_never
from uuid import UUID

from aibridge_graphql.core import pagination
from aibridge_graphql.core.errors import BadUserInput

# Re-exported: the limit an offset cursor value has (tests quote it).
from aibridge_graphql.core.pagination import MAX_OFFSET as MAX_OFFSET
from aibridge_graphql.core.refs import InterceptionRef, SessionRef, ThreadRef, UserRef

# Our own IDs and cursors stay far below this (a session ID wraps a client session id, itself
# capped at 1 KiB by the filters); longer input is refused before any decoding work.
MAX_ID_LENGTH = 2048
_ECHO = 80
# The JSON string literal of a str, as `json.dumps(..., ensure_ascii=False)` writes it.
_json_string = json.encoder.encode_basestring


def shown(value: str) -> str:
    """`value` as an error message quotes it: repr, cut to a readable length."""
    return repr(value) if len(value) <= _ECHO else repr(value[:_ECHO]) + f"... ({len(value)} chars)"


def _check_length(value: str, what: str) -> None:
    if len(value) > MAX_ID_LENGTH:
        raise BadUserInput(
            f"Malformed {what}: longer than {MAX_ID_LENGTH} characters ({len(value)})."
        )


def _encode(parts: list[str]) -> str:
    # Byte for byte `json.dumps(parts, separators=(",", ":"), ensure_ascii=False)` (IDs clients
    # kept stay valid), without building a JSONEncoder per call: several IDs per item.
    raw = ("[" + ",".join(map(_json_string, parts)) + "]").encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(value: str, what: str) -> list[str]:
    """Decode a typed tuple; any malformation is the caller's input error, never a 500."""
    _check_length(value, what)
    try:
        padded = value + "=" * (-len(value) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode())
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise BadUserInput(f"Malformed {what}: {shown(value)}.") from exc
    if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
        raise BadUserInput(f"Malformed {what}: {shown(value)}.")
    return parts


AnyRef = InterceptionRef | SessionRef | ThreadRef | UserRef
_RefT = TypeVar("_RefT", InterceptionRef, SessionRef, ThreadRef, UserRef)


def encode_global_id(ref: AnyRef) -> str:
    """The opaque Node ID of an entity."""
    match ref:
        case UserRef(id=user_id):
            return str(user_id)
        case InterceptionRef():
            return _encode(
                ["Interception", str(ref.id), str(ref.initiator_id), ref.started_at.isoformat()]
            )
        case SessionRef():
            return _encode(["Session", str(ref.initiator_id), ref.session_id])
        case ThreadRef():
            return _encode(
                [
                    "Thread",
                    str(ref.session.initiator_id),
                    ref.session.session_id,
                    str(ref.thread_id),
                ]
            )
        case _:
            assert_never(ref)


def _uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError as exc:
        raise BadUserInput(f"Malformed {what}.") from exc


def decode_global_id(value: str) -> AnyRef:
    """Parse a Node ID; malformed or unknown-type IDs raise `BadUserInput`."""
    _check_length(value, "node ID")
    try:
        return UserRef(UUID(value))
    except ValueError:
        pass
    parts = _decode(value, "node ID")
    kind, rest = parts[0], parts[1:]
    if kind == "Interception" and len(rest) == 3:
        try:
            started_at = datetime.fromisoformat(rest[2])
        except ValueError as exc:
            raise BadUserInput("Malformed node ID.") from exc
        if started_at.tzinfo is None:
            raise BadUserInput("Malformed node ID.")
        return InterceptionRef(_uuid(rest[0], "node ID"), _uuid(rest[1], "node ID"), started_at)
    if kind == "Session" and len(rest) == 2 and rest[1]:
        return SessionRef(session_id=rest[1], initiator_id=_uuid(rest[0], "node ID"))
    if kind == "Thread" and len(rest) == 3 and rest[1]:
        session = SessionRef(session_id=rest[1], initiator_id=_uuid(rest[0], "node ID"))
        return ThreadRef(session=session, thread_id=_uuid(rest[2], "node ID"))
    raise BadUserInput(f"Malformed node ID: {shown(value)}.")


def decode_typed_global_id(value: str, expected: type[_RefT]) -> _RefT:
    """Parse a Node ID that must be of one type (e.g. a federation key)."""
    ref = decode_global_id(value)
    if not isinstance(ref, expected):
        name = expected.__name__.removesuffix("Ref")
        raise BadUserInput(f"The ID {shown(value)} is not an ID of type {name}.")
    return ref


# Cursors: the upstream cursor value, tagged with the connection kind so a cursor of one
# connection is rejected by another with a clear message.


def encode_cursor(kind: str, value: str) -> str:
    """An opaque Relay cursor wrapping one upstream cursor value."""
    return _encode([f"{kind}Cursor", value])


def decode_cursor(kind: str, cursor: str) -> str:
    """The upstream cursor value inside a cursor of `kind`; `BadUserInput` otherwise."""
    parts = _decode(cursor, "cursor")
    if len(parts) != 2 or parts[0] != f"{kind}Cursor":
        raise BadUserInput(f"The cursor {shown(cursor)} is not a cursor of this {kind} connection.")
    if not parts[1]:
        # Coder reads an empty cursor as none: it would silently restart from the first page.
        raise BadUserInput(f"Malformed cursor: {shown(cursor)}.")
    return parts[1]


def cursor_uuid(kind: str, value: str | None) -> UUID | None:
    """The UUID a decoded `kind` cursor value names (None for no cursor; not the nil UUID)."""
    try:
        return pagination.cursor_uuid(value)
    except pagination.MalformedCursor as exc:
        raise BadUserInput(f"Malformed {kind.lower()} cursor.") from exc


def cursor_offset(value: str | None) -> int:
    """The upstream `offset` a decoded offset cursor value names (0 for no cursor)."""
    try:
        return pagination.cursor_offset(value)
    except pagination.MalformedCursor:
        raise BadUserInput(f"Malformed cursor value: {shown(value or '')}.") from None
