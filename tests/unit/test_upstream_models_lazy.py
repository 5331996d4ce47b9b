"""Nested record lists are validated when first read, with the same models and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.errors import UpstreamProtocolError

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


def interception(**extra: Any) -> bytes:
    item = {
        "id": ICPT,
        "initiator": USER,
        "provider": "anthropic",
        "model": "claude",
        "started_at": "2026-01-01T00:00:00Z",
        **extra,
    }
    return json.dumps({"count": 1, "results": [item]}).encode()


def test_nested_records_are_their_models_when_read() -> None:
    page = m.ListInterceptionsResponse.model_validate_json(interception(token_usages=[USAGE]))
    (item,) = page.results
    (usage,) = item.token_usages
    assert isinstance(usage, m.TokenUsage)
    assert usage.input_tokens == 10
    assert str(usage.interception_id) == ICPT
    assert item.token_usages is item.token_usages  # validated once
    assert item.user_prompts == []
    assert item.tool_usages == []


def test_a_malformed_record_fails_the_field_that_reads_it() -> None:
    bad = {**USAGE, "input_tokens": "many"}
    page = m.ListInterceptionsResponse.model_validate_json(interception(token_usages=[bad]))
    with pytest.raises(UpstreamProtocolError, match="malformed token usages"):
        _ = page.results[0].token_usages


def test_a_nested_list_that_is_not_a_list_of_objects_fails_the_parse() -> None:
    with pytest.raises(ValueError, match="token_usages"):
        m.ListInterceptionsResponse.model_validate_json(interception(token_usages=[1]))
    with pytest.raises(ValueError, match="agentic_actions"):
        m.Thread.model_validate(
            {
                "id": ICPT,
                "model": "claude",
                "provider": "anthropic",
                "started_at": "2026-01-01T00:00:00Z",
                "token_usage": {},
                "agentic_actions": "none",
            }
        )
