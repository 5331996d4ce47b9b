"""Exact money for token usage: integer micro-units, and sums that keep what was unpriced.

Rounding rule: each usage's cost is computed per token kind as an exact Decimal, each kind is
rounded half-even to whole micro-units, and every sum after that adds integers. So a usage's
total is the sum of its kinds, and any sum is the sum of its parts, with no float anywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Literal

MICROS_PER_UNIT = 1_000_000
DEFAULT_CURRENCY = "USD"

Source = Literal["gateway", "override", "coder"]


class UnpricedReason(StrEnum):
    """Why a usage has no amount (it is unpriced, never free)."""

    # Neither the prices file nor a mapping of Coder's provider names knows the provider.
    UNKNOWN_PROVIDER = "UNKNOWN_PROVIDER"
    # The provider is known but neither the prices file nor genai-prices knows the model.
    UNKNOWN_MODEL = "UNKNOWN_MODEL"
    # genai-prices knows the model but prices it in other units (requests, audio), not tokens.
    NO_TOKEN_PRICES = "NO_TOKEN_PRICES"  # noqa: S105 - a reason code, not a secret
    # The usage was priced in another currency than the sum it was added to.
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    # Negative token counts: nothing sensible to price.
    INVALID_USAGE = "INVALID_USAGE"


def to_micros(exact: Decimal) -> int:
    """An exact micro-unit amount rounded half-even to an integer (the one rounding step)."""
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """Tokens per kind, in Coder's sense: `input` excludes cache reads and cache writes."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
        )

    @property
    def total(self) -> int:
        """All tokens of every kind."""
        return self.input + self.output + self.cache_read + self.cache_write

    @property
    def all_input(self) -> int:
        """The prompt size as providers bill tiers by it: input plus cache reads and writes."""
        return self.input + self.cache_read + self.cache_write

    @classmethod
    def of(cls, usage: Any) -> TokenCounts:
        """The counts of an upstream token usage, thread/action usage or session summary.

        Early Coder releases kept cache tokens only in metadata (`cache_read_input`,
        `cache_creation_input` for Anthropic, `prompt_cached` for OpenAI); those are used
        when the cache columns are zero, so cached tokens are not silently priced at nothing.
        """
        cache_read = int(getattr(usage, "cache_read_input_tokens", 0) or 0)
        cache_write = int(getattr(usage, "cache_write_input_tokens", 0) or 0)
        metadata = getattr(usage, "metadata", None)
        if cache_read == 0 and cache_write == 0 and isinstance(metadata, Mapping):
            cache_read = _int_key(metadata, "cache_read_input") or _int_key(
                metadata, "prompt_cached"
            )
            cache_write = _int_key(metadata, "cache_creation_input")
        return cls(
            input=int(usage.input_tokens),
            output=int(usage.output_tokens),
            cache_read=cache_read,
            cache_write=cache_write,
        )


def cache_write_1h_of(usage: Any) -> int:
    """Of the cache writes, how many were 1-hour writes (Anthropic's `cache_ephemeral_1h_input`)."""
    metadata = getattr(usage, "metadata", None)
    return _int_key(metadata, "cache_ephemeral_1h_input") if isinstance(metadata, Mapping) else 0


def _int_key(metadata: Mapping[str, Any], key: str) -> int:
    # Coder sums metadata numbers, and numbers sent as strings too: accept both, ignore the rest.
    value = metadata.get(key)
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    return 0


@dataclass(frozen=True, slots=True)
class KindMicros:
    """Micro-units per token kind."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def __add__(self, other: KindMicros) -> KindMicros:
        return KindMicros(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
        )

    @property
    def total(self) -> int:
        """The sum of the kinds."""
        return self.input + self.output + self.cache_read + self.cache_write


_ZERO_TOKENS = TokenCounts()
_ZERO_KINDS = KindMicros()


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one usage or of a sum of usages, exact, with what could not be priced.

    `micros` is the priced part; it is None only when something was used and nothing of it
    could be priced. A partly priced sum has an amount *and* `unpriced_usages > 0`.
    """

    currency: str = DEFAULT_CURRENCY
    priced_micros: int = 0
    # None once a priced part came without a per-kind split (Coder's own cost_micros).
    kinds: KindMicros | None = _ZERO_KINDS
    priced_tokens: TokenCounts = _ZERO_TOKENS
    unpriced_tokens: TokenCounts = _ZERO_TOKENS
    priced_usages: int = 0
    unpriced_usages: int = 0
    # (reason, how many usages), sorted by reason.
    unpriced_reasons: tuple[tuple[UnpricedReason, int], ...] = ()
    sources: frozenset[Source] = field(default_factory=frozenset)

    @classmethod
    def zero(cls, currency: str = DEFAULT_CURRENCY) -> Cost:
        """The empty sum: nothing used, so genuinely 0."""
        return cls(currency=currency)

    @classmethod
    def priced(cls, kinds: KindMicros, tokens: TokenCounts, source: Source, currency: str) -> Cost:
        """One priced usage."""
        return cls(
            currency=currency,
            priced_micros=kinds.total,
            kinds=kinds,
            priced_tokens=tokens,
            priced_usages=1,
            sources=frozenset((source,)),
        )

    @classmethod
    def unpriced(
        cls, reason: UnpricedReason, tokens: TokenCounts, currency: str = DEFAULT_CURRENCY
    ) -> Cost:
        """One usage that could not be priced, and why."""
        return cls(
            currency=currency,
            unpriced_tokens=tokens,
            unpriced_usages=1,
            unpriced_reasons=((reason, 1),),
        )

    @classmethod
    def from_coder(
        cls, cost_micros: int, tokens: TokenCounts, currency: str = DEFAULT_CURRENCY
    ) -> Cost:
        """A usage as Coder priced it itself (`cost_micros`): a total, no per-kind split."""
        return cls(
            currency=currency,
            priced_micros=cost_micros,
            kinds=None,
            priced_tokens=tokens,
            priced_usages=1,
            sources=frozenset(("coder",)),
        )

    @classmethod
    def sum(cls, costs: Iterable[Cost], currency: str = DEFAULT_CURRENCY) -> Cost:
        """The sum of costs; the first priced cost's currency wins (see `__add__`)."""
        total = cls.zero(currency)
        for cost in costs:
            total = total + cost
        return total

    @property
    def micros(self) -> int | None:
        """The priced amount in micro-units; None when there was usage and none of it priced."""
        if self.priced_usages == 0 and self.unpriced_usages > 0:
            return None
        return self.priced_micros

    @property
    def decimal(self) -> Decimal | None:
        """`micros` as an exact Decimal in currency units (e.g. dollars)."""
        micros = self.micros
        return None if micros is None else Decimal(micros).scaleb(-6)

    @property
    def breakdown(self) -> KindMicros | None:
        """Micro-units per token kind; None when unpriced or when a part had no split."""
        return None if self.micros is None else self.kinds

    @property
    def complete(self) -> bool:
        """Whether every usage in this cost was priced."""
        return self.unpriced_usages == 0

    @property
    def source(self) -> Source | Literal["mixed"] | None:
        """Who priced it: gateway (genai-prices), override (prices file), coder, or mixed."""
        if not self.sources:
            return None
        if len(self.sources) > 1:
            return "mixed"
        return next(iter(self.sources))

    @property
    def reason(self) -> UnpricedReason | None:
        """The reason when all unpriced usages share one (the single-usage case)."""
        if len(self.unpriced_reasons) == 1:
            return self.unpriced_reasons[0][0]
        return None

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        left, right = self, other
        if left.currency != right.currency:
            if left.priced_usages == 0:
                left = _with_currency(left, right.currency)
            elif right.priced_usages > 0:
                # Money in two currencies cannot be added: the other currency's part counts
                # as unpriced in this sum (and says why) rather than failing the whole answer.
                right = _as_unpriced(right, UnpricedReason.CURRENCY_MISMATCH, left.currency)
            else:
                right = _with_currency(right, left.currency)
        kinds = None if left.kinds is None or right.kinds is None else left.kinds + right.kinds
        return Cost(
            currency=left.currency,
            priced_micros=left.priced_micros + right.priced_micros,
            kinds=kinds,
            priced_tokens=left.priced_tokens + right.priced_tokens,
            unpriced_tokens=left.unpriced_tokens + right.unpriced_tokens,
            priced_usages=left.priced_usages + right.priced_usages,
            unpriced_usages=left.unpriced_usages + right.unpriced_usages,
            unpriced_reasons=_merge_reasons(left.unpriced_reasons, right.unpriced_reasons),
            sources=left.sources | right.sources,
        )


def _merge_reasons(
    a: tuple[tuple[UnpricedReason, int], ...], b: tuple[tuple[UnpricedReason, int], ...]
) -> tuple[tuple[UnpricedReason, int], ...]:
    if not b:
        return a
    if not a:
        return b
    counts: Counter[UnpricedReason] = Counter(dict(a))
    counts.update(dict(b))
    return tuple(sorted(counts.items()))


def _with_currency(cost: Cost, currency: str) -> Cost:
    return Cost(
        currency=currency,
        priced_micros=cost.priced_micros,
        kinds=cost.kinds,
        priced_tokens=cost.priced_tokens,
        unpriced_tokens=cost.unpriced_tokens,
        priced_usages=cost.priced_usages,
        unpriced_usages=cost.unpriced_usages,
        unpriced_reasons=cost.unpriced_reasons,
        sources=cost.sources,
    )


def _as_unpriced(cost: Cost, reason: UnpricedReason, currency: str) -> Cost:
    return Cost(
        currency=currency,
        unpriced_tokens=cost.unpriced_tokens + cost.priced_tokens,
        unpriced_usages=cost.unpriced_usages + cost.priced_usages,
        unpriced_reasons=_merge_reasons(cost.unpriced_reasons, ((reason, cost.priced_usages),)),
    )
