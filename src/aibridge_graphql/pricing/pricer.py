"""The pricer: a usage's tokens, provider, model and time in, an exact `Cost` out.

The prices file wins; otherwise genai-prices prices it, at the rates in force at the usage's
time. Every lookup goes through bounded LRU caches keyed by (provider, model[, time bucket]),
so pricing thousands of usages costs a few dictionary hits each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TimeOfDateConstraint

from aibridge_graphql.pricing.money import (
    DEFAULT_CURRENCY,
    Cost,
    Source,
    TokenCounts,
    UnpricedReason,
    cache_write_1h_of,
)
from aibridge_graphql.pricing.overrides import (
    EMPTY_OVERRIDES,
    Candidates,
    PriceOverrides,
    load_prices_file,
)
from aibridge_graphql.pricing.providers import Route, route
from aibridge_graphql.pricing.rates import KindRates
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import models as m

# Enough for every (provider, model) a deployment uses times a year of days.
RATE_CACHE_SIZE = 16_384
_LOOKUP_CACHE_SIZE = 2_048


@dataclass(frozen=True, slots=True)
class Quote:
    """The rates in force for a usage: who set them, per million tokens, in which currency."""

    source: Source
    currency: str
    rates: KindRates
    # The genai-prices provider and model id, or the prices file's pattern.
    provider_id: str | None
    model_id: str


@dataclass(frozen=True, slots=True)
class _LibraryModel:
    info: ModelInfo
    # Some prices change by time of day (DeepSeek's off-peak hours): those need a finer bucket.
    time_of_day: bool


class Pricer:
    """Prices token usages; one per process, built at start (see `pricer_from_settings`)."""

    def __init__(
        self, overrides: PriceOverrides = EMPTY_OVERRIDES, *, cache_size: int = RATE_CACHE_SIZE
    ) -> None:
        self.overrides = overrides
        # Per-instance caches (not on the methods) so a pricer's prices file is part of the key.
        self._route = lru_cache(maxsize=_LOOKUP_CACHE_SIZE)(self._route_uncached)
        self._candidates = lru_cache(maxsize=_LOOKUP_CACHE_SIZE)(self._candidates_uncached)
        self._model = lru_cache(maxsize=_LOOKUP_CACHE_SIZE)(self._model_uncached)
        self._rates = lru_cache(maxsize=cache_size)(self._rates_uncached)

    def quote(
        self, *, provider: str, model: str, at: datetime, provider_name: str | None = None
    ) -> Quote | UnpricedReason:
        """The rates that apply to a usage of `model` at `at`, or why there are none."""
        where = self._route(provider, provider_name or "", model)
        override = self._candidates(_provider_keys(provider, provider_name, where), model).at(at)
        if override is not None:
            return Quote(
                "override", override.currency, override.rates, where.provider_id, override.model
            )
        if where.provider_id is None:
            return UnpricedReason.UNKNOWN_PROVIDER
        ref = where.model_ref.lower()
        found = self._model(where.provider_id, ref)
        if isinstance(found, UnpricedReason):
            return found
        rates = self._rates(where.provider_id, ref, _bucket(at, found.time_of_day))
        if rates is None:
            return UnpricedReason.NO_TOKEN_PRICES
        return Quote("gateway", DEFAULT_CURRENCY, rates, where.provider_id, found.info.id)

    def price(
        self,
        tokens: TokenCounts,
        *,
        provider: str,
        model: str,
        at: datetime,
        provider_name: str | None = None,
        cache_write_1h: int = 0,
        aggregated: bool = False,
    ) -> Cost:
        """The cost of one usage. `aggregated`: the tokens sum several requests (no tiers).

        `provider` is Coder's runtime provider type, `provider_name` the configured provider
        row (interceptions have it; threads do not), `at` the usage's time.
        """
        if min(tokens.input, tokens.output, tokens.cache_read, tokens.cache_write) < 0:
            return Cost.unpriced(UnpricedReason.INVALID_USAGE, tokens)
        quote = self.quote(provider=provider, model=model, at=at, provider_name=provider_name)
        if isinstance(quote, UnpricedReason):
            return Cost.unpriced(quote, tokens)
        kinds = quote.rates.cost(tokens, cache_write_1h, tiered=not aggregated)
        return Cost.priced(kinds, tokens, quote.source, quote.currency)

    # --- Upstream shapes (protocol-neutral: the faces call these) ---

    def price_token_usage(self, usage: m.TokenUsage, interception: m.Interception) -> Cost:
        """One token usage row of an interception (one provider response): exact, tiered."""
        return self.price(
            TokenCounts.of(usage),
            provider=interception.provider,
            provider_name=interception.provider_name or None,
            model=interception.model,
            at=usage.created_at,
            cache_write_1h=cache_write_1h_of(usage),
        )

    def price_interception(self, interception: m.Interception) -> Cost:
        """The sum of an interception's token usages."""
        return Cost.sum(self.price_token_usage(u, interception) for u in interception.token_usages)

    def price_action(self, action: m.AgenticAction, thread: m.Thread) -> Cost:
        """An agentic action's usage (one step, usually one request), at the thread's start."""
        return self.price(
            TokenCounts.of(action.token_usage),
            provider=thread.provider,
            model=action.model or thread.model,
            at=thread.started_at,
            cache_write_1h=cache_write_1h_of(action.token_usage),
        )

    def price_thread(self, thread: m.Thread) -> Cost:
        """A thread: the sum of its actions, or its summed usage priced untiered if it has none."""
        if thread.agentic_actions:
            return Cost.sum(self.price_action(a, thread) for a in thread.agentic_actions)
        return self.price(
            TokenCounts.of(thread.token_usage),
            provider=thread.provider,
            model=thread.model,
            at=thread.started_at,
            cache_write_1h=cache_write_1h_of(thread.token_usage),
            aggregated=True,
        )

    def price_threads(self, threads: Iterable[m.Thread]) -> Cost:
        """A session (or a page of it): the sum of its threads."""
        return Cost.sum(self.price_thread(t) for t in threads)

    def cache_info(self) -> dict[str, Any]:
        """Hits, misses and sizes of the lookup caches (for metrics and tests)."""
        return {
            "route": self._route.cache_info(),
            "candidates": self._candidates.cache_info(),
            "model": self._model.cache_info(),
            "rates": self._rates.cache_info(),
        }

    # --- Cached lookups ---

    def _route_uncached(self, provider: str, provider_name: str, model: str) -> Route:
        return route(provider, provider_name or None, model, self.overrides.aliases)

    def _candidates_uncached(self, keys: tuple[str, ...], model: str) -> Candidates:
        return self.overrides.candidates(keys, model)

    def _model_uncached(self, provider_id: str, model_ref: str) -> _LibraryModel | UnpricedReason:
        if not model_ref:
            return UnpricedReason.UNKNOWN_MODEL
        snapshot = get_snapshot()
        try:
            _, info = snapshot.find_provider_model(model_ref, None, provider_id, None)
        except LookupError:
            # Unknown provider id (an alias to a provider without this model) or model.
            return UnpricedReason.UNKNOWN_MODEL
        time_of_day = not isinstance(info.prices, ModelPrice) and any(
            isinstance(c.constraint, TimeOfDateConstraint) for c in info.prices
        )
        return _LibraryModel(info, time_of_day)

    def _rates_uncached(
        self, provider_id: str, model_ref: str, bucket: date | datetime
    ) -> KindRates | None:
        found = self._model(provider_id, model_ref)
        if isinstance(found, UnpricedReason):  # pragma: no cover - callers check first
            return None
        when = (
            bucket
            if isinstance(bucket, datetime)
            else datetime(bucket.year, bucket.month, bucket.day, tzinfo=UTC)
        )
        return KindRates.from_library(found.info.get_prices(when))


def _provider_keys(provider: str, provider_name: str | None, where: Route) -> tuple[str, ...]:
    # A prices-file entry's `provider` may name the configured provider, the runtime type or
    # the genai-prices provider.
    keys = [
        (provider_name or "").strip().lower(),
        provider.strip().lower(),
        where.provider_id or "",
    ]
    return tuple(dict.fromkeys(key for key in keys if key))


def _bucket(at: datetime, time_of_day: bool) -> date | datetime:
    # genai-prices' start dates are UTC dates, so a day is exact for them; time-of-day prices
    # change on the minute at most.
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if time_of_day:
        return utc.replace(second=0, microsecond=0)
    return utc.date()


def pricer_from_settings(settings: Settings) -> Pricer:
    """The pricer the server builds at start; a bad prices file raises `PricesFileError`."""
    if settings.prices_file:
        return Pricer(load_prices_file(settings.prices_file))
    return Pricer()
