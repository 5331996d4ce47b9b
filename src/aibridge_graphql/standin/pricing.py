"""Token usage prices for the stand-in's `cost_micros`, from the `genai-prices` library.

Coder prices AI Gateway usage itself from its own price book; the stand-in uses genai-prices
(prices shipped in the package, no network) so its figures are realistic. A model the library
does not know costs 0, as a usage without a price adds nothing to Coder's spend.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from genai_prices import Usage, calc_price
from genai_prices.types import TieredPrices

# Coder's configured provider names -> the library's provider ids. Bedrock model ids
# (`us.anthropic.claude-…-v1:0`) are the library's `aws` provider; OpenRouter's `vendor/model`
# ids are its `openrouter` provider. Copilot is billed per seat: no per-token price.
LIBRARY_PROVIDER: dict[str, str | None] = {
    "anthropic": "anthropic",
    "openai": "openai",
    "azure": "azure",
    "bedrock": "aws",
    "openrouter": "openrouter",
    "copilot": None,
}
_MICROS = Decimal(1_000_000)


_UNIT = 1000  # tokens per unit price: below every tier threshold


@dataclass(frozen=True)
class _Rates:
    """A model's price for _UNIT tokens of each kind, valid below `below` input tokens."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    below: int


@functools.lru_cache(maxsize=8192)
def _rates(provider: str, model: str, day: date) -> _Rates | None:
    """The library's prices of a model on a UTC day; None when it does not know the model.

    One full `calc_price` per (model, day) finds the price in force (~0.5 ms a call is too slow
    for every usage of a large database); usages are then priced linearly from unit prices,
    which is exact while no tier applies (tiers are cliffs on the input token count).
    """
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    try:
        found = calc_price(
            Usage(input_tokens=_UNIT),
            model_ref=model,
            provider_id=provider,
            genai_request_timestamp=at,
        )
    except LookupError:
        return None
    prices = found.model_price
    tiered = [value for value in vars(prices).values() if isinstance(value, TieredPrices)]
    below = min((tier.start for value in tiered for tier in value.tiers), default=2**62)

    def unit(**counts: int) -> Decimal:
        return prices.calc_price(Usage(**counts))["total_price"]

    return _Rates(
        input=unit(input_tokens=_UNIT),
        output=unit(output_tokens=_UNIT),
        cache_read=unit(input_tokens=_UNIT, cache_read_tokens=_UNIT),
        cache_write=unit(input_tokens=_UNIT, cache_write_tokens=_UNIT),
        below=below,
    )


def price_usd(
    provider: str,
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    at: datetime,
) -> Decimal | None:
    """The library's price of one usage in dollars (its own full calculation); None if unknown."""
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    try:
        found = calc_price(usage, model_ref=model, provider_id=provider, genai_request_timestamp=at)
    except LookupError:
        return None
    return found.total_price


def cost_micros(
    provider_name: str,
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    at_micros: int,
) -> int:
    """The price of one token usage in micro-dollars (rounded half-even); 0 when unpriced."""
    provider = LIBRARY_PROVIDER.get(provider_name, provider_name)
    if provider is None:
        return 0
    at = datetime.fromtimestamp(at_micros / 1_000_000, UTC)
    # Like the library, the stand-in's input_tokens include the cache reads and writes (the
    # seed draws them as parts of it); a row where they exceed it is priced as all cached.
    total_input = max(input_tokens, cache_read_tokens + cache_write_tokens)
    rates = _rates(provider, model, at.date())
    if rates is None:
        return 0
    if total_input < rates.below and output_tokens < rates.below:
        uncached = total_input - cache_read_tokens - cache_write_tokens
        usd = (
            uncached * rates.input
            + cache_read_tokens * rates.cache_read
            + cache_write_tokens * rates.cache_write
            + output_tokens * rates.output
        ) / _UNIT
    else:
        usd = price_usd(
            provider,
            model,
            input_tokens=total_input,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            at=at,
        ) or Decimal(0)
    return int((usd * _MICROS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
