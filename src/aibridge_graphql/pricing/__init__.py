"""Protocol-neutral pricing of token usage: genai-prices, a prices file, exact integer micros.

No GraphQL, gRPC or HTTP here; the faces turn `Cost` into their own types.
"""

from aibridge_graphql.pricing.money import (
    DEFAULT_CURRENCY,
    Cost,
    KindMicros,
    Source,
    TokenCounts,
    UnpricedReason,
    cache_write_1h_of,
)
from aibridge_graphql.pricing.overrides import PriceOverrides, PricesFileError, load_prices_file
from aibridge_graphql.pricing.pricer import Pricer, Quote, pricer_from_settings
from aibridge_graphql.pricing.providers import Route, route
from aibridge_graphql.pricing.rates import KindRates

__all__ = [
    "DEFAULT_CURRENCY",
    "Cost",
    "KindMicros",
    "KindRates",
    "PriceOverrides",
    "Pricer",
    "PricesFileError",
    "Quote",
    "Route",
    "Source",
    "TokenCounts",
    "UnpricedReason",
    "cache_write_1h_of",
    "load_prices_file",
    "pricer_from_settings",
    "route",
]
