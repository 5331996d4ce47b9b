"""Typed rows of the stand-in database and the functions that write them.

Times are integer microseconds since the Unix epoch, UTC; JSON columns are written as compact
text (NULL stays NULL). Nothing here commits: callers own the transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from aibridge_graphql.standin.tokens import split_token

Metadata = dict[str, Any] | None

# Rows per executemany call: bounds memory when records come from a generator.
BATCH_SIZE = 5000


@dataclass(frozen=True)
class UserRecord:
    """A Coder user as the stand-in knows it."""

    id: str
    username: str
    email: str
    name: str
    avatar_url: str
    role: str


@dataclass(frozen=True)
class TokenUsageRecord:
    """One provider response's token counts."""

    id: str
    provider_response_id: str
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_write_input_tokens: int
    metadata: Metadata
    created_at: int


@dataclass(frozen=True)
class UserPromptRecord:
    """A prompt the user sent in an interception."""

    id: str
    provider_response_id: str
    prompt: str
    metadata: Metadata
    created_at: int


@dataclass(frozen=True)
class ToolUsageRecord:
    """A tool call: injected MCP tools have a server_url, client-defined tools have none."""

    id: str
    provider_response_id: str
    provider_tool_call_id: str | None
    server_url: str | None
    tool: str
    input: str
    injected: bool
    invocation_error: str | None
    metadata: Metadata
    created_at: int


@dataclass(frozen=True)
class ModelThoughtRecord:
    """A reasoning block the model emitted."""

    content: str
    metadata: Metadata
    created_at: int


@dataclass(frozen=True)
class BoundaryLogRecord:
    """One network call the agent firewall logged in its session (a Coder boundary log)."""

    id: str
    session_id: str
    sequence_number: int
    captured_at: int
    created_at: int
    proto: str
    method: str
    detail: str
    allowed: bool
    matched_rule: str | None


@dataclass(frozen=True)
class InterceptionRecord:
    """One intercepted LLM request with its child rows."""

    id: str
    api_key_id: str | None
    initiator_id: str
    provider: str
    provider_name: str
    model: str
    client: str | None
    metadata: Metadata
    started_at: int
    ended_at: int | None
    client_session_id: str | None
    thread_parent_id: str | None
    thread_root_id: str | None
    credential_kind: str
    credential_hint: str
    token_usages: tuple[TokenUsageRecord, ...] = ()
    user_prompts: tuple[UserPromptRecord, ...] = ()
    tool_usages: tuple[ToolUsageRecord, ...] = ()
    model_thoughts: tuple[ModelThoughtRecord, ...] = ()
    agent_firewall_session_id: str | None = None
    agent_firewall_sequence_number: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    # Firewall logs written alongside this interception (its own call and what followed).
    boundary_logs: tuple[BoundaryLogRecord, ...] = ()

    @property
    def session_id(self) -> str:
        """The client's session id; else its thread root's id (a child belongs to the root's
        session, as in Coder's TestAIBridgeListSessions); else its own id."""
        return self.client_session_id or self.thread_root_id or self.id


# json.dumps(value, separators=(",", ":")) without building an encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def _json(value: Metadata) -> str | None:
    return None if value is None else _COMPACT(value)


def insert_users(conn: sqlite3.Connection, users: Iterable[UserRecord]) -> None:
    """Insert users (no commit)."""
    conn.executemany(
        "INSERT INTO users (id, username, email, name, avatar_url, role) VALUES (?, ?, ?, ?, ?, ?)",
        [(u.id, u.username, u.email, u.name, u.avatar_url, u.role) for u in users],
    )


def insert_api_key(conn: sqlite3.Connection, user_id: str, token: str, expires_at: int) -> None:
    """Store a Coder-shaped token for a user (no commit); ValueError on a malformed token."""
    key_id, secret = split_token(token)
    conn.execute(
        "INSERT INTO api_keys (id, secret, user_id, expires_at) VALUES (?, ?, ?, ?)",
        (key_id, secret, user_id, expires_at),
    )


def insert_providers(conn: sqlite3.Connection, providers: Iterable[tuple[str, ...]]) -> None:
    """Insert configured providers as (name, type[, display_name, icon]) tuples (no commit)."""
    conn.executemany(
        "INSERT INTO ai_providers (name, type, display_name, icon) VALUES (?, ?, ?, ?)",
        [(*p, "", "")[:4] for p in providers],
    )


_INSERTS = {
    "interceptions": "INSERT INTO interceptions (id, api_key_id, initiator_id, provider, "
    "provider_name, model, client, metadata, started_at, ended_at, client_session_id, "
    "thread_parent_id, thread_root_id, session_id, credential_kind, credential_hint, "
    "agent_firewall_session_id, agent_firewall_sequence_number, error_type, error_message) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "token_usages": "INSERT INTO token_usages (id, interception_id, provider_response_id, "
    "input_tokens, output_tokens, cache_read_input_tokens, cache_write_input_tokens, metadata, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "user_prompts": "INSERT INTO user_prompts (id, interception_id, provider_response_id, prompt, "
    "metadata, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    "tool_usages": "INSERT INTO tool_usages (id, interception_id, provider_response_id, "
    "provider_tool_call_id, server_url, tool, input, injected, invocation_error, metadata, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "model_thoughts": "INSERT INTO model_thoughts (interception_id, content, metadata, created_at) "
    "VALUES (?, ?, ?, ?)",
    "boundary_logs": "INSERT INTO boundary_logs (id, session_id, sequence_number, captured_at, "
    "created_at, proto, method, detail, allowed, matched_rule) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
}

Row = tuple[Any, ...]


def _rows(batch: list[InterceptionRecord]) -> dict[str, list[Row]]:
    """The rows of every table for a batch of interceptions."""
    rows: dict[str, list[Row]] = {table: [] for table in _INSERTS}
    for r in batch:
        rows["interceptions"].append(
            (r.id, r.api_key_id, r.initiator_id, r.provider, r.provider_name, r.model, r.client,
             _json(r.metadata), r.started_at, r.ended_at, r.client_session_id,
             r.thread_parent_id, r.thread_root_id, r.session_id, r.credential_kind,
             r.credential_hint, r.agent_firewall_session_id, r.agent_firewall_sequence_number,
             r.error_type, r.error_message)
        )  # fmt: skip
        rows["token_usages"].extend(
            (t.id, r.id, t.provider_response_id, t.input_tokens, t.output_tokens,
             t.cache_read_input_tokens, t.cache_write_input_tokens, _json(t.metadata),
             t.created_at)
            for t in r.token_usages
        )  # fmt: skip
        rows["user_prompts"].extend(
            (p.id, r.id, p.provider_response_id, p.prompt, _json(p.metadata), p.created_at)
            for p in r.user_prompts
        )
        rows["tool_usages"].extend(
            (u.id, r.id, u.provider_response_id, u.provider_tool_call_id, u.server_url, u.tool,
             u.input, int(u.injected), u.invocation_error, _json(u.metadata), u.created_at)
            for u in r.tool_usages
        )  # fmt: skip
        rows["model_thoughts"].extend(
            (r.id, m.content, _json(m.metadata), m.created_at) for m in r.model_thoughts
        )
        rows["boundary_logs"].extend(
            (b.id, b.session_id, b.sequence_number, b.captured_at, b.created_at, b.proto,
             b.method, b.detail, int(b.allowed), b.matched_rule)
            for b in r.boundary_logs
        )  # fmt: skip
    return rows


def _batches(records: Iterable[InterceptionRecord]) -> Iterator[list[InterceptionRecord]]:
    iterator = iter(records)
    while batch := list(islice(iterator, BATCH_SIZE)):
        yield batch


def insert_interceptions(conn: sqlite3.Connection, records: Iterable[InterceptionRecord]) -> int:
    """Insert interceptions and their child rows in batches (no commit); returns how many."""
    total = 0
    for batch in _batches(records):
        for table, rows in _rows(batch).items():
            if rows:
                conn.executemany(_INSERTS[table], rows)
        total += len(batch)
    return total


def finish_interception(conn: sqlite3.Connection, interception_id: str, ended_at: int) -> bool:
    """End an in-flight interception, as Coder's UpdateAIBridgeInterceptionEnded does (no
    commit); whether it was in flight."""
    cursor = conn.execute(
        "UPDATE interceptions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
        (ended_at, interception_id),
    )
    return cursor.rowcount == 1
