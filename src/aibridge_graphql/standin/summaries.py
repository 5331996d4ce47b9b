"""The `session_summaries` table: each session's list row, kept current by triggers.

Coder's sessions list orders every session by its last activity, so answering a page means
aggregating every interception first (Postgres does it in one GROUP BY scan; SQLite took seconds).
The stand-in keeps one row per (session_id, initiator_id) of ended interceptions with the whole-
session aggregates Coder's ListAIBridgeSessions computes (the page's own MIN/MAX/COUNT and the
lateral joins: first client and metadata, providers, models, token sums, last prompt), so an
unfiltered page is an index range read. Filters that narrow the interceptions of a session
(provider, model, client, time) still group in SQL, and take the lateral fields from here.

One SQL statement computes the rows (`_REFRESH`), for one session (the triggers, on every write
to interceptions, token_usages and user_prompts) or for all of them (`rebuild`, after a bulk load
with the triggers off and when an older database gains the table).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

# The rows of the sessions whose interceptions match `{match}` (a condition on `i`). Tokens join
# one-to-one per interception and are summed over the whole session; `threads` counts distinct
# roots so the token join cannot inflate it; a group is ended interceptions only, as in Coder.
_REFRESH = """
INSERT INTO session_summaries (session_id, initiator_id, started_at, ended_at, threads,
    providers, models, client, metadata, input_tokens, output_tokens, cache_read_input_tokens,
    cache_write_input_tokens, last_prompt, last_active_at, firewall)
SELECT i.session_id, i.initiator_id, MIN(i.started_at), MAX(i.ended_at),
    COUNT(DISTINCT CASE WHEN i.thread_root_id IS NULL THEN i.id END),
    json_group_array(DISTINCT i.provider), json_group_array(DISTINCT i.model),
    (SELECT f.client FROM interceptions AS f WHERE f.session_id = i.session_id
        AND f.initiator_id = i.initiator_id AND f.ended_at IS NOT NULL
        ORDER BY f.started_at, f.id LIMIT 1),
    (SELECT f.metadata FROM interceptions AS f WHERE f.session_id = i.session_id
        AND f.initiator_id = i.initiator_id AND f.ended_at IS NOT NULL
        ORDER BY f.started_at, f.id LIMIT 1),
    COALESCE(SUM(t.input_tokens), 0), COALESCE(SUM(t.output_tokens), 0),
    COALESCE(SUM(t.cache_read_input_tokens), 0), COALESCE(SUM(t.cache_write_input_tokens), 0),
    (SELECT p.prompt FROM interceptions AS f JOIN user_prompts AS p ON p.interception_id = f.id
        WHERE f.session_id = i.session_id AND f.initiator_id = i.initiator_id
        AND f.ended_at IS NOT NULL ORDER BY p.created_at DESC, p.id DESC LIMIT 1),
    COALESCE((SELECT MAX(p.created_at) FROM interceptions AS f
        JOIN user_prompts AS p ON p.interception_id = f.id
        WHERE f.session_id = i.session_id AND f.initiator_id = i.initiator_id
        AND f.ended_at IS NOT NULL), MIN(i.started_at)),
    MAX(i.agent_firewall_session_id IS NOT NULL)
FROM interceptions AS i LEFT JOIN token_usages AS t ON t.interception_id = i.id
WHERE i.ended_at IS NOT NULL AND {match}
GROUP BY i.session_id, i.initiator_id
"""

_DELETE = "DELETE FROM session_summaries WHERE {match}"

# (name, event, the session keys a trigger refreshes: "OLD"/"NEW" of an interception or the
# interception a child row points at).
_CHILD_KEY = (
    "(i.session_id, i.initiator_id) = "
    "(SELECT session_id, initiator_id FROM interceptions WHERE id = {row}.interception_id)"
)
_CHILD_SUMMARY_KEY = (
    "(session_id, initiator_id) = "
    "(SELECT session_id, initiator_id FROM interceptions WHERE id = {row}.interception_id)"
)


def _refresh(row: str, *, child: bool) -> str:
    """The statements that recompute the summary of the session `row` (OLD or NEW) touches."""
    if child:
        match, summary_match = _CHILD_KEY.format(row=row), _CHILD_SUMMARY_KEY.format(row=row)
    else:
        match = f"i.session_id = {row}.session_id AND i.initiator_id = {row}.initiator_id"
        summary_match = f"session_id = {row}.session_id AND initiator_id = {row}.initiator_id"
    return f"{_DELETE.format(match=summary_match)};\n{_REFRESH.format(match=match)};"


def _triggers() -> dict[str, str]:
    """CREATE TRIGGER statements by name: every write that can change a session's row."""
    statements: dict[str, str] = {}
    for table, child in (("interceptions", False), ("token_usages", True), ("user_prompts", True)):
        for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
            name = f"session_summaries_{table}_{event.lower()}"
            body = "\n".join(_refresh(row, child=child) for row in rows)
            statements[name] = (
                f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} "
                f"FOR EACH ROW BEGIN\n{body}\nEND"
            )
    return statements


TRIGGERS = _triggers()


def install_triggers(conn: sqlite3.Connection) -> None:
    """Create the maintenance triggers (no commit)."""
    for statement in TRIGGERS.values():
        conn.execute(statement)


def drop_triggers(conn: sqlite3.Connection) -> None:
    """Drop the maintenance triggers (no commit): the summaries go stale until `rebuild`."""
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every session's row from the interceptions (no commit)."""
    conn.execute("DELETE FROM session_summaries")
    conn.execute(_REFRESH.format(match="1"))


@contextmanager
def bulk_load(conn: sqlite3.Connection) -> Iterator[None]:
    """Writes without per-row maintenance, then one rebuild: for loading many interceptions.

    Run it inside the transaction of the load (DDL is transactional in SQLite), so no other
    connection ever sees the triggers missing or the summaries stale.
    """
    if not conn.in_transaction:
        conn.execute("BEGIN")
    drop_triggers(conn)
    yield
    rebuild(conn)
    install_triggers(conn)
