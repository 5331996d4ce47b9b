"""A usage report as CSV, for spreadsheets: one line per row, safe against formula injection.

Columns: the grouped dimensions (USER gives `user_id` and `username`), then the counts, the
tokens and the cost. Money is exact: `cost_micros` (an integer) and `cost` (the same amount as a
decimal). An unpriced amount is an empty cell, never 0. A cell a spreadsheet would read as a
formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, as
Coder's own spend export does.
"""

from __future__ import annotations

import csv
import io

from aibridge_graphql.core.usage.aggregate import Dimension, UsageReport, UsageRow

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_DIMENSION_COLUMNS: dict[Dimension, tuple[str, ...]] = {
    Dimension.USER: ("user_id", "username"),
    Dimension.MODEL: ("model",),
    Dimension.PROVIDER: ("provider",),
    Dimension.PROVIDER_NAME: ("provider_name",),
    Dimension.CLIENT: ("client",),
    Dimension.DAY: ("day",),
}

NUMBER_COLUMNS = (
    "sessions",
    "threads",
    "interceptions",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "cost",
    "currency",
    "cost_source",
    "cost_complete",
    "unpriced_usages",
    "unpriced_tokens",
)


def escape_cell(value: str) -> str:
    """`value` with a leading `'` when a spreadsheet would otherwise run it as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def columns(group_by: tuple[Dimension, ...]) -> list[str]:
    """The header: the dimensions' columns in `group_by` order, then the numbers."""
    out = [name for dim in group_by for name in _DIMENSION_COLUMNS[dim]]
    return [*out, *NUMBER_COLUMNS]


def _dimension_cells(row: UsageRow, dim: Dimension) -> list[str]:
    key = row.key
    match dim:
        case Dimension.USER:
            return [str(key.user_id or ""), key.username or ""]
        case Dimension.MODEL:
            return [key.model or ""]
        case Dimension.PROVIDER:
            return [key.provider or ""]
        case Dimension.PROVIDER_NAME:
            return [key.provider_name or ""]
        case Dimension.CLIENT:
            return [key.client or ""]
        case Dimension.DAY:
            return [key.day.isoformat() if key.day else ""]


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def row_cells(row: UsageRow, group_by: tuple[Dimension, ...]) -> list[str]:
    """One CSV line's cells (unescaped)."""
    cost = row.cost
    amount = cost.decimal
    cells = [cell for dim in group_by for cell in _dimension_cells(row, dim)]
    cells += [
        _count(row.sessions),
        _count(row.threads),
        _count(row.interceptions),
        str(row.tokens.input),
        str(row.tokens.output),
        str(row.tokens.cache_read),
        str(row.tokens.cache_write),
        _count(cost.micros),
        "" if amount is None else f"{amount:f}",
        cost.currency,
        (cost.source or "").upper(),
        "true" if cost.complete else "false",
        str(cost.unpriced_usages),
        str(cost.unpriced_tokens.total),
    ]
    return cells


def render_csv(report: UsageReport) -> str:
    """The report's rows as CSV text (RFC 4180: CRLF line ends, quoted where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns(report.group_by))
    for row in report.rows:
        writer.writerow([escape_cell(cell) for cell in row_cells(row, report.group_by)])
    return buffer.getvalue()
