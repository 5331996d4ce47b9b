"""Derived tables kept current by triggers: `session_summaries` and `interception_counts`.

Coder's sessions list orders every session by its last activity, so a page needs every
interception aggregated first (Postgres does that in one GROUP BY scan; SQLite took seconds).
The stand-in keeps one row per (session_id, initiator_id) with ended interceptions, holding the
whole-session values Coder's ListAIBridgeSessions computes (session_page's MIN/MAX/COUNT and
last activity, and the lateral joins: first client and metadata, providers, models, token sums,
last prompt), so a page is an index walk (store.py says which filters it serves). One SQL
statement computes the rows (`_REFRESH`): for one session in the triggers, on every write to
interceptions, token_usages and user_prompts; for all of them in `rebuild`.

`interception_counts` holds each initiator's number of ended interceptions, so the
interceptions list's count (asked on every page) is not a scan when unfiltered or by initiator.

`rebuild` runs after a bulk load with the triggers off (store.bulk_load) and when a database
lacks this version of the tables (derived data: `ensure` drops and rebuilds them when VERSION
changes).
"""

from __future__ import annotations

import sqlite3

# Bump when the table, its indexes or `_REFRESH` change: databases rebuild theirs on open.
VERSION = 1

_TABLE = """
CREATE TABLE session_summaries (
    session_id                TEXT NOT NULL,
    initiator_id              TEXT NOT NULL,
    started_at                INTEGER NOT NULL,
    -- The latest interception's start: a period keeps the session whole when started_at and
    -- last_started_at are both inside it.
    last_started_at           INTEGER NOT NULL,
    ended_at                  INTEGER NOT NULL,
    threads                   INTEGER NOT NULL,
    -- JSON arrays of the distinct values, in no particular order.
    providers                 TEXT NOT NULL,
    models                    TEXT NOT NULL,
    -- Of the first interception (started_at, id).
    client                    TEXT,
    metadata                  TEXT,
    input_tokens              INTEGER NOT NULL,
    output_tokens             INTEGER NOT NULL,
    cache_read_input_tokens   INTEGER NOT NULL,
    cache_write_input_tokens  INTEGER NOT NULL,
    last_prompt               TEXT,
    -- COALESCE(latest prompt's created_at, started_at): the list's order and cursor.
    last_active_at            INTEGER NOT NULL,
    -- Whether any interception was behind the agent firewall (network_calls shown).
    firewall                  INTEGER NOT NULL,
    PRIMARY KEY (session_id, initiator_id)
)
"""
_INDEXES = (
    # Pages, most recently active first, alone or for one initiator: covering the page's own
    # columns, so an offset or a period filter walks the index without reading rows.
    "CREATE INDEX ix_session_summaries_active ON session_summaries (last_active_at, "
    "session_id, initiator_id, started_at, last_started_at, ended_at, threads)",
    "CREATE INDEX ix_session_summaries_initiator ON session_summaries (initiator_id, "
    "last_active_at, session_id, started_at, last_started_at, ended_at, threads)",
    # Sessions a period bound cuts (started before it, last started after it): the longest
    # span bounds how far before (after) the bound they start (last start).
    "CREATE INDEX ix_session_summaries_started ON session_summaries (started_at, last_started_at)",
    "CREATE INDEX ix_session_summaries_last_started "
    "ON session_summaries (last_started_at, started_at)",
    "CREATE INDEX ix_session_summaries_span ON session_summaries (last_started_at - started_at)",
)
_COUNTS_TABLE = """
CREATE TABLE interception_counts (
    initiator_id  TEXT PRIMARY KEY,
    -- Ended interceptions (the ones the list shows) this initiator started.
    ended         INTEGER NOT NULL
)
"""
_COUNT_ONE = (
    "INSERT INTO interception_counts (initiator_id, ended) SELECT {row}.initiator_id, 1 "
    "WHERE {row}.ended_at IS NOT NULL ON CONFLICT (initiator_id) DO UPDATE SET ended = ended + 1"
)
_UNCOUNT_ONE = (
    "UPDATE interception_counts SET ended = ended - 1 "
    "WHERE initiator_id = {row}.initiator_id AND {row}.ended_at IS NOT NULL"
)
COLUMNS = (
    "session_id", "initiator_id", "started_at", "last_started_at", "ended_at", "threads",
    "providers", "models", "client", "metadata", "input_tokens", "output_tokens",
    "cache_read_input_tokens", "cache_write_input_tokens", "last_prompt", "last_active_at",
    "firewall",
)  # fmt: skip

# The rows of the sessions whose interceptions match `{match}` (a condition on `i`). Token
# usages join one-to-one per interception and are summed over the whole session; `threads`
# counts distinct roots so the join cannot inflate it; only ended interceptions count, as in
# Coder's SQL.
_REFRESH = f"""
INSERT INTO session_summaries ({", ".join(COLUMNS)})
SELECT i.session_id, i.initiator_id, MIN(i.started_at), MAX(i.started_at), MAX(i.ended_at),
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
WHERE i.ended_at IS NOT NULL AND {{match}}
GROUP BY i.session_id, i.initiator_id
"""  # noqa: S608

# The session a child row's interception belongs to.
_CHILD_SESSION = (
    "(SELECT session_id, initiator_id FROM interceptions WHERE id = {row}.interception_id)"
)


def _refresh(row: str, *, child: bool) -> str:
    """Statements recomputing the row of the session that `row` (OLD or NEW) belongs to."""
    if child:
        session = _CHILD_SESSION.format(row=row)
        match, own = (
            f"(i.session_id, i.initiator_id) = {session}",
            f"(session_id, initiator_id) = {session}",
        )
    else:
        own = f"session_id = {row}.session_id AND initiator_id = {row}.initiator_id"
        match = f"i.session_id = {row}.session_id AND i.initiator_id = {row}.initiator_id"
    delete = f"DELETE FROM session_summaries WHERE {own}"  # noqa: S608
    return f"{delete};\n{_REFRESH.format(match=match)};"


def _triggers() -> dict[str, str]:
    """CREATE TRIGGER statements by name: one per write that can change a session's row, and
    the interception counts' (incremental: recounting would read every row of an initiator)."""
    statements: dict[str, str] = {}
    counts = {
        "INSERT": [_COUNT_ONE.format(row="NEW")],
        "UPDATE": [_UNCOUNT_ONE.format(row="OLD"), _COUNT_ONE.format(row="NEW")],
        "DELETE": [_UNCOUNT_ONE.format(row="OLD")],
    }
    for event, steps in counts.items():
        name = f"interception_counts_{event.lower()}"
        statements[name] = (
            f"CREATE TRIGGER {name} AFTER {event} ON interceptions FOR EACH ROW BEGIN\n"
            + "".join(f"{step};\n" for step in steps)
            + "END"
        )
    for table, child in (("interceptions", False), ("token_usages", True), ("user_prompts", True)):
        for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
            name = f"session_summaries_{table}_{event.lower()}"
            body = "\n".join(_refresh(row, child=child) for row in rows)
            statements[name] = (
                f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW BEGIN\n{body}\nEND"
            )
    return statements


TRIGGERS = _triggers()
_TRIGGER_PREFIXES = ("session_summaries_", "interception_counts_")


def ensure(conn: sqlite3.Connection) -> None:
    """Give the database this version's tables (built from its data when missing or of another
    version) and triggers (no commit)."""
    if not conn.in_transaction:
        conn.execute("BEGIN")
    conn.execute("CREATE TABLE IF NOT EXISTS session_summaries_version (version INTEGER NOT NULL)")
    found = conn.execute("SELECT version FROM session_summaries_version").fetchone()
    tables = conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
        "AND name IN ('session_summaries', 'interception_counts')"
    ).fetchone()[0]
    if found is None or found[0] != VERSION or tables != 2:
        conn.execute("DROP TABLE IF EXISTS session_summaries")
        conn.execute("DROP TABLE IF EXISTS interception_counts")
        conn.execute(_TABLE)
        conn.execute(_COUNTS_TABLE)
        for statement in _INDEXES:
            conn.execute(statement)
        conn.execute("DELETE FROM session_summaries_version")
        conn.execute("INSERT INTO session_summaries_version (version) VALUES (?)", (VERSION,))
        rebuild(conn)
    # A database may carry another version's triggers: replace them when any differs.
    present = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    ours = {name for name in present if name.startswith(_TRIGGER_PREFIXES)}
    if ours != set(TRIGGERS) or any(present[name] != sql for name, sql in TRIGGERS.items()):
        for name in ours:
            conn.execute(f"DROP TRIGGER {name}")
        install_triggers(conn)


def install_triggers(conn: sqlite3.Connection) -> None:
    """Create the maintenance triggers (no commit)."""
    for statement in TRIGGERS.values():
        conn.execute(statement)


def drop_triggers(conn: sqlite3.Connection) -> None:
    """Drop the maintenance triggers (no commit): the rows go stale until `rebuild`."""
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every row of the derived tables from the interceptions (no commit)."""
    conn.execute("DELETE FROM session_summaries")
    conn.execute(_REFRESH.format(match="1"))
    conn.execute("DELETE FROM interception_counts")
    conn.execute(
        "INSERT INTO interception_counts (initiator_id, ended) SELECT initiator_id, COUNT(*) "
        "FROM interceptions WHERE ended_at IS NOT NULL GROUP BY initiator_id"
    )
