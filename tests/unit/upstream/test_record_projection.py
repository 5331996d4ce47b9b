"""Pages parsed without the record lists a document does not read (upstream/projection.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.projection import ALL_RECORDS, parse_json

USER = {"id": "00000000-0000-0000-0000-0000000000aa", "username": "alice"}
ICPT = "00000000-0000-0000-0000-000000000001"
USAGE = {
    "id": "00000000-0000-0000-0000-000000000002",
    "interception_id": ICPT,
    "provider_response_id": "r1",
    "input_tokens": 10,
    "output_tokens": 5,
    "created_at": "2026-01-01T00:00:00Z",
}
ACTION = {"model": "claude", "token_usage": {"input_tokens": 3}, "thinking": [{"text": "hm"}]}


def interceptions(**extra: Any) -> bytes:
    item = {
        "id": ICPT,
        "initiator": USER,
        "provider": "anthropic",
        "model": "claude",
        "started_at": "2026-01-01T00:00:00Z",
        **extra,
    }
    return json.dumps({"count": 1, "results": [item]}).encode()


def session(*actions: Any) -> bytes:
    thread = {
        "id": ICPT,
        "model": "claude",
        "provider": "anthropic",
        "started_at": "2026-01-01T00:00:00Z",
        "token_usage": {"input_tokens": 3},
        "agentic_actions": list(actions),
    }
    return json.dumps(
        {
            "id": "s1",
            "initiator": USER,
            "providers": ["anthropic"],
            "models": ["claude"],
            "started_at": "2026-01-01T00:00:00Z",
            "token_usage_summary": {"input_tokens": 3},
            "threads": [thread],
        }
    ).encode()


def test_without_skips_it_is_pydantics_own_parse() -> None:
    body = interceptions(token_usages=[USAGE])
    page = parse_json(m.ListInterceptionsResponse, body, frozenset())
    assert page == m.ListInterceptionsResponse.model_validate_json(body)
    (usage,) = page.results[0].token_usages
    assert isinstance(usage, m.TokenUsage)
    assert usage.input_tokens == 10
    assert page.results[0].user_prompts == [] == page.results[0].tool_usages


def test_skipped_record_lists_are_absent_and_the_rest_is_the_same() -> None:
    body = interceptions(token_usages=[USAGE])
    full = m.ListInterceptionsResponse.model_validate_json(body)
    page = parse_json(m.ListInterceptionsResponse, body, frozenset({"user_prompts", "tool_usages"}))
    assert type(page) is m.ListInterceptionsResponse
    (item,) = page.results
    assert type(item) is m.Interception
    assert type(item.initiator) is m.MinimalUser
    assert item.token_usages == full.results[0].token_usages
    with pytest.raises(AttributeError):
        _ = item.user_prompts  # a projection too narrow fails loudly, not with []
    header = {k: v for k, v in full.results[0].model_dump().items() if not k.endswith("s")}
    assert {k: v for k, v in item.model_dump().items() if not k.endswith("s")} == header


def test_a_skipped_list_is_not_validated_but_what_is_read_still_is() -> None:
    body = interceptions(token_usages=[{**USAGE, "input_tokens": "many"}])
    with pytest.raises(ValidationError):
        parse_json(m.ListInterceptionsResponse, body, frozenset())
    assert parse_json(m.ListInterceptionsResponse, body, ALL_RECORDS).results[0].model == "claude"
    bad_header = interceptions(started_at="yesterday")
    with pytest.raises(ValidationError):
        parse_json(m.ListInterceptionsResponse, bad_header, ALL_RECORDS)


def test_a_threads_agentic_actions_are_skipped_inside_a_session_page() -> None:
    body = session(ACTION)
    full = parse_json(m.SessionThreadsResponse, body, frozenset())
    (action,) = full.threads[0].agentic_actions
    assert action.thinking[0].text == "hm"
    assert action.token_usage.input_tokens == 3
    page = parse_json(m.SessionThreadsResponse, session({"not": "an action"}), ALL_RECORDS)
    assert page.threads[0].model == "claude"
    assert page.initiator.username == "alice"
    with pytest.raises(AttributeError):
        _ = page.threads[0].agentic_actions
