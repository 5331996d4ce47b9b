"""The spend and budget queries (Coder's `aibridge.sql` budget queries in SQLite terms).

Spend is the sum of token usage costs attributed to a group from the UTC day of the period
start on, as Coder sums `ai_user_daily_spend` rows by day.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aibridge_graphql.standin.spend_data import effective_budget, user_groups_sql

Json = dict[str, object]
DAY_MICROS = 86_400 * 1_000_000


@dataclass(frozen=True)
class Period:
    """A budget period [start, end) in microseconds, UTC."""

    start: int
    end: int


def monthly_period(now_micros: int) -> Period:
    """The UTC calendar month containing `now` (Coder's default budget period)."""
    now = datetime.fromtimestamp(now_micros / 1_000_000, UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return Period(int(start.timestamp()) * 1_000_000, int(end.timestamp()) * 1_000_000)


def day_start(micros: int) -> int:
    """The start of the UTC day containing `micros` (Coder normalizes period starts so)."""
    return micros - micros % DAY_MICROS


def spend_clock(conn: sqlite3.Connection) -> int:
    """The stand-in's "now" for budgets: its latest priced usage (its data is a snapshot),
    or the real time when nothing is priced."""
    latest = conn.execute("SELECT max(created_at) FROM token_usage_costs").fetchone()[0]
    return int(latest) if latest is not None else time.time_ns() // 1000


def user_spend(conn: sqlite3.Connection, user_id: str, period: Period) -> Json:
    """UserAISpendStatus."""
    effective = effective_budget(conn, user_id)
    spend = 0
    if effective.group_id is not None:
        spend = conn.execute(
            "SELECT COALESCE(sum(cost_micros), 0) FROM token_usage_costs "
            "WHERE effective_group_id = ? AND user_id = ? AND created_at >= ?",
            (effective.group_id, user_id, day_start(period.start)),
        ).fetchone()[0]
    budget = None
    if effective.spend_limit_micros is not None:
        budget = {
            "spend_limit_micros": effective.spend_limit_micros,
            "limit_source": effective.limit_source,
        }
    return {
        "user_id": user_id,
        "effective_group_id": effective.group_id,
        "effective_budget": budget,
        "current_spend_micros": int(spend),
    }


def groups_spend(
    conn: sqlite3.Connection, organization_id: str, group_ids: list[str], period: Period
) -> list[Json]:
    """OrganizationGroupAISpend of the requested groups of the organization, by group id."""
    marks = ",".join("?" * len(group_ids))
    groups = conn.execute(
        "SELECT g.id, b.spend_limit_micros FROM ai_groups AS g "  # noqa: S608
        "LEFT JOIN group_ai_budgets AS b ON b.group_id = g.id "
        f"WHERE g.organization_id = ? AND g.id IN ({marks}) ORDER BY g.id",
        (organization_id, *group_ids),
    ).fetchall()
    result = []
    for group_id, limit in groups:
        members = [
            str(row[0])
            for row in conn.execute(
                # System users count toward no group's total (coder/coder#28698).
                f"SELECT DISTINCT user_id FROM ({user_groups_sql()}) WHERE group_id = ? "  # noqa: S608
                "AND user_id NOT IN (SELECT user_id FROM system_users)",
                (group_id,),
            )
        ]
        total = None
        if limit is not None:
            total = 0
            for user_id in members:
                effective = effective_budget(conn, user_id)
                if effective.group_id == group_id and effective.spend_limit_micros is not None:
                    total += effective.spend_limit_micros
        spend = conn.execute(
            "SELECT COALESCE(sum(cost_micros), 0) FROM token_usage_costs "
            "WHERE effective_group_id = ? AND created_at >= ?",
            (group_id, day_start(period.start)),
        ).fetchone()[0]
        result.append(
            {
                "group_id": str(group_id),
                "spend_limit_micros": limit,
                "total_spend_limit_micros": total,
                "current_spend_micros": int(spend),
            }
        )
    return result


def export_rows(
    conn: sqlite3.Connection, organization_id: str, start: int, end: int
) -> list[sqlite3.Row]:
    """The spend export's rows: per user, group, model, provider and provider name."""
    return conn.execute(
        "SELECT c.user_id, u.username, c.effective_group_id AS group_id, "
        "g.name AS group_name, o.id AS organization_id, o.name AS organization_name, "
        "i.model, i.provider, i.provider_name, sum(t.input_tokens) AS input_tokens, "
        "sum(t.output_tokens) AS output_tokens, "
        "sum(t.cache_read_input_tokens) AS cache_read_tokens, "
        "sum(t.cache_write_input_tokens) AS cache_write_tokens, "
        "sum(c.cost_micros) AS cost_micros "
        "FROM token_usage_costs AS c JOIN token_usages AS t ON t.id = c.token_usage_id "
        "JOIN interceptions AS i ON i.id = c.interception_id "
        "JOIN users AS u ON u.id = c.user_id "
        "JOIN ai_groups AS g ON g.id = c.effective_group_id "
        "JOIN organizations AS o ON o.id = g.organization_id "
        "WHERE o.id = ? AND c.created_at >= ? AND c.created_at < ? "
        "GROUP BY c.user_id, c.effective_group_id, i.model, i.provider, i.provider_name "
        "ORDER BY u.username, g.name, i.model, i.provider, i.provider_name",
        (organization_id, start, end),
    ).fetchall()
