"""Sessions and their threads as JSON: db2sdk's AIBridgeSession and AIBridgeSessionThreads."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

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


def _network_calls(item: JsonObject, session: SessionSummary) -> None:
    # Omitted when the agent firewall was not in use for the session.
    if session.network_calls is not None:
        total, blocked = session.network_calls
        item["network_calls"] = {"total": total, "blocked": blocked}


def session_item(session: SessionSummary, *, ai_gateway: bool = False) -> JsonObject:
    """codersdk.AIBridgeSession: `client` is null when empty; `last_prompt` is omitempty;
    the AI Gateway era adds `network_calls`."""
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
    if ai_gateway:
        _network_calls(item, session)
    return item


@dataclass(frozen=True)
class ThreadData:
    """A page of thread rows and the child rows of its interceptions, grouped by interception."""

    rows: Sequence[Row]
    tokens: ByInterception
    tools: ByInterception
    prompts: ByInterception
    thoughts: ByInterception
    ai_gateway: bool = False


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
    if data.ai_gateway:
        # From the root interception; omitempty pointers (a sequence number 0 is kept).
        if root["agent_firewall_session_id"] is not None:
            thread["agent_firewall_session_id"] = root["agent_firewall_session_id"]
        if root["agent_firewall_sequence_number"] is not None:
            thread["agent_firewall_sequence_number"] = root["agent_firewall_sequence_number"]
        if root["error_type"]:
            thread["error_type"] = root["error_type"]
        if root["error_message"]:
            thread["error_message"] = root["error_message"]
    return thread


def _group_by_thread(rows: Sequence[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:  # dicts keep the SQL order: threads ASC, then interceptions ASC
        grouped.setdefault(row["thread_id"], []).append(row)
    return grouped


# The session detail lists at most this many network calls (the earliest); the counts
# cover them all.
NETWORK_CALL_LOG_CAP = 1000


def network_call_log(row: Row) -> JsonObject:
    """One agent firewall log entry of a session detail's `network_call_logs`."""
    return {
        "id": row["id"],
        "session_id": row["session_id"],
        "sequence_number": row["sequence_number"],
        "captured_at": timestamp(row["captured_at"]),
        "created_at": timestamp(row["created_at"]),
        "proto": row["proto"],
        "method": row["method"],
        "detail": row["detail"],
        "allowed": bool(row["allowed"]),
        "matched_rule": row["matched_rule"],
    }


def _host(detail: str) -> str | None:
    try:
        return urlsplit(detail).hostname or None
    except ValueError:
        return None


def network_detail(logs: Sequence[Row]) -> JsonObject:
    """The session detail's network fields over every call of the session: the capped list,
    the top domain (HTTP calls only, port stripped; at most one row) and the domain count."""
    counts: Counter[str] = Counter()
    for row in logs:
        if row["proto"] == "http" and (host := _host(row["detail"])):
            counts[host] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "network_call_logs": [network_call_log(r) for r in logs[:NETWORK_CALL_LOG_CAP]],
        "network_top_domains": [{"domain": d, "count": c} for d, c in ranked[:1]],
        "network_domain_count": len(counts),
    }


def session_threads(
    session: SessionSummary,
    data: ThreadData,
    session_token_metadata: Sequence[str | None],
    network_logs: Sequence[Row] = (),
) -> JsonObject:
    """codersdk.AIBridgeSessionThreadsResponse for one page of threads.

    The summary's numbers come from the session row; its metadata from the token usages of
    the unpaginated thread query (in the sessions era capped at 50 threads, in the AI
    Gateway era every thread). The AI Gateway era adds the network fields.
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
    if data.ai_gateway:
        _network_calls(response, session)
        response |= network_detail(network_logs)
    response["threads"] = [
        _thread(thread_id, rows, data) for thread_id, rows in _group_by_thread(data.rows).items()
    ]
    return response
