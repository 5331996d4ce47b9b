"""Import interceptions in the JSON shape Coder's REST API returns into the stand-in database.

Accepted documents: a `GET /interceptions` response (`{"count": N, "results": [...]}`) or a JSON
array of interceptions. Every record is validated before anything is written; one bad record
means nothing is loaded. That shape carries no session or thread links, so each imported
interception becomes its own session and thread root.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from aibridge_graphql.standin.records import (
    InterceptionRecord,
    TokenUsageRecord,
    ToolUsageRecord,
    UserPromptRecord,
    UserRecord,
    insert_interceptions,
    insert_providers,
    insert_users,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Emails are required and unique; imported users get a reserved, undeliverable domain.
IMPORTED_EMAIL_DOMAIN = "imported.invalid"


class _Strict(BaseModel):
    # Strict types (no "12" for 12, no epoch numbers for times); unknown fields from newer
    # servers are ignored, as the gateway's own models do.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _User(_Strict):
    id: UUID
    username: str = Field(min_length=1)
    name: str = ""
    avatar_url: str = ""


class _Child(_Strict):
    """Fields every child row of an interception has."""

    id: UUID
    interception_id: UUID
    provider_response_id: str
    metadata: dict[str, Any] | None = None
    created_at: AwareDatetime


class _TokenUsage(_Child):
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cache_write_input_tokens: int = Field(default=0, ge=0)


class _UserPrompt(_Child):
    prompt: str


class _ToolUsage(_Child):
    server_url: str = ""
    tool: str
    input: str
    injected: bool
    invocation_error: str = ""


class _Interception(_Strict):
    id: UUID
    api_key_id: str | None = None
    initiator: _User
    provider: str = Field(min_length=1)
    provider_name: str = ""
    model: str = Field(min_length=1)
    client: str | None = None
    metadata: dict[str, Any] | None = None
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    token_usages: list[_TokenUsage] = Field(default_factory=list)
    user_prompts: list[_UserPrompt] = Field(default_factory=list)
    tool_usages: list[_ToolUsage] = Field(default_factory=list)


@dataclass(frozen=True)
class RecordError:
    """Why one record of the document cannot be imported."""

    index: int
    record_id: str | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"record {self.index}" + (f" (id {self.record_id})" if self.record_id else "")
        return f"{where}: {self.field}: {self.reason}"


class ImportFailed(Exception):
    """The document or some of its records are invalid; nothing was written."""

    def __init__(self, message: str, errors: Iterable[RecordError] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    interceptions: int
    new_users: list[str] = field(default_factory=list)


def parse_document(text: str) -> list[Any]:
    """The interception items of a `{count, results}` response or a JSON array."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportFailed(f"not valid JSON: {error}") from None
    if isinstance(document, dict) and isinstance(document.get("results"), list):
        items: list[Any] = document["results"]
        return items
    if isinstance(document, list):
        return document
    raise ImportFailed(
        'expected an interceptions response ({"count": N, "results": [...]}) '
        "or a JSON array of interceptions"
    )


def import_interceptions(conn: sqlite3.Connection, items: list[Any]) -> ImportResult:
    """Validate every item, then load them all in one transaction; ImportFailed loads nothing."""
    parsed, errors = _validate(items)
    existing = _existing_users(conn)
    users, user_errors = _collect_users(parsed, existing)
    errors += user_errors + _clashes(conn, parsed)
    if errors:
        errors.sort(key=lambda e: e.index)
        raise ImportFailed(f"{len(errors)} invalid record(s); nothing was imported", errors)
    known = {row[0] for row in conn.execute("SELECT name FROM ai_providers")}
    providers = {(p.provider_name or p.provider, p.provider) for _, p in parsed}
    # One explicit transaction, whatever the connection's isolation level: all or nothing.
    conn.execute("BEGIN")
    try:
        insert_users(conn, users)
        insert_providers(conn, sorted(p for p in providers if p[0] not in known))
        insert_interceptions(conn, (_record(p) for _, p in parsed))
    except sqlite3.DatabaseError as error:
        conn.rollback()
        raise ImportFailed(
            f"the database refused the import, nothing was loaded: {error}"
        ) from None
    conn.commit()
    return ImportResult(len(parsed), [u.username for u in users])


def _validate(items: list[Any]) -> tuple[list[tuple[int, _Interception]], list[RecordError]]:
    parsed: list[tuple[int, _Interception]] = []
    errors: list[RecordError] = []
    for index, item in enumerate(items):
        record_id = _raw_id(item)
        try:
            # JSON mode: strict, yet times and UUIDs arrive as strings, as on the wire.
            interception = _Interception.model_validate_json(json.dumps(item))
        except PydanticValidationError as error:
            errors += [
                RecordError(index, record_id, _field(e["loc"]), e["msg"]) for e in error.errors()
            ]
            continue
        problems = _semantic_errors(interception)
        errors += [RecordError(index, record_id, f, reason) for f, reason in problems]
        if not problems:
            parsed.append((index, interception))
    return parsed, errors


def _raw_id(item: Any) -> str | None:
    value = item.get("id") if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(record)"


def _semantic_errors(item: _Interception) -> list[tuple[str, str]]:
    """Rules beyond types: time order and children that point at their interception."""
    problems = _database_limits(item)
    if item.ended_at is not None and item.ended_at < item.started_at:
        problems.append(("ended_at", "must not be before started_at"))
    children: list[tuple[str, Sequence[_Child]]] = [
        ("token_usages", item.token_usages),
        ("user_prompts", item.user_prompts),
        ("tool_usages", item.tool_usages),
    ]
    for name, rows in children:
        for position, row in enumerate(rows):
            if row.interception_id != item.id:
                detail = f"is {row.interception_id}, not the interception's id {item.id}"
                problems.append((f"{name}.{position}.interception_id", detail))
    return problems


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _database_limits(item: _Interception) -> list[tuple[str, str]]:
    """Values Coder's PostgreSQL would refuse: integer columns outside int64 (bigint; SQLite
    refuses them too) and strings holding NUL bytes (neither text nor jsonb stores U+0000), at
    any depth of the record. Metadata numbers may be big: jsonb keeps arbitrary precision."""
    problems: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            if "metadata" not in path.split(".") and not _INT64_MIN <= value <= _INT64_MAX:
                problems.append((path, f"{value} is out of range for a 64-bit integer"))
        elif isinstance(value, str):
            if "\x00" in value:
                problems.append((path, "contains a NUL byte (\\u0000), which PostgreSQL refuses"))
        elif isinstance(value, dict):
            for key, inner in value.items():
                walk(key, f"{path}.(key)" if path else "(key)")
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list | tuple):
            for position, inner in enumerate(value):
                walk(inner, f"{path}.{position}")

    walk(item.model_dump(mode="python"), "")
    return problems


def _existing_users(conn: sqlite3.Connection) -> dict[str, str]:
    return {str(row[0]): str(row[1]) for row in conn.execute("SELECT id, username FROM users")}


def _collect_users(
    parsed: list[tuple[int, _Interception]], existing: dict[str, str]
) -> tuple[list[UserRecord], list[RecordError]]:
    """New users to create as members, and initiators that contradict known users."""
    by_id = dict(existing)
    id_by_username = {username: user_id for user_id, username in existing.items()}
    new: list[UserRecord] = []
    errors: list[RecordError] = []
    for index, item in parsed:
        user, user_id = item.initiator, str(item.initiator.id)
        if by_id.get(user_id, user.username) != user.username:
            reason = f"user {user_id} is already known as {by_id[user_id]!r}"
            errors.append(RecordError(index, str(item.id), "initiator.username", reason))
        elif id_by_username.get(user.username, user_id) != user_id:
            reason = f"username {user.username!r} belongs to user {id_by_username[user.username]}"
            errors.append(RecordError(index, str(item.id), "initiator.id", reason))
        elif user_id not in by_id:
            by_id[user_id] = user.username
            id_by_username[user.username] = user_id
            email = f"{user.username}@{IMPORTED_EMAIL_DOMAIN}"
            new.append(
                UserRecord(user_id, user.username, email, user.name, user.avatar_url, "member")
            )
    return new, errors


def _clashes(
    conn: sqlite3.Connection, parsed: list[tuple[int, _Interception]]
) -> list[RecordError]:
    """Ids repeated in the document or already in the database."""
    errors: list[RecordError] = []
    seen: set[str] = set()
    for index, item in parsed:
        key = str(item.id)
        if key in seen:
            errors.append(RecordError(index, key, "id", "appears more than once in the document"))
        seen.add(key)
    stored = _stored_ids(conn, sorted(seen))
    errors += [
        RecordError(index, str(item.id), "id", "an interception with this id already exists")
        for index, item in parsed
        if str(item.id) in stored
    ]
    return errors


def _stored_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    chunk = 500  # stays under SQLite's bound-parameter limit
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        marks = ",".join("?" * len(part))
        query = f"SELECT id FROM interceptions WHERE id IN ({marks})"  # noqa: S608 (only ?s)
        found.update(str(row[0]) for row in conn.execute(query, part))
    return found


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def _record(item: _Interception) -> InterceptionRecord:
    """The database record: its own session and thread root, centralized credentials."""
    return InterceptionRecord(
        id=str(item.id),
        api_key_id=item.api_key_id,
        initiator_id=str(item.initiator.id),
        provider=item.provider,
        provider_name=item.provider_name or item.provider,
        model=item.model,
        client=item.client,
        metadata=item.metadata,
        started_at=_micros(item.started_at),
        ended_at=None if item.ended_at is None else _micros(item.ended_at),
        client_session_id=None,
        thread_parent_id=None,
        thread_root_id=None,
        credential_kind="centralized",
        credential_hint="",
        token_usages=tuple(
            TokenUsageRecord(
                str(t.id),
                t.provider_response_id,
                t.input_tokens,
                t.output_tokens,
                t.cache_read_input_tokens,
                t.cache_write_input_tokens,
                t.metadata,
                _micros(t.created_at),
            )
            for t in item.token_usages
        ),
        user_prompts=tuple(
            UserPromptRecord(
                str(p.id), p.provider_response_id, p.prompt, p.metadata, _micros(p.created_at)
            )
            for p in item.user_prompts
        ),
        tool_usages=tuple(
            ToolUsageRecord(
                str(u.id),
                u.provider_response_id,
                None,
                u.server_url or None,
                u.tool,
                u.input,
                u.injected,
                u.invocation_error or None,
                u.metadata,
                _micros(u.created_at),
            )
            for u in item.tool_usages
        ),
    )
