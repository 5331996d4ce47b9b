"""Protocol-neutral usage: costs of the upstream shapes, aggregates, and their CSV form.

Imports only pricing/, upstream/, the loaders, refs, errors and settings: no GraphQL, gRPC or
aiohttp, so every face (GraphQL, gRPC, `/usage.csv`) answers from the same code.
"""

from aibridge_graphql.core.usage.aggregate import (
    Dimension,
    GroupKey,
    Scanned,
    ScanSource,
    UsageReport,
    UsageRow,
    aggregate_usage,
    source_for,
)
from aibridge_graphql.core.usage.costs import (
    action_cost,
    coder_cost,
    interception_cost,
    session_cost,
    thread_cost,
    token_usage_cost,
)
from aibridge_graphql.core.usage.export import escape_cell, render_csv

__all__ = [
    "Dimension",
    "GroupKey",
    "ScanSource",
    "Scanned",
    "UsageReport",
    "UsageRow",
    "action_cost",
    "aggregate_usage",
    "coder_cost",
    "escape_cell",
    "interception_cost",
    "render_csv",
    "session_cost",
    "source_for",
    "thread_cost",
    "token_usage_cost",
]
