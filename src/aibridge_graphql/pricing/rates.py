"""Per-token-kind rates (per million tokens) and the exact per-kind cost of one usage.

genai-prices bills what it calls `input_tokens` (the whole prompt, cache included) as leaves:
cache reads at `cache_read_mtok`, cache writes at `cache_write_mtok` (1-hour writes at
`cache_write_1h_mtok`), the rest at `input_mtok`; a cache kind without its own rate falls into
the input leaf. `KindRates.from_library` folds those fallbacks in so each kind has one rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from genai_prices.types import ModelPrice, TieredPrices

from aibridge_graphql.pricing.money import KindMicros, TokenCounts, to_micros

Rate = Decimal | TieredPrices

_TOKEN_KEYS = (
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
)


@dataclass(frozen=True, slots=True)
class KindRates:
    """Rates per million tokens for each kind; None means the kind costs nothing."""

    input: Rate | None
    output: Rate | None
    cache_read: Rate | None
    cache_write: Rate | None
    cache_write_1h: Rate | None

    @classmethod
    def from_library(cls, price: ModelPrice) -> KindRates | None:
        """The rates of a genai-prices price; None when it prices no token kind but other units.

        A price with no keys at all is the library's way to say "included" (GitHub Copilot's
        subscription models), so that one is a real zero.
        """
        values = {key: getattr(price, key, None) for key in _TOKEN_KEYS}
        if all(value is None for value in values.values()):
            if any(value is not None for value in vars(price).values()):
                return None
            return cls(None, None, None, None, None)
        input_rate = values["input_mtok"]
        # `is None`, not `or`: a rate of 0 (free cache reads) is a rate, not a missing one.
        cache_write = _or(values["cache_write_mtok"], input_rate)
        return cls(
            input=input_rate,
            output=values["output_mtok"],
            cache_read=_or(values["cache_read_mtok"], input_rate),
            cache_write=cache_write,
            cache_write_1h=_or(values["cache_write_1h_mtok"], cache_write),
        )

    @classmethod
    def flat(
        cls,
        input: Decimal,
        output: Decimal,
        cache_read: Decimal | None,
        cache_write: Decimal | None,
    ) -> KindRates:
        """Untiered rates (a prices-file entry); missing cache rates fall back to input."""
        write = input if cache_write is None else cache_write
        return cls(
            input=input,
            output=output,
            cache_read=input if cache_read is None else cache_read,
            cache_write=write,
            cache_write_1h=write,
        )

    def cost(
        self, tokens: TokenCounts, cache_write_1h: int = 0, *, tiered: bool = True
    ) -> KindMicros:
        """Micro-units per kind for one usage, each kind rounded half-even (see money.py).

        Tiers are chosen by the whole prompt (input + cache), as providers bill them;
        `tiered=False` uses base rates, for aggregates that are not one request.
        """
        prompt = tokens.all_input if tiered else 0
        one_hour = min(max(cache_write_1h, 0), tokens.cache_write)
        # A rate is per million tokens and a micro-unit is a millionth: micros = rate × tokens.
        write = _exact(self.cache_write, tokens.cache_write - one_hour, prompt) + _exact(
            self.cache_write_1h, one_hour, prompt
        )
        return KindMicros(
            input=to_micros(_exact(self.input, tokens.input, prompt)),
            output=to_micros(_exact(self.output, tokens.output, prompt)),
            cache_read=to_micros(_exact(self.cache_read, tokens.cache_read, prompt)),
            cache_write=to_micros(write),
        )


def _or(rate: Rate | None, fallback: Rate | None) -> Rate | None:
    return fallback if rate is None else rate


def _exact(rate: Rate | None, count: int, prompt: int) -> Decimal:
    if rate is None or count == 0:
        return Decimal(0)
    return _rate_for(rate, prompt) * count


def _rate_for(rate: Rate, prompt: int) -> Decimal:
    if isinstance(rate, Decimal):
        return rate
    # genai-prices' cliff tiers: past a threshold, every token pays the tier's rate.
    for tier in reversed(rate.tiers):
        if prompt > tier.start:
            return tier.price
    return rate.base
