"""Database rows to the JSON shapes of `codersdk/aibridge.go`, with db2sdk's conversions.

Field order follows the Go structs; `omitempty` fields are left out when empty. Times are Go's
RFC3339Nano of a UTC time (trailing zeros of the fraction dropped, `Z`). JSON objects stored as
text go through `jsonOrEmptyMap`: NULL is `null`, invalid JSON or a non-object is `{}`.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

JsonObject = dict[str, Any]
Row = sqlite3.Row

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_HINT_BYTES = 15  # the VARCHAR(15) of Coder's credential_hint column


def timestamp(micros: int) -> str:
    """Go's RFC3339Nano marshal of a UTC time given in microseconds since the epoch."""
    seconds, fraction = divmod(micros, 1_000_000)
    days, second = divmod(seconds, 86_400)
    hour, second = divmod(second, 3_600)
    minute, second = divmod(second, 60)
    text = f"{_date(days)}T{hour:02d}:{minute:02d}:{second:02d}"
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"


@functools.lru_cache(maxsize=4096)
def _date(days: int) -> str:
    # The date part of time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)), once per
    # day: a 1,000-item page renders thousands of times within a few days.
    return time.strftime("%Y-%m-%d", time.gmtime(days * 86_400))


def _sorted_object(pairs: list[tuple[str, Any]]) -> JsonObject:
    # Go marshals map[string]any with sorted keys, at every depth. The sort is stable, so of
    # a repeated key the last value still wins, as in json.loads.
    pairs.sort(key=_first)
    return dict(pairs)


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def json_or_empty_map(text: str | None) -> JsonObject | None:
    """db2sdk's jsonOrEmptyMap of a nullable JSON column."""
    if text is None:
        return None
    if text == "{}":  # most metadata
        return {}
    try:
        value = json.loads(text, object_pairs_hook=_sorted_object)
    except ValueError:
        return {}
    if value is None:
        return None
    return value if isinstance(value, dict) else {}


def sanitize_credential_hint(hint: str) -> str:
    """db2sdk's sanitizeCredentialHint: keep a short masked hint, else show only "..."."""
    if not hint:
        return ""
    if len(hint.encode()) > _MAX_HINT_BYTES or "..." not in hint:
        return "..."
    return hint


# A JSON string Go's decoder accepts into a json.Number whose Int64() then succeeds: JSON's
# integer grammar (no "+", no leading zeros), so "42" counts and "4.0", "+4", "042" do not.
_JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


def _int64_leaf(value: Any) -> int | None:
    """db2sdk flattenAndSum: unmarshal into json.Number, then Int64(); None when skipped.

    Integers that fit in int64 count, and so do numbers sent as quoted strings ("42");
    floats (even 3.0), 1e3, bools and out-of-range values do not.
    """
    if isinstance(value, str) and _JSON_INTEGER.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if _INT64_MIN <= value <= _INT64_MAX else None
    return None


def _flatten_and_sum(sums: dict[str, int], prefix: str, obj: Mapping[str, Any]) -> None:
    for key, value in obj.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten_and_sum(sums, name, value)
        elif (number := _int64_leaf(value)) is not None:
            sums[name] = sums.get(name, 0) + number


def aggregate_token_metadata(texts: Iterable[str | None]) -> dict[str, int]:
    """Sum integer leaves of token-usage metadata by dot-flattened key (aggregateTokenMetadata)."""
    sums: dict[str, int] = {}
    for text in texts:
        if not text:
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        if isinstance(obj, dict):
            _flatten_and_sum(sums, "", obj)
    return {key: sums[key] for key in sorted(sums)}


def minimal_user(user_id: str, username: str, name: str, avatar_url: str) -> JsonObject:
    """codersdk.MinimalUser: `name` and `avatar_url` are omitempty."""
    user: JsonObject = {"id": user_id, "username": username}
    if name:
        user["name"] = name
    if avatar_url:
        user["avatar_url"] = avatar_url
    return user


def token_usage(row: Row) -> JsonObject:
    """codersdk.AIBridgeTokenUsage."""
    return {
        "id": row["id"],
        "interception_id": row["interception_id"],
        "provider_response_id": row["provider_response_id"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cache_read_input_tokens": row["cache_read_input_tokens"],
        "cache_write_input_tokens": row["cache_write_input_tokens"],
        "metadata": json_or_empty_map(row["metadata"]),
        "created_at": timestamp(row["created_at"]),
    }


def user_prompt(row: Row) -> JsonObject:
    """codersdk.AIBridgeUserPrompt."""
    return {
        "id": row["id"],
        "interception_id": row["interception_id"],
        "provider_response_id": row["provider_response_id"],
        "prompt": row["prompt"],
        "metadata": json_or_empty_map(row["metadata"]),
        "created_at": timestamp(row["created_at"]),
    }


def tool_usage(row: Row) -> JsonObject:
    """codersdk.AIBridgeToolUsage: NULL server_url / invocation_error become ""."""
    return {
        "id": row["id"],
        "interception_id": row["interception_id"],
        "provider_response_id": row["provider_response_id"],
        "server_url": row["server_url"] or "",
        "tool": row["tool"],
        "input": row["input"],
        "injected": bool(row["injected"]),
        "invocation_error": row["invocation_error"] or "",
        "metadata": json_or_empty_map(row["metadata"]),
        "created_at": timestamp(row["created_at"]),
    }


def tool_call(row: Row) -> JsonObject:
    """codersdk.AIBridgeToolCall: a tool usage without `invocation_error`."""
    return {
        "id": row["id"],
        "interception_id": row["interception_id"],
        "provider_response_id": row["provider_response_id"],
        "server_url": row["server_url"] or "",
        "tool": row["tool"],
        "injected": bool(row["injected"]),
        "input": row["input"],
        "metadata": json_or_empty_map(row["metadata"]),
        "created_at": timestamp(row["created_at"]),
    }


def interception(
    row: Row, tokens: Sequence[Row], prompts: Sequence[Row], tools: Sequence[Row]
) -> JsonObject:
    """codersdk.AIBridgeInterception with its children (each already in created_at order)."""
    ended_at = row["ended_at"]
    return {
        "id": row["id"],
        "api_key_id": row["api_key_id"],
        "initiator": minimal_user(
            row["initiator_id"], row["username"], row["name"], row["avatar_url"]
        ),
        "provider": row["provider"],
        "provider_name": row["provider_name"],
        "model": row["model"],
        "client": row["client"],
        "metadata": json_or_empty_map(row["metadata"]),
        "started_at": timestamp(row["started_at"]),
        "ended_at": None if ended_at is None else timestamp(ended_at),
        "token_usages": [token_usage(t) for t in tokens],
        "user_prompts": [user_prompt(p) for p in prompts],
        "tool_usages": [tool_usage(t) for t in tools],
    }


def token_totals(tokens: Sequence[Row]) -> JsonObject:
    """codersdk.AIBridgeSessionThreadsTokenUsage of some token-usage rows (aggregateTokenUsage)."""
    return {
        "input_tokens": sum(t["input_tokens"] for t in tokens),
        "output_tokens": sum(t["output_tokens"] for t in tokens),
        "cache_read_input_tokens": sum(t["cache_read_input_tokens"] for t in tokens),
        "cache_write_input_tokens": sum(t["cache_write_input_tokens"] for t in tokens),
        "metadata": aggregate_token_metadata(t["metadata"] for t in tokens),
    }
