"""The protocol-neutral usage pieces: Coder's own figure, thread remainders, CSV escaping, the
source choice and the import boundary."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime

from pydantic.dataclasses import dataclass

from aibridge_graphql.core.pricing import Cost, Pricer, TokenCounts, UnpricedReason
from aibridge_graphql.core.usage import (
    Dimension,
    GroupKey,
    Scanned,
    UsageReport,
    UsageRow,
    coder_cost,
    escape_cell,
    render_csv,
    source_for,
    thread_cost,
)
from aibridge_graphql.upstream import models as m

AT = datetime(2025, 9, 1, tzinfo=UTC)


def _thread(input_tokens: int, actions: list[int]) -> m.Thread:
    return m.Thread.model_validate(
        {
            "id": str(uuid.uuid4()),
            "model": "gpt-4.1",
            "provider": "openai",
            "started_at": AT.isoformat(),
            "token_usage": {"input_tokens": input_tokens, "output_tokens": 0},
            "agentic_actions": [
                {"model": "gpt-4.1", "token_usage": {"input_tokens": n, "output_tokens": 0}}
                for n in actions
            ],
        }
    )


def test_a_threads_tokens_outside_its_actions_are_priced_not_dropped() -> None:
    pricer = Pricer()
    # 1M input tokens, of which the actions hold 400K: the other 600K are the final answer.
    thread = _thread(1_000_000, [300_000, 100_000])
    cost = pricer.price_thread(thread)
    # gpt-4.1 input is $2 per million: the whole million is priced.
    assert cost.micros == 2_000_000
    assert cost.priced_tokens == TokenCounts(input=1_000_000)
    assert thread_cost(pricer, thread) == cost
    only_actions = _thread(400_000, [300_000, 100_000])
    assert pricer.price_remainder(only_actions) is None
    assert pricer.price_thread(only_actions).micros == 800_000


def test_coders_own_figure_wins_and_says_so() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class WithCoderCost(m.ThreadsTokenUsage):
        cost_micros: int | None = None

    usage = WithCoderCost(input_tokens=10, output_tokens=5, cost_micros=1234)
    cost = coder_cost(usage)
    assert cost is not None
    assert cost.micros == 1234
    assert cost.source == "coder"
    assert cost.breakdown is None
    assert coder_cost(m.ThreadsTokenUsage(input_tokens=10)) is None
    mixed = cost + Pricer().price(
        TokenCounts(input=1_000_000), provider="openai", model="gpt-4.1", at=AT
    )
    assert mixed.source == "mixed"
    assert mixed.micros == 1234 + 2_000_000


def test_formula_cells_are_escaped_as_coder_does() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert escape_cell(start + "1") == "'" + start + "1"
    assert escape_cell("claude-sonnet") == "claude-sonnet"
    assert escape_cell("") == ""


def test_csv_keeps_unpriced_empty_and_money_exact() -> None:
    rows = (
        UsageRow(
            key=GroupKey(model="=SUM(A1)", day=date(2025, 9, 1)),
            sessions=None,
            threads=None,
            interceptions=2,
            tokens=TokenCounts(input=5),
            cost=Cost.unpriced(UnpricedReason.UNKNOWN_MODEL, TokenCounts(input=5)),
        ),
        UsageRow(
            key=GroupKey(model="gpt-4.1", day=date(2025, 9, 1)),
            sessions=None,
            threads=None,
            interceptions=1,
            tokens=TokenCounts(input=1_000_000),
            cost=Pricer().price(
                TokenCounts(input=1_000_000), provider="openai", model="gpt-4.1", at=AT
            ),
        ),
    )
    report = UsageReport(
        group_by=(Dimension.MODEL, Dimension.DAY),
        source="interceptions",
        rows=rows,
        totals=rows[1],
        complete=True,
        stopped=None,
        scanned=Scanned(upstream_calls=1, interceptions=3),
    )
    table = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [line["model"] for line in table] == ["'=SUM(A1)", "gpt-4.1"]
    assert table[0]["cost_micros"] == ""
    assert table[0]["cost"] == ""
    assert table[0]["cost_complete"] == "false"
    assert table[0]["sessions"] == ""
    assert table[1]["cost_micros"] == "2000000"
    assert table[1]["cost"] == "2.000000"
    assert table[1]["day"] == "2025-09-01"


async def test_the_source_is_the_cheapest_the_upstream_offers() -> None:
    class Detected:
        def __init__(self, interceptions: bool | None) -> None:
            self.interceptions = interceptions

        async def capabilities(self) -> Detected:
            return self

    assert await source_for(Detected(True)) == "interceptions"  # type: ignore[arg-type]
    assert await source_for(Detected(False)) == "sessions"  # type: ignore[arg-type]
    # Routes unknown (e.g. behind a proxy): the walk that works in both eras.
    assert await source_for(Detected(None)) == "sessions"  # type: ignore[arg-type]
