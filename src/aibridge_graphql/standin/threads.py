"""Sessions and their threads as JSON: db2sdk's AIBridgeSession and AIBridgeSessionThreads."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aibridge_graphql.standin.render import (
    JsonObject,
    aggregate_token_metadata,
    json_or_empty_map,
    minimal_user,
    sanitize_credential_hint,
    timestamp,
    token_totals,
    tool_call,
)
from aibridge_graphql.standin.store import SessionSummary

Row = sqlite3.Row
ByInterception = Mapping[str, Sequence[Row]]


def _initiator(session: SessionSummary) -> JsonObject:
    return minimal_user(session.initiator_id, session.username, session.name, session.avatar_url)


def _sums(session: SessionSummary) -> JsonObject:
    return {
        "input_tokens": session.input_tokens,
        "output_tokens": session.output_tokens,
        "cache_read_input_tokens": session.cache_read_input_tokens,
        "cache_write_input_tokens": session.cache_write_input_tokens,
    }


def session_item(session: SessionSummary) -> JsonObject:
    """codersdk.AIBridgeSession: `client` is null when empty; `last_prompt` is omitempty."""
    item: JsonObject = {
        "id": session.session_id,
        "initiator": _initiator(session),
        "providers": session.providers,
        "models": session.models,
        "client": session.client or None,
        "metadata": json_or_empty_map(session.metadata),
        "started_at": timestamp(session.started_at),
        "ended_at": timestamp(session.ended_at),
        "threads": session.threads,
        "token_usage_summary": _sums(session),
    }
    if session.last_prompt:
        item["last_prompt"] = session.last_prompt
    item["last_active_at"] = timestamp(session.last_active_at)
    return item


@dataclass(frozen=True)
class ThreadData:
    """A page of thread rows and the child rows of its interceptions, grouped by interception."""

    rows: Sequence[Row]
    tokens: ByInterception
    tools: ByInterception
    prompts: ByInterception
    thoughts: ByInterception


def _agentic_action(row: Row, data: ThreadData) -> JsonObject | None:
    """One action per interception that made tool calls; None for one that made none."""
    tools = data.tools.get(row["id"], ())
    if not tools:
        return None
    return {
        "model": row["model"],
        "token_usage": token_totals(data.tokens.get(row["id"], ())),
        "thinking": [{"text": t["content"]} for t in data.thoughts.get(row["id"], ())],
        "tool_calls": [tool_call(t) for t in tools],
    }


def _thread(thread_id: str, rows: Sequence[Row], data: ThreadData) -> JsonObject:
    """buildAIBridgeThread: root fields from the root interception (else the first one)."""
    root = next((r for r in rows if r["id"] == thread_id), rows[0])
    thread: JsonObject = {"id": thread_id}
    prompts = data.prompts.get(root["id"], ())
    if prompts:
        thread["prompt"] = prompts[0]["prompt"]
    thread |= {
        "model": root["model"],
        "provider": root["provider"],
        "credential_kind": root["credential_kind"],
        "credential_hint": sanitize_credential_hint(root["credential_hint"]),
        "started_at": timestamp(min(r["started_at"] for r in rows)),
        "ended_at": timestamp(max(r["ended_at"] for r in rows)),
        "token_usage": token_totals([t for r in rows for t in data.tokens.get(r["id"], ())]),
        "agentic_actions": [a for r in rows if (a := _agentic_action(r, data)) is not None],
    }
    return thread


def _group_by_thread(rows: Sequence[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:  # dicts keep the SQL order: threads ASC, then interceptions ASC
        grouped.setdefault(row["thread_id"], []).append(row)
    return grouped


def session_threads(
    session: SessionSummary, data: ThreadData, session_token_metadata: Sequence[str | None]
) -> JsonObject:
    """codersdk.AIBridgeSessionThreadsResponse for one page of threads.

    The summary's numbers come from the session row; its metadata from the token usages of
    the unpaginated thread query (which upstream caps at 50 threads).
    """
    response: JsonObject = {
        "id": session.session_id,
        "initiator": _initiator(session),
        "providers": session.providers,
        "models": session.models,
    }
    if session.client:
        response["client"] = session.client
    response["metadata"] = json_or_empty_map(session.metadata)
    if data.rows:
        response["page_started_at"] = timestamp(min(r["started_at"] for r in data.rows))
        response["page_ended_at"] = timestamp(max(r["ended_at"] for r in data.rows))
    response["started_at"] = timestamp(session.started_at)
    response["ended_at"] = timestamp(session.ended_at)
    response["token_usage_summary"] = _sums(session) | {
        "metadata": aggregate_token_metadata(session_token_metadata)
    }
    response["threads"] = [
        _thread(thread_id, rows, data) for thread_id, rows in _group_by_thread(data.rows).items()
    ]
    return response
