"""Pricing the upstream shapes: interceptions by token usage row, threads as the sum of actions,
sessions as the sum of threads, unpriced models visible in every sum that includes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from genai_prices import Usage, calc_price

from aibridge_graphql.core.pricing import Cost, Pricer, TokenCounts, UnpricedReason
from aibridge_graphql.upstream import models as m

AT = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)
USER = {"id": str(uuid.UUID(int=1)), "username": "alice"}


def usage_row(n: int, interception_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=100 + n)),
        "interception_id": str(interception_id),
        "provider_response_id": f"msg_{n}",
        "input_tokens": 1_000 * n,
        "output_tokens": 300 * n,
        "cache_read_input_tokens": 2_000 * n,
        "cache_write_input_tokens": 1_000 * n,
        "created_at": (AT + timedelta(days=n)).isoformat(),
        **extra,
    }


def independent(tokens: TokenCounts, model: str, provider_id: str, at: datetime) -> int:
    usage = Usage(
        input_tokens=tokens.all_input,
        output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
    )
    total = calc_price(usage, model, provider_id=provider_id, genai_request_timestamp=at)
    micros = total.total_price * 1_000_000
    assert micros == micros.to_integral_value()
    return int(micros)


def test_interception_is_priced_per_token_usage_at_its_time() -> None:
    iid = uuid.UUID(int=7)
    interception = m.Interception.model_validate(
        {
            "id": str(iid),
            "initiator": USER,
            "provider": "anthropic",
            "provider_name": "bedrock",
            "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "started_at": AT.isoformat(),
            "token_usages": [usage_row(n, iid) for n in (1, 2, 3)],
        }
    )
    pricer = Pricer()
    total = pricer.price_interception(interception)
    expected = sum(
        independent(TokenCounts.of(u), interception.model, "aws", u.created_at)
        for u in interception.token_usages
    )
    assert total.micros == expected
    assert total.priced_usages == 3
    assert total.complete
    assert total == Cost.sum(
        pricer.price_token_usage(u, interception) for u in interception.token_usages
    )


def thread(model: str, actions: list[tuple[str, int]], provider: str = "openai") -> m.Thread:
    return m.Thread.model_validate(
        {
            "id": str(uuid.uuid4()),
            "model": model,
            "provider": provider,
            "started_at": AT.isoformat(),
            "token_usage": {
                "input_tokens": sum(n for _, n in actions) * 1_000,
                "output_tokens": sum(n for _, n in actions) * 100,
            },
            "agentic_actions": [
                {
                    "model": action_model,
                    "token_usage": {"input_tokens": n * 1_000, "output_tokens": n * 100},
                }
                for action_model, n in actions
            ],
        }
    )


def test_session_cost_is_the_sum_of_threads_and_actions() -> None:
    pricer = Pricer()
    threads = [
        thread("gpt-5", [("gpt-5", 3), ("gpt-5-mini", 4)]),
        thread("gpt-4.1", [("gpt-4.1", 2)]),
        thread("mystery-model", [("mystery-model", 5), ("gpt-5", 1)]),
    ]
    session = pricer.price_threads(threads)
    by_thread = [pricer.price_thread(t) for t in threads]
    by_action = [pricer.price_action(a, t) for t in threads for a in t.agentic_actions]
    assert session == Cost.sum(by_thread) == Cost.sum(by_action)
    expected = sum(
        independent(TokenCounts.of(a.token_usage), a.model, "openai", AT)
        for t in threads
        for a in t.agentic_actions
        if a.model != "mystery-model"
    )
    assert session.micros == expected
    # The unpriced model shows in the thread's and the session's sums.
    assert by_thread[2].unpriced_usages == 1
    assert by_thread[2].unpriced_tokens == TokenCounts(input=5_000, output=500)
    assert session.unpriced_usages == 1
    assert session.unpriced_tokens == TokenCounts(input=5_000, output=500)
    assert session.reason is UnpricedReason.UNKNOWN_MODEL
    assert not session.complete


def test_thread_without_actions_is_priced_from_its_summary() -> None:
    bare = thread("claude-sonnet-4-5", [], provider="anthropic")
    bare = bare.model_copy(
        update={"token_usage": m.ThreadsTokenUsage(input_tokens=300_000, output_tokens=1_000)}
    )
    cost = Pricer().price_thread(bare)
    # A summed usage is not one request: base rates, not the long-context tier.
    base = TokenCounts(input=300_000, output=1_000)
    assert cost.micros == 3 * 300_000 + 15 * 1_000
    assert cost.priced_tokens == base
