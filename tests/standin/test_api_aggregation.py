"""Aggregation edge cases on a small hand-built database, checked field by field.

One owner session `sess-1` has an agentic loop (A → B), a second thread C and an in-flight D;
a member shares the client session id (row E, so two sessions named `sess-1`); X is a
single-interception session with no client session id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aibridge_graphql.standin.records import (
    InterceptionRecord,
    ModelThoughtRecord,
    TokenUsageRecord,
    ToolUsageRecord,
    UserPromptRecord,
    UserRecord,
)
from tests.support.standin_api import api_client, build_database, get_json, serve

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
S = 1_000_000
OWNER = UserRecord(
    "00000000-0000-4000-8000-0000000000aa", "owner", "o@example.com", "", "", "owner"
)
MEMBER = UserRecord(
    "00000000-0000-4000-8000-0000000000bb",
    "member",
    "m@example.com",
    "Mem Ber",
    "https://example.com/a.png",
    "member",
)
OWNER_TOKEN = "OwnerToken-abcdefghijklmnopqrstuv"
MEMBER_TOKEN = "MemberTokn-abcdefghijklmnopqrstuv"


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


A, B, C, D, E, X = (_id(n) for n in (1, 2, 3, 4, 5, 6))


def _usage(n: int, at: int, tokens: tuple[int, int, int, int], metadata: Any) -> TokenUsageRecord:
    return TokenUsageRecord(_id(100 + n), f"resp-{n}", *tokens, metadata=metadata, created_at=at)


def _interception(ident: str, start: int, end: int | None, **fields: Any) -> InterceptionRecord:
    base: dict[str, Any] = {
        "api_key_id": None,
        "initiator_id": OWNER.id,
        "provider": "anthropic",
        "provider_name": "anthropic",
        "model": "m-a",
        "client": None,
        "metadata": {},
        "client_session_id": "sess-1",
        "thread_parent_id": None,
        "thread_root_id": None,
        "credential_kind": "centralized",
        "credential_hint": "",
    }
    return InterceptionRecord(id=ident, started_at=start, ended_at=end, **(base | fields))


RECORDS = [
    _interception(
        A,
        T0 + 1500,
        T0 + 10 * S,
        api_key_id="OwnerToken",
        metadata={"b": 1, "a": {"z": 2, "y": [1]}},
        credential_hint="sk-a...efgh",
        token_usages=(
            _usage(
                1,
                T0 + 2 * S,
                (10, 1, 2, 3),
                {
                    "cache_read_input": 5,
                    "nested": {
                        "x": 2,
                        "y": 1.5,
                        "s": "7",
                        "f": "7.5",
                        "z": "07",
                        "deeper": {"k": 1},
                    },
                    "flag": True,
                    "arr": [1, 2],
                    "none": None,
                },
            ),
        ),
        user_prompts=(
            UserPromptRecord(_id(201), "resp-1", "second", None, T0 + 3 * S),
            UserPromptRecord(_id(200), "resp-1", "first", {}, T0 + 1 * S),
        ),
    ),
    _interception(
        B,
        T0 + 11 * S,
        T0 + 20 * S,
        model="m-b",
        thread_parent_id=A,
        thread_root_id=A,
        token_usages=(
            _usage(
                3, T0 + 12 * S, (5, 5, 0, 0), {"cache_read_input": 7, "nested": {"x": 3}, "f": 2.0}
            ),
        ),
        tool_usages=(
            ToolUsageRecord(
                _id(301),
                "resp-3",
                "call-2",
                None,
                "Edit",
                '{"b":2}',
                False,
                None,
                None,
                T0 + 14 * S,
            ),
            ToolUsageRecord(
                _id(300),
                "resp-3",
                "call-1",
                "https://mcp.example.com",
                "Read",
                '{"a":1}',
                True,
                "boom",
                {"k": "v"},
                T0 + 13 * S,
            ),
        ),
        model_thoughts=(
            ModelThoughtRecord("later thought", None, T0 + 15 * S),
            ModelThoughtRecord("early thought", None, T0 + 12 * S),
        ),
    ),
    _interception(
        C,
        T0 + 30 * S,
        T0 + 40 * S,
        provider="openai",
        provider_name="openai",
        client="Zed",
        credential_hint="sk-abcdefghijklmnop",
        token_usages=(_usage(4, T0 + 31 * S, (100, 10, 0, 0), {"prompt_cached": 4}),),
        user_prompts=(UserPromptRecord(_id(202), "resp-4", "latest prompt", None, T0 + 35 * S),),
    ),
    _interception(
        D,
        T0 + 50 * S,
        None,
        model="m-inflight",
        client="OnlyInFlight",
        user_prompts=(UserPromptRecord(_id(203), "r", "in flight prompt", None, T0 + 55 * S),),
    ),
    _interception(
        E,
        T0 + 5 * S,
        T0 + 6 * S,
        initiator_id=MEMBER.id,
        client="Claude Code",
        credential_hint="abc",
        token_usages=(_usage(5, T0 + 5 * S, (1000, 0, 0, 0), {"cache_read_input": 100}),),
    ),
    _interception(
        X,
        T0 + 100 * S,
        T0 + 101 * S,
        model="m-x",
        client="Cursor",
        client_session_id=None,
        metadata=None,
    ),
]


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path: Path = tmp_path_factory.mktemp("aggregation") / "small.db"
    build_database(path, [(OWNER, OWNER_TOKEN), (MEMBER, MEMBER_TOKEN)], RECORDS)
    with serve(path) as url, api_client(url, OWNER_TOKEN) as client:
        yield client


def test_sessions_group_by_session_and_initiator(owner: httpx.Client) -> None:
    body = get_json(owner, "/sessions")
    assert body["count"] == 3
    assert [(s["id"], s["initiator"]["id"]) for s in body["sessions"]] == [
        (X, OWNER.id),
        ("sess-1", OWNER.id),
        ("sess-1", MEMBER.id),
    ]


def test_session_item_aggregates(owner: httpx.Client) -> None:
    x, sess, member = get_json(owner, "/sessions")["sessions"]
    assert sess == {
        "id": "sess-1",
        "initiator": {"id": OWNER.id, "username": "owner"},
        "providers": ["anthropic", "openai"],
        "models": ["m-a", "m-b"],
        "client": None,  # the earliest interception (A) has none
        "metadata": {"a": {"y": [1], "z": 2}, "b": 1},
        "started_at": "2026-01-01T00:00:00.0015Z",
        "ended_at": "2026-01-01T00:00:40Z",
        "threads": 2,  # A and C; B is a child, D is in flight
        "token_usage_summary": {
            "input_tokens": 115,
            "output_tokens": 16,
            "cache_read_input_tokens": 2,
            "cache_write_input_tokens": 3,
        },
        "last_prompt": "latest prompt",  # D's newer prompt is in flight
        "last_active_at": "2026-01-01T00:00:35Z",
    }
    assert "last_prompt" not in x
    assert x["metadata"] is None
    assert x["last_active_at"] == x["started_at"] == "2026-01-01T00:01:40Z"
    assert x["client"] == "Cursor"
    assert member["initiator"] == {
        "id": MEMBER.id,
        "username": "member",
        "name": "Mem Ber",
        "avatar_url": "https://example.com/a.png",
    }
    assert member["token_usage_summary"]["input_tokens"] == 1000


def test_threads_with_agentic_actions(owner: httpx.Client) -> None:
    body = get_json(owner, "/sessions/sess-1")
    assert "client" not in body  # omitempty on the threads response
    assert [t["id"] for t in body["threads"]] == [A, E, C]
    a, e, c = body["threads"]
    assert a["prompt"] == "first"
    assert a["credential_hint"] == "sk-a...efgh"
    assert c["credential_hint"] == "..."  # longer than 15 bytes
    assert e["credential_hint"] == "..."  # no "..." in it
    assert "prompt" not in e
    assert a["started_at"] == "2026-01-01T00:00:00.0015Z"
    assert a["ended_at"] == "2026-01-01T00:00:20Z"
    assert a["token_usage"] == {
        "input_tokens": 15,
        "output_tokens": 6,
        "cache_read_input_tokens": 2,
        "cache_write_input_tokens": 3,
        # "7" counts (Go decodes a quoted number into json.Number); "7.5" and "07" do not.
        "metadata": {"cache_read_input": 12, "nested.deeper.k": 1, "nested.s": 7, "nested.x": 5},
    }
    (action,) = a["agentic_actions"]
    assert action["model"] == "m-b"
    assert action["thinking"] == [{"text": "early thought"}, {"text": "later thought"}]
    assert action["token_usage"]["metadata"] == {"cache_read_input": 7, "nested.x": 3}
    assert [call["tool"] for call in action["tool_calls"]] == ["Read", "Edit"]
    read, edit = action["tool_calls"]
    assert "invocation_error" not in read
    assert read["server_url"] == "https://mcp.example.com"
    assert read["injected"] is True
    assert read["metadata"] == {"k": "v"}
    assert edit["server_url"] == ""
    assert edit["metadata"] is None
    assert c["agentic_actions"] == []
    assert body["page_started_at"] == "2026-01-01T00:00:00.0015Z"
    assert body["page_ended_at"] == "2026-01-01T00:00:40Z"


def test_threads_summary_numbers_come_from_the_session_row(owner: httpx.Client) -> None:
    summary = get_json(owner, "/sessions/sess-1")["token_usage_summary"]
    # Numbers: the owner's session row. Metadata: every thread's token usages (member's too).
    assert summary == {
        "input_tokens": 115,
        "output_tokens": 16,
        "cache_read_input_tokens": 2,
        "cache_write_input_tokens": 3,
        "metadata": {
            "cache_read_input": 112,
            "nested.deeper.k": 1,
            "nested.s": 7,
            "nested.x": 5,
            "prompt_cached": 4,
        },
    }


def test_interceptions_list_fields(owner: httpx.Client) -> None:
    body = get_json(owner, "/interceptions")
    assert body["count"] == 5
    assert [i["id"] for i in body["results"]] == [X, C, B, E, A]
    x, _, b, _, a = body["results"]
    assert a["api_key_id"] == "OwnerToken"
    assert x["api_key_id"] is None
    assert x["metadata"] is None
    assert a["metadata"] == {"a": {"y": [1], "z": 2}, "b": 1}
    assert [p["prompt"] for p in a["user_prompts"]] == ["first", "second"]
    assert a["user_prompts"][0]["metadata"] == {}
    assert [(t["tool"], t["invocation_error"], t["server_url"]) for t in b["tool_usages"]] == [
        ("Read", "boom", "https://mcp.example.com"),
        ("Edit", "", ""),
    ]
    assert a["client"] is None
    assert get_json(owner, "/interceptions", q="client:Unknown")["count"] == 2


def test_models_and_clients_skip_in_flight(owner: httpx.Client) -> None:
    assert get_json(owner, "/models") == ["m-a", "m-b", "m-x"]
    assert sorted(get_json(owner, "/clients")) == ["Claude Code", "Cursor", "Unknown", "Zed"]


def test_session_filter_keeps_lateral_reads_whole(owner: httpx.Client) -> None:
    body = get_json(owner, "/sessions", q="model:m-b")
    (only,) = body["sessions"]
    assert only["models"] == ["m-a", "m-b"]
    assert only["threads"] == 0  # the matching interception (B) is not a root
    assert only["last_active_at"] == "2026-01-01T00:00:11Z"  # B alone: no prompt, its start


def _many_threads(count: int) -> list[InterceptionRecord]:
    return [
        _interception(
            _id(1000 + n),
            T0 + n * S,
            T0 + n * S + 1,
            client_session_id="long",
            token_usages=(_usage(1000 + n, T0 + n * S, (1, 0, 0, 0), {"k": 1}),),
        )
        for n in range(count)
    ]


def test_summary_metadata_covers_the_first_50_threads(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Upstream's unpaginated thread query has limit 0, which its SQL reads as 50."""
    path = tmp_path_factory.mktemp("long") / "long.db"
    build_database(path, [(OWNER, OWNER_TOKEN)], _many_threads(53))
    with serve(path) as url, api_client(url, OWNER_TOKEN) as client:
        first = get_json(client, "/sessions/long")
        assert len(first["threads"]) == 50  # the default page size
        assert first["token_usage_summary"]["input_tokens"] == 53
        assert first["token_usage_summary"]["metadata"] == {"k": 50}
        last = get_json(client, "/sessions/long", after_id=first["threads"][-1]["id"])
        assert [t["token_usage"]["input_tokens"] for t in last["threads"]] == [1, 1, 1]
        assert last["token_usage_summary"]["metadata"] == {"k": 50}
