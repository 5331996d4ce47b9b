"""Cost arithmetic: exact integer micros, half-even per kind, unpriced parts kept in sums."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from aibridge_graphql.core.pricing import Cost, KindMicros, KindRates, TokenCounts, UnpricedReason
from aibridge_graphql.core.pricing.money import to_micros


def test_half_even_rounding_per_kind() -> None:
    rates = KindRates.flat(Decimal("0.5"), Decimal("2.5"), Decimal("1.5"), Decimal("0.5"))
    # 0.5 -> 0, 2.5 -> 2, 1.5 -> 2, 3 x 0.5 = 1.5 -> 2: ties go to the even integer.
    kinds = rates.cost(TokenCounts(input=1, output=1, cache_read=1, cache_write=3))
    assert kinds == KindMicros(input=0, output=2, cache_read=2, cache_write=2)
    assert to_micros(Decimal("2.5000001")) == 3
    assert to_micros(Decimal("-0.5")) == 0


def test_million_and_one_tokens_at_odd_prices_is_exact() -> None:
    rates = KindRates.flat(Decimal("3.14159"), Decimal("0.000007"), None, None)
    tokens = TokenCounts(input=1_000_001, output=1_000_001, cache_read=1_000_001)
    kinds = rates.cost(tokens)
    # 3.14159 $/MTok x 1,000,001 tokens = 3,141,593.14159 micros; 7.000007 micros; cache reads
    # fall back to the input rate.
    assert kinds.input == 3_141_593
    assert kinds.output == 7
    assert kinds.cache_read == 3_141_593
    cost = Cost.priced(kinds, tokens, "override", "USD")
    assert cost.micros == 3_141_593 + 7 + 3_141_593
    assert cost.decimal == Decimal("6.283193")
    assert isinstance(cost.micros, int)


def test_sum_of_many_costs_is_the_integer_sum() -> None:
    rates = KindRates.flat(Decimal("0.3"), Decimal("1.7"), Decimal("0.03"), Decimal("0.375"))
    costs = []
    expected = 0
    for n in range(1, 2001):
        tokens = TokenCounts(input=n * 7, output=n * 3, cache_read=n * 11, cache_write=n)
        kinds = rates.cost(tokens)
        expected += kinds.total
        costs.append(Cost.priced(kinds, tokens, "override", "USD"))
    total = Cost.sum(costs)
    assert total.micros == expected
    assert total.priced_usages == 2000
    assert total.breakdown is not None
    assert total.breakdown.total == expected
    assert total.decimal == Decimal(expected).scaleb(-6)


def test_unpriced_is_null_not_zero() -> None:
    tokens = TokenCounts(input=10, output=5)
    cost = Cost.unpriced(UnpricedReason.UNKNOWN_MODEL, tokens)
    assert cost.micros is None
    assert cost.decimal is None
    assert cost.breakdown is None
    assert cost.reason is UnpricedReason.UNKNOWN_MODEL
    assert cost.unpriced_tokens == tokens
    assert not cost.complete
    assert cost.source is None
    # The empty sum is a real zero: nothing was used.
    assert Cost.zero().micros == 0
    assert Cost.sum([]).complete


def test_sum_with_unpriced_parts_says_what_it_could_not_price() -> None:
    priced = Cost.priced(KindMicros(10, 20, 3, 4), TokenCounts(100, 10, 30, 40), "gateway", "USD")
    unknown_model = Cost.unpriced(UnpricedReason.UNKNOWN_MODEL, TokenCounts(7, 8, 9, 10))
    unknown_provider = Cost.unpriced(UnpricedReason.UNKNOWN_PROVIDER, TokenCounts(1, 2, 3, 4))
    total = Cost.sum([priced, unknown_model, priced, unknown_provider, unknown_model])
    assert total.micros == 74
    assert total.breakdown == KindMicros(20, 40, 6, 8)
    assert total.priced_usages == 2
    assert total.unpriced_usages == 3
    assert total.unpriced_tokens == TokenCounts(15, 18, 21, 24)
    assert total.priced_tokens == TokenCounts(200, 20, 60, 80)
    assert dict(total.unpriced_reasons) == {
        UnpricedReason.UNKNOWN_MODEL: 2,
        UnpricedReason.UNKNOWN_PROVIDER: 1,
    }
    assert total.reason is None
    assert not total.complete
    # All unpriced: still null, however many.
    assert Cost.sum([unknown_model, unknown_provider]).micros is None


def test_sum_is_associative_and_order_independent() -> None:
    parts = [
        Cost.priced(KindMicros(1, 2, 3, 4), TokenCounts(1, 1, 1, 1), "gateway", "USD"),
        Cost.unpriced(UnpricedReason.UNKNOWN_MODEL, TokenCounts(5, 0, 0, 0)),
        Cost.priced(KindMicros(5, 6, 7, 8), TokenCounts(2, 2, 2, 2), "override", "USD"),
    ]
    forward = Cost.sum(parts)
    backward = Cost.sum(reversed(parts))
    nested = parts[0] + (parts[1] + parts[2])
    assert forward == backward == nested
    assert forward.source == "mixed"
    assert forward.sources == frozenset({"gateway", "override"})


def test_coder_cost_has_a_total_but_no_split() -> None:
    coder = Cost.from_coder(12_345, TokenCounts(1, 2, 3, 4))
    gateway = Cost.priced(KindMicros(1, 1, 1, 1), TokenCounts(1, 1, 1, 1), "gateway", "USD")
    assert coder.source == "coder"
    assert coder.micros == 12_345
    assert coder.breakdown is None
    total = coder + gateway
    assert total.micros == 12_349
    assert total.breakdown is None
    assert total.source == "mixed"


def test_currencies_are_never_added() -> None:
    usd = Cost.priced(KindMicros(1, 0, 0, 0), TokenCounts(10, 0, 0, 0), "gateway", "USD")
    eur = Cost.priced(KindMicros(5, 0, 0, 0), TokenCounts(20, 0, 0, 0), "override", "EUR")
    total = usd + eur
    assert total.currency == "USD"
    assert total.micros == 1
    assert total.unpriced_tokens == TokenCounts(20, 0, 0, 0)
    assert total.reason is UnpricedReason.CURRENCY_MISMATCH
    # A sum that has priced nothing yet takes the currency of the first priced part.
    assert (Cost.zero() + eur).currency == "EUR"
    assert (Cost.zero() + eur).micros == 5


def test_token_counts_of_upstream_shapes_and_early_metadata() -> None:
    sessions_era = SimpleNamespace(
        input_tokens=100,
        output_tokens=5,
        cache_read_input_tokens=7,
        cache_write_input_tokens=3,
        metadata={"cache_read_input": 999},
    )
    assert TokenCounts.of(sessions_era) == TokenCounts(100, 5, 7, 3)
    # Early Coder: no cache columns, the counts only in metadata (summed, maybe as strings).
    early_anthropic = SimpleNamespace(
        input_tokens=100,
        output_tokens=5,
        metadata={"cache_read_input": 40, "cache_creation_input": "12"},
    )
    assert TokenCounts.of(early_anthropic) == TokenCounts(100, 5, 40, 12)
    early_openai = SimpleNamespace(
        input_tokens=100, output_tokens=5, metadata={"prompt_cached": 60}
    )
    assert TokenCounts.of(early_openai) == TokenCounts(100, 5, 60, 0)
    odd = SimpleNamespace(input_tokens=1, output_tokens=1, metadata={"prompt_cached": "x"})
    assert TokenCounts.of(odd) == TokenCounts(1, 1, 0, 0)
