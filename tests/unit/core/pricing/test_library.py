"""genai-prices pricing: the stand-in's models priced as the library prices them, provider mapping,
unknown models and providers unpriced, time-dependent rates, and the lookup caches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from aibridge_graphql.core.pricing import Pricer, Route, TokenCounts, UnpricedReason, route
from aibridge_graphql.standin import catalogue

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# Multiples of 1000 tokens: every per-kind cost is then a whole number of micros at rates with
# up to three decimals, so the library's exact Decimal total and our integer sum must agree.
TOKENS = TokenCounts(input=12_000, output=3_000, cache_read=40_000, cache_write=5_000)


def library_micros(tokens: TokenCounts, model: str, provider_id: str, at: datetime = AT) -> Decimal:
    """The library's own total for Coder-shaped tokens (its input_tokens include the cache)."""
    usage = Usage(
        input_tokens=tokens.all_input,
        output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
    )
    total = calc_price(usage, model, provider_id=provider_id, genai_request_timestamp=at)
    return total.total_price * 1_000_000


def library_kind_micros(model: str, provider_id: str, at: datetime = AT) -> dict[str, Decimal]:
    """Each kind priced by the library on its own (below every tier threshold)."""

    def price(**kw: int) -> Decimal:
        result = calc_price(Usage(**kw), model, provider_id=provider_id, genai_request_timestamp=at)
        return result.total_price * 1_000_000

    return {
        "input": price(input_tokens=TOKENS.input),
        "output": price(output_tokens=TOKENS.output),
        "cache_read": price(input_tokens=TOKENS.cache_read, cache_read_tokens=TOKENS.cache_read),
        "cache_write": price(
            input_tokens=TOKENS.cache_write, cache_write_tokens=TOKENS.cache_write
        ),
    }


# Every (configured provider, model) the stand-in seeds, with the runtime type Coder records.
STANDIN = [
    (row[0], catalogue.RUNTIME_PROVIDER[row[0]], model)
    for row in catalogue.PROVIDERS
    for model in catalogue.MODELS[row[0]]
]
EXPECTED_LIBRARY_PROVIDER = {
    "anthropic": "anthropic",
    "bedrock": "aws",
    "openai": "openai",
    "azure": "azure",
    "openrouter": "openrouter",
    "copilot": "github-copilot",
}


@pytest.mark.parametrize(("name", "runtime", "model"), STANDIN)
def test_standin_models_price_as_the_library_does(name: str, runtime: str, model: str) -> None:
    provider_id = EXPECTED_LIBRARY_PROVIDER[name]
    assert route(runtime, name, model).provider_id == provider_id
    cost = Pricer().price(TOKENS, provider=runtime, provider_name=name, model=model, at=AT)
    try:
        expected = library_micros(TOKENS, model, provider_id)
    except LookupError:
        # The library does not know it (Copilot's gemini-2.5-pro): unpriced, never 0.
        assert cost.micros is None
        assert cost.reason is UnpricedReason.UNKNOWN_MODEL
        assert cost.unpriced_tokens == TOKENS
        return
    assert expected == expected.to_integral_value()
    assert cost.micros == int(expected)
    assert cost.source == "gateway"
    assert cost.currency == "USD"
    kinds = library_kind_micros(model, provider_id)
    assert cost.breakdown is not None
    assert cost.breakdown.input == kinds["input"]
    assert cost.breakdown.output == kinds["output"]
    assert cost.breakdown.cache_read == kinds["cache_read"]
    assert cost.breakdown.cache_write == kinds["cache_write"]


def test_bedrock_id_is_priced_under_aws_not_anthropic() -> None:
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    with pytest.raises(LookupError):
        calc_price(Usage(input_tokens=1), model, provider_id="anthropic")
    pricer = Pricer()
    # Through Coder's anthropic runtime, with or without the configured name.
    for name in ("bedrock", None, "corp-bedrock-us-east-1"):
        cost = pricer.price(TOKENS, provider="anthropic", provider_name=name, model=model, at=AT)
        assert cost.micros == int(library_micros(TOKENS, model, "aws"))
    assert route("anthropic", None, model).provider_id == "aws"


def test_openrouter_vendor_model_ids() -> None:
    pricer = Pricer()
    for model in ("qwen/qwen3-coder", "openai/gpt-5", "anthropic/claude-sonnet-4.5"):
        # A thread carries only the runtime type: `vendor/model` through openai is OpenRouter.
        assert route("openai", None, model) == route("openai", "openrouter", model)
        cost = pricer.price(TOKENS, provider="openai", model=model, at=AT)
        assert cost.micros == int(library_micros(TOKENS, model, "openrouter"))


@pytest.mark.parametrize(
    ("runtime", "name", "model", "provider_id", "model_ref"),
    [
        ("openai", "azure-openai-eastus", "gpt-5", "azure", "gpt-5"),
        ("openai", "google-vertex", "gemini-2.5-pro", "google", "gemini-2.5-pro"),
        ("openai", "vercel", "anthropic/claude-sonnet-4.5", "anthropic", "claude-sonnet-4.5"),
        ("copilot", "", "claude-sonnet-4", "github-copilot", "claude-sonnet-4"),
        ("anthropic", "anthropic-direct", "claude-opus-4-1", "anthropic", "claude-opus-4-1"),
        ("openai", "openai-compat", "gpt-4.1", "openai", "gpt-4.1"),
        ("mistral", "", "mistral-large", "mistral", "mistral-large"),
        ("selfhosted", "", "llama", None, "llama"),
    ],
)
def test_provider_mapping(
    runtime: str, name: str, model: str, provider_id: str | None, model_ref: str
) -> None:
    assert route(runtime, name, model) == Route(provider_id, model_ref)


def test_unknown_model_and_provider_are_null_with_a_reason() -> None:
    pricer = Pricer()
    model = pricer.price(TOKENS, provider="anthropic", model="claude-nonexistent-9", at=AT)
    assert model.micros is None
    assert model.reason is UnpricedReason.UNKNOWN_MODEL
    provider = pricer.price(TOKENS, provider="selfhosted", model="llama", at=AT)
    assert provider.micros is None
    assert provider.reason is UnpricedReason.UNKNOWN_PROVIDER
    empty = pricer.price(TOKENS, provider="openai", model="", at=AT)
    assert empty.reason is UnpricedReason.UNKNOWN_MODEL
    negative = pricer.price(TokenCounts(input=-1), provider="openai", model="gpt-5", at=AT)
    assert negative.reason is UnpricedReason.INVALID_USAGE
    # Zero tokens of a known model are a real 0; of an unknown model still unpriced.
    assert pricer.price(TokenCounts(), provider="openai", model="gpt-5", at=AT).micros == 0
    assert pricer.price(TokenCounts(), provider="x", model="y", at=AT).micros is None


def test_included_models_are_zero_by_the_library() -> None:
    # The library lists Copilot's gpt-4.1 as included in the subscription (no rate at all).
    cost = Pricer().price(TOKENS, provider="copilot", model="gpt-4.1", at=AT)
    assert library_micros(TOKENS, "gpt-4.1", "github-copilot") == 0
    assert cost.micros == 0
    assert cost.complete


def test_long_context_tier_matches_the_library() -> None:
    # Past 200K prompt tokens every token of claude-sonnet-4-5 pays the long-context rate;
    # the prompt counts cache reads and writes, as Anthropic bills it.
    big = TokenCounts(input=150_000, output=2_000, cache_read=60_000, cache_write=1_000)
    pricer = Pricer()
    cost = pricer.price(big, provider="anthropic", model="claude-sonnet-4-5", at=AT)
    expected = library_micros(big, "claude-sonnet-4-5", "anthropic")
    assert cost.micros == int(expected)
    flat = pricer.price(
        big, provider="anthropic", model="claude-sonnet-4-5", at=AT, aggregated=True
    )
    assert flat.micros is not None
    assert cost.micros > flat.micros


def test_one_hour_cache_writes_use_their_rate() -> None:
    tokens = TokenCounts(input=1_000, output=1_000, cache_write=10_000)
    usage = Usage(
        input_tokens=11_000,
        output_tokens=1_000,
        cache_write_tokens=10_000,
        cache_write_1h_tokens=4_000,
    )
    expected = (
        calc_price(
            usage, "claude-opus-4-1", provider_id="anthropic", genai_request_timestamp=AT
        ).total_price
        * 1_000_000
    )
    cost = Pricer().price(
        tokens, provider="anthropic", model="claude-opus-4-1", at=AT, cache_write_1h=4_000
    )
    assert cost.micros == int(expected)
    plain = Pricer().price(tokens, provider="anthropic", model="claude-opus-4-1", at=AT)
    assert cost.micros > (plain.micros or 0)


@pytest.mark.parametrize("hour", [1, 9, 17, 23])
def test_time_of_day_rates_follow_the_usage_time(hour: int) -> None:
    at = datetime(2026, 3, 2, hour, 15, tzinfo=UTC)
    tokens = TokenCounts(input=10_000, output=10_000)
    cost = Pricer().price(tokens, provider="deepseek", model="deepseek-chat", at=at)
    assert cost.micros == int(library_micros(tokens, "deepseek-chat", "deepseek", at))


def test_price_in_force_at_the_usage_time_and_offsets() -> None:
    pricer = Pricer()
    tokens = TokenCounts(input=10_000, output=10_000)
    for at in (datetime(2024, 1, 10, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)):
        cost = pricer.price(tokens, provider="anthropic", model="claude-sonnet-4-5", at=at)
        assert cost.micros == int(library_micros(tokens, "claude-sonnet-4-5", "anthropic", at))
    # 23:30 at -02:00 is the next UTC day; a naive time is UTC.
    local = datetime(2026, 5, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    naive = datetime(2026, 6, 1, 1, 30)
    a = pricer.price(tokens, provider="openai", model="gpt-5", at=local)
    b = pricer.price(tokens, provider="openai", model="gpt-5", at=naive)
    assert a == b


def test_thousands_of_usages_hit_the_caches() -> None:
    pricer = Pricer()
    models = [("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-5"), ("x", "unknown")]
    days = 5
    for n in range(6_000):
        provider, model = models[n % 3]
        at = AT + timedelta(days=n % days, seconds=n)
        pricer.price(TokenCounts(input=n, output=n), provider=provider, model=model, at=at)
    info = pricer.cache_info()
    assert info["route"].misses == 3
    assert info["model"].misses == 2  # the unknown provider never reaches the library
    assert info["rates"].misses == 2 * days
    assert info["rates"].hits == 4_000 - 2 * days
    assert info["rates"].maxsize is not None
