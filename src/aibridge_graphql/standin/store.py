"""The stand-in's SQLite database: opening it, a read pool, and the queries the API runs.

The SQL mirrors Coder's `coderd/database/queries/aibridge.sql` (sessions era) in SQLite terms.
Callers pass an "authorized" flag standing in for dbauthz's SQL authorize filter: owners and
auditors see every row, members none.
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from aibridge_graphql.standin import summaries
from aibridge_graphql.standin.search import InterceptionSearch, SessionSearch

T = TypeVar("T")
Row = sqlite3.Row

SCHEMA_SQL = resources.files("aibridge_graphql.standin").joinpath("schema.sql").read_text()
# Page of ids bound in one `IN (...)`: well under SQLite's variable limit.
_IN_CHUNK = 900


def open_database(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) the database and apply the schema and indexes idempotently."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    # Coder has no foreign keys from the child tables to interceptions.
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA synchronous = NORMAL")
    _add_missing_columns(conn)
    conn.executescript(SCHEMA_SQL)
    summaries.ensure(conn)
    conn.commit()
    return conn


# Columns added since the first schema: a database written by an older stand-in gains them
# (NULL or the default) before the schema's indexes, which use some of them, are created.
_ADDED_COLUMNS = {
    "ai_providers": (
        ("display_name", "TEXT NOT NULL DEFAULT ''"),
        ("icon", "TEXT NOT NULL DEFAULT ''"),
    ),
    "interceptions": (
        ("agent_firewall_session_id", "TEXT"),
        ("agent_firewall_sequence_number", "INTEGER"),
        ("error_type", "TEXT"),
        ("error_message", "TEXT"),
    ),
}


# The schema's secondary indexes, (name, CREATE statement): a bulk load builds them afterwards.
_INDEXES = tuple(
    (match.group(1), match.group(0))
    for match in re.finditer(r"CREATE INDEX IF NOT EXISTS (\w+)\s+ON[^;]+", SCHEMA_SQL)
)
# KiB of page cache while bulk loading: the primary key indexes (random UUIDs) stay in memory.
_BULK_CACHE_KIB = 512_000


@contextmanager
def bulk_load(conn: sqlite3.Connection) -> Iterator[None]:
    """Inside, inserts skip the secondary indexes and the session summaries, which are built
    once at the end (one sort per index instead of one B-tree insert per row); for loading many
    interceptions (the seed). No commit: it runs in the caller's transaction (begun here if
    none; DDL is transactional in SQLite), so other connections never see the indexes missing.
    On an error the caller rolls back.
    """
    if not conn.in_transaction:
        conn.execute("BEGIN")
    cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = -{_BULK_CACHE_KIB}")
    summaries.drop_triggers(conn)
    for name, _ in _INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    yield
    for _, statement in _INDEXES:
        conn.execute(statement)
    summaries.rebuild(conn)
    summaries.install_triggers(conn)
    conn.execute(f"PRAGMA cache_size = {int(cache_size)}")


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
        if not present:
            continue  # a new database: the schema creates the table whole
        for name, declaration in columns:
            if name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def prepare_for_serving(path: str | Path) -> None:
    """Apply the schema and refresh the planner's statistics (so filters pick good indexes)."""
    conn = open_database(path)
    try:
        conn.execute("PRAGMA analysis_limit = 1000")
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()


def _read_connection(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only = ON")
    # Postgres LIKE is case-sensitive; this also lets prefix LIKEs use the indexes.
    conn.execute("PRAGMA case_sensitive_like = ON")
    conn.execute("PRAGMA cache_size = -32000")  # KiB: bounds memory per connection
    return conn


class ReadPool:
    """A few read-only connections used from worker threads, one transaction per call."""

    def __init__(self, path: str | Path, size: int = 2) -> None:
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all = [_read_connection(path) for _ in range(size)]
        for conn in self._all:
            self._idle.put(conn)
        # As many workers as connections, so a worker never waits for one.
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="standin-db")

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` off the event loop in one read transaction (a consistent snapshot)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._in_transaction, work)

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._idle.get()
        try:
            conn.execute("BEGIN")
            try:
                return work(conn)
            finally:
                conn.execute("COMMIT")
        finally:
            self._idle.put(conn)

    def close(self) -> None:
        """Stop the workers and close every connection."""
        self._executor.shutdown(wait=True)
        for conn in self._all:
            conn.close()


class DbLookups:
    """The search parser's lookups (search.Lookups) over one connection.

    `provider_names`: "authorized" resolves `provider_name` through the caller's authorization
    (the sessions era: only an owner may read providers, so an auditor's lookup fails);
    "any" accepts every name (the AI Gateway era matches it as a plain string).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        provider_names: str = "authorized",
        can_read_providers: bool = True,
    ) -> None:
        self._conn = conn
        self._provider_names = provider_names
        self._can_read_providers = can_read_providers

    def user_id_by_username(self, username: str) -> str | None:
        """GetUserByEmailOrUsername: usernames match case-insensitively."""
        row = self._conn.execute(
            "SELECT id FROM users WHERE lower(username) = lower(?)", (username,)
        ).fetchone()
        return None if row is None else str(row[0])

    def provider_name_exists(self, name: str) -> bool:
        """Whether a configured provider the caller may read has this name."""
        if self._provider_names == "any":
            return True
        if not self._can_read_providers:
            return False
        return (
            self._conn.execute("SELECT 1 FROM ai_providers WHERE name = ?", (name,)).fetchone()
            is not None
        )


@dataclass(frozen=True)
class Where:
    """A WHERE clause over `interceptions AS i` and its parameters."""

    sql: str
    params: tuple[Any, ...]


def search_where(search: InterceptionSearch, *, authorized: bool) -> Where:
    """The filters of a parsed `q` over ended interceptions, plus the authorize filter."""
    clauses = ["i.ended_at IS NOT NULL"]
    params: list[Any] = []
    if not authorized:
        clauses.append("0")
    equalities = (
        ("i.initiator_id", search.initiator_id),
        ("i.provider", search.provider),
        ("i.provider_name", search.provider_name),
        ("i.model", search.model),
        ("COALESCE(i.client, 'Unknown')", search.client),
        ("i.session_id", search.session_id if isinstance(search, SessionSearch) else None),
    )
    for column, value in equalities:
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if search.started_after is not None:
        clauses.append("i.started_at >= ?")
        params.append(search.started_after)
    if search.started_before is not None:
        clauses.append("i.started_at <= ?")
        params.append(search.started_before)
    return Where(" AND ".join(clauses), tuple(params))


# --- interceptions -------------------------------------------------------------------------


def interception_position(
    conn: sqlite3.Connection, interception_id: str, *, authorized: bool
) -> tuple[int, str] | None:
    """(started_at, id) of an interception the caller may read (in flight or not), else None."""
    if not authorized:
        return None
    row = conn.execute(
        "SELECT started_at, id FROM interceptions WHERE id = ?", (interception_id,)
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def count_interceptions(
    conn: sqlite3.Connection, search: InterceptionSearch, *, authorized: bool
) -> int:
    """How many interceptions match, regardless of pagination (from the per-initiator counts
    when only the initiator is filtered)."""
    others = [getattr(search, f.name) for f in fields(search) if f.name != "initiator_id"]
    if any(value not in (None, "") for value in others):
        where = search_where(search, authorized=authorized)
        sql = f"SELECT COUNT(*) FROM interceptions AS i WHERE {where.sql}"  # noqa: S608
        return int(conn.execute(sql, where.params).fetchone()[0])
    if not authorized:
        return 0
    sql = "SELECT COALESCE(SUM(ended), 0) FROM interception_counts"
    if search.initiator_id:
        return int(
            conn.execute(f"{sql} WHERE initiator_id = ?", (search.initiator_id,)).fetchone()[0]
        )
    return int(conn.execute(sql).fetchone()[0])


def _interceptions_sql(where: Where, *, cursor: bool, orphans: bool = True) -> str:
    # The page's ids first, walking the filter's index (an offset skips index entries, not
    # joined rows), then their rows and initiators. With `orphans` (an ended interception whose
    # initiator is no user), the IN keeps the users join's semantics for the offset: such an
    # interception is on no page (the count still has it).
    keyset = " AND (i.started_at, i.id) < (?, ?)" if cursor else ""
    users = " AND i.initiator_id IN (SELECT id FROM users)" if orphans else ""
    return (
        "SELECT i.*, u.username, u.name, u.avatar_url FROM (SELECT i.id "  # noqa: S608
        f"FROM interceptions AS i WHERE {where.sql}{keyset}{users} "
        "ORDER BY i.started_at DESC, i.id DESC LIMIT ? OFFSET ?) AS page "
        "JOIN interceptions AS i ON i.id = page.id JOIN users AS u ON u.id = i.initiator_id "
        "ORDER BY i.started_at DESC, i.id DESC"
    )


def _has_orphans(conn: sqlite3.Connection) -> bool:
    """Whether an ended interception's initiator is not a user (a few rows of the counts)."""
    sql = (
        "SELECT 1 FROM interception_counts WHERE ended > 0 "
        "AND initiator_id NOT IN (SELECT id FROM users) LIMIT 1"
    )
    return conn.execute(sql).fetchone() is not None


def list_interceptions(
    conn: sqlite3.Connection,
    where: Where,
    *,
    cursor: tuple[int, str] | None,
    limit: int,
    offset: int,
) -> list[Row]:
    """A page of interceptions, newest first, joined with their initiators."""
    params = (*where.params, *(cursor or ()), limit, offset)
    sql = _interceptions_sql(where, cursor=cursor is not None, orphans=_has_orphans(conn))
    return conn.execute(sql, params).fetchall()


_CHILD_SQL = {
    "token_usages": "SELECT * FROM token_usages WHERE interception_id IN ({}) "
    "ORDER BY created_at, id",
    "user_prompts": "SELECT * FROM user_prompts WHERE interception_id IN ({}) "
    "ORDER BY created_at, id",
    "tool_usages": "SELECT * FROM tool_usages WHERE interception_id IN ({}) "
    "ORDER BY created_at, id",
    "model_thoughts": "SELECT * FROM model_thoughts WHERE interception_id IN ({}) "
    "ORDER BY created_at, rowid",
}


def children_by_interception(
    conn: sqlite3.Connection, table: str, ids: Sequence[str]
) -> dict[str, list[Row]]:
    """Rows of a child table for these interceptions, grouped by interception, created_at ASC."""
    grouped: dict[str, list[Row]] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        sql = _CHILD_SQL[table].format(",".join("?" * len(chunk)))
        for row in conn.execute(sql, chunk):
            grouped.setdefault(row["interception_id"], []).append(row)
    return grouped


# --- sessions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionSummary:
    """One ListAIBridgeSessions row: page aggregates plus the per-session lateral reads."""

    session_id: str
    initiator_id: str
    username: str
    name: str
    avatar_url: str
    providers: list[str]
    models: list[str]
    client: str
    metadata: str | None
    started_at: int
    ended_at: int
    threads: int
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_write_input_tokens: int
    last_prompt: str
    last_active_at: int
    # (total, blocked) network calls; None when the firewall was not in use (or not asked for).
    network_calls: tuple[int, int] | None = None


# How a sessions query is answered. The initiator and the session id are the grouping key: they
# keep or drop whole sessions, which the summaries answer alone. A period keeps whole the
# sessions inside it, which the summaries also answer, and cuts the few that cross its bounds,
# which are grouped from their interceptions inside it; the two arms are merged in order. The
# provider, provider name, model and client filters keep only some interceptions of a session:
# those pages group every matching interception, as Coder's session_page does.
_SESSION_COLUMNS = "session_id, initiator_id, started_at, ended_at, threads, last_active_at"
# Coder's session_page aggregates of the matching interceptions `i`.
_GROUP_AGGREGATES = (
    "i.session_id, i.initiator_id, MIN(i.started_at) AS started_at, "
    "MAX(i.ended_at) AS ended_at, SUM(i.thread_root_id IS NULL) AS threads, "
    "COALESCE(MAX((SELECT MAX(p.created_at) FROM user_prompts AS p "
    "WHERE p.interception_id = i.id)), MIN(i.started_at)) AS last_active_at"
)
# Most recently active first; the initiator only orders sessions that share an id.
_SESSION_ORDER = "{t}last_active_at DESC, {t}session_id DESC, {t}initiator_id DESC"
# Where an arm takes the page cursor: `(last_active_at, session_id) < (?, ?)`.
_KEYSET = "{keyset}"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class _SessionArm:
    """A SELECT of `_SESSION_COLUMNS` (one row per matching session) with `_KEYSET` where the
    cursor condition goes, and its parameters (the cursor's follow them)."""

    sql: str
    params: tuple[Any, ...]
    grouped: bool = False

    def text(self, *, cursor: bool) -> str:
        """The SELECT, with or without the cursor condition."""
        column = (
            "last_active_at, i.session_id" if self.grouped else "s.last_active_at, s.session_id"
        )
        return self.sql.replace(_KEYSET, f" AND ({column}) < (?, ?)" if cursor else "")


@dataclass(frozen=True)
class _SessionQuery:
    """The arms whose rows make up the matching sessions, after CTEs (`WITH ...,` or "")."""

    ctes: str
    cte_params: tuple[Any, ...]
    arms: tuple[_SessionArm, ...]

    def page(self, cursor: tuple[int, str] | None) -> tuple[str, tuple[Any, ...]]:
        """The page CTE's body (ordered, LIMIT ? OFFSET ? to bind) and its params so far."""
        union = " UNION ALL ".join(arm.text(cursor=cursor is not None) for arm in self.arms)
        params = [*self.cte_params]
        for arm in self.arms:
            params += [*arm.params, *(cursor or ())]
        return f"{union} ORDER BY {_SESSION_ORDER.format(t='')} LIMIT ? OFFSET ?", tuple(params)


def _narrows_sessions(search: SessionSearch) -> bool:
    """Whether a filter keeps only some interceptions of a session."""
    return any((search.provider, search.provider_name, search.model, search.client))


def _summary_where(search: SessionSearch, *, authorized: bool) -> Where:
    """The whole-session filters over `session_summaries AS s`, plus the authorize filter."""
    clauses, params = ["1"], list[Any]()
    if not authorized:
        clauses.append("0")
    keys = (("s.initiator_id", search.initiator_id), ("s.session_id", search.session_id))
    for column, value in keys:
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    return Where(" AND ".join(clauses), tuple(params))


def _session_query(
    conn: sqlite3.Connection, search: SessionSearch, *, authorized: bool
) -> _SessionQuery:
    if _narrows_sessions(search):
        where = search_where(search, authorized=authorized)
        grouped = _SessionArm(
            f"SELECT {_GROUP_AGGREGATES} FROM interceptions AS i WHERE {where.sql} "  # noqa: S608
            f"GROUP BY i.session_id, i.initiator_id HAVING 1{_KEYSET}",
            where.params,
            grouped=True,
        )
        return _SessionQuery("", (), (grouped,))
    whole = _summary_where(search, authorized=authorized)
    if search.started_after is None and search.started_before is None:
        arm = _SessionArm(
            f"SELECT {_SESSION_COLUMNS} FROM session_summaries AS s "  # noqa: S608
            f"WHERE {whole.sql}{_KEYSET}",
            whole.params,
        )
        return _SessionQuery("", (), (arm,))
    # The walk in page order: over one initiator's sessions when the filter names one.
    index = (
        "ix_session_summaries_initiator" if search.initiator_id else "ix_session_summaries_active"
    )
    return _period_query(conn, whole, index, search.started_after, search.started_before)


def _period_query(
    conn: sqlite3.Connection, whole: Where, index: str, after: int | None, before: int | None
) -> _SessionQuery:
    """Sessions with interceptions started in [after, before]: those inside it from their
    summaries (walked in page order), those it cuts grouped over their interceptions in it."""
    low = _INT64_MIN if after is None else after
    high = _INT64_MAX if before is None else before
    # No session spans longer, so one a bound cuts starts (or last starts) this close to it.
    span = conn.execute("SELECT MAX(last_started_at - started_at) FROM session_summaries")
    longest = int(span.fetchone()[0] or 0)
    cuts, params = [], list[Any]()
    if after is not None:
        cuts.append(
            "SELECT s.session_id, s.initiator_id FROM session_summaries AS s "  # noqa: S608
            f"WHERE {whole.sql} AND s.started_at >= ? AND s.started_at < ? "
            "AND s.last_started_at >= ?"
        )
        params += [*whole.params, max(after - longest, _INT64_MIN), after, after]
    if before is not None:
        cuts.append(
            "SELECT s.session_id, s.initiator_id FROM session_summaries AS s "  # noqa: S608
            f"WHERE {whole.sql} AND s.last_started_at > ? AND s.last_started_at <= ? "
            "AND s.started_at <= ?"
        )
        params += [*whole.params, before, min(before + longest, _INT64_MAX), before]
    inside = _SessionArm(
        f"SELECT {_SESSION_COLUMNS} FROM session_summaries AS s "  # noqa: S608
        f"INDEXED BY {index} WHERE {whole.sql} "
        f"AND s.started_at >= ? AND s.last_started_at <= ?{_KEYSET}",
        (*whole.params, low, high),
    )
    cut = _SessionArm(
        f"SELECT {_GROUP_AGGREGATES} FROM cut CROSS JOIN interceptions AS i "  # noqa: S608
        "ON i.session_id = cut.session_id AND i.initiator_id = cut.initiator_id "
        "WHERE i.ended_at IS NOT NULL AND i.started_at >= ? AND i.started_at <= ? "
        f"GROUP BY i.session_id, i.initiator_id HAVING 1{_KEYSET}",
        (low, high),
        grouped=True,
    )
    return _SessionQuery(f"cut AS ({' UNION '.join(cuts)}),", tuple(params), (inside, cut))


def count_sessions(conn: sqlite3.Connection, search: SessionSearch, *, authorized: bool) -> int:
    """COUNT(DISTINCT (session_id, initiator_id)) over the filters, ignoring pagination."""
    if _narrows_sessions(search):  # no need for the last activity to count the groups
        where = search_where(search, authorized=authorized)
        sql = (
            "SELECT COUNT(*) FROM (SELECT 1 FROM interceptions AS i "  # noqa: S608
            f"WHERE {where.sql} GROUP BY i.session_id, i.initiator_id)"
        )
        return int(conn.execute(sql, where.params).fetchone()[0])
    query = _session_query(conn, search, authorized=authorized)
    union = " UNION ALL ".join(arm.text(cursor=False) for arm in query.arms)
    params = [*query.cte_params]
    for arm in query.arms:
        params += arm.params
    prefix = f"WITH {query.ctes.rstrip(',')} " if query.ctes else ""
    sql = f"{prefix}SELECT COUNT(*) FROM ({union})"  # noqa: S608
    return int(conn.execute(sql, params).fetchone()[0])


def session_exists(conn: sqlite3.Connection, where: Where) -> bool:
    """Whether any session matches (the cursor check: a visible, ended session with that id)."""
    sql = (
        "SELECT 1 FROM interceptions AS i JOIN users AS u ON u.id = i.initiator_id "  # noqa: S608
        f"WHERE {where.sql} LIMIT 1"
    )
    return conn.execute(sql, where.params).fetchone() is not None


def session_cursor_position(conn: sqlite3.Connection, session_id: str) -> int | None:
    """cursor_pos: last_active_at over *all* ended interceptions with this session id."""
    row = conn.execute(
        "SELECT COALESCE(MAX(p.created_at), MIN(i.started_at)) FROM interceptions AS i "
        "LEFT JOIN user_prompts AS p ON p.interception_id = i.id "
        "WHERE i.session_id = ? AND i.ended_at IS NOT NULL",
        (session_id,),
    ).fetchone()
    return None if row[0] is None else int(row[0])


def _sessions_page_sql(
    query: _SessionQuery, cursor: tuple[int, str] | None
) -> tuple[str, tuple[Any, ...]]:
    """A page of the query's sessions with the lateral fields from the summaries and the
    initiators (LIMIT and OFFSET left to bind)."""
    page, params = query.page(cursor)
    sql = (
        f"WITH {query.ctes} page AS ({page}) "  # noqa: S608
        "SELECT page.session_id, page.initiator_id, page.started_at, page.ended_at, "
        "page.threads, page.last_active_at, s.providers, s.models, s.client, s.metadata, "
        "s.input_tokens, s.output_tokens, s.cache_read_input_tokens, "
        "s.cache_write_input_tokens, s.last_prompt, s.firewall, u.username, u.name, "
        "u.avatar_url FROM page JOIN session_summaries AS s "
        "ON s.session_id = page.session_id AND s.initiator_id = page.initiator_id "
        "JOIN users AS u ON u.id = page.initiator_id "
        f"ORDER BY {_SESSION_ORDER.format(t='page.')}"
    )
    return sql, params


def list_sessions(
    conn: sqlite3.Connection,
    search: SessionSearch,
    *,
    authorized: bool,
    cursor: tuple[int, str] | None,
    limit: int,
    offset: int,
    network: bool = False,
) -> list[SessionSummary]:
    """A page of sessions, most recently active first, each with its lateral aggregates
    (and, when `network`, its agent firewall call counts)."""
    query = _session_query(conn, search, authorized=authorized)
    sql, params = _sessions_page_sql(query, cursor)
    rows = conn.execute(sql, (*params, limit, offset)).fetchall()
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    if network:
        counts = network_counts(conn, [_key(r) for r in rows if r["firewall"]])
    # No network_calls when no interception was behind the firewall; (0, 0) when one was.
    return [
        _summary(row, counts.get(_key(row), (0, 0)) if row["firewall"] else None) for row in rows
    ]


def _key(row: Row) -> tuple[str, str]:
    return str(row["session_id"]), str(row["initiator_id"])


def _summary(row: Row, network_calls: tuple[int, int] | None) -> SessionSummary:
    return SessionSummary(
        session_id=row["session_id"],
        initiator_id=row["initiator_id"],
        username=row["username"],
        name=row["name"],
        avatar_url=row["avatar_url"],
        # Sorted here: SQLite's json_group_array keeps no order.
        providers=sorted(json.loads(row["providers"])),
        models=sorted(json.loads(row["models"])),
        client=row["client"] or "",
        metadata=row["metadata"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        threads=row["threads"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cache_read_input_tokens=row["cache_read_input_tokens"],
        cache_write_input_tokens=row["cache_write_input_tokens"],
        last_prompt=row["last_prompt"] or "",
        last_active_at=row["last_active_at"],
        network_calls=network_calls,
    )


# --- agent firewall network calls ----------------------------------------------------------

# The firewall windows of the ended interceptions of some sessions (a JSON array of
# [session_id, initiator_id] pairs): each owns its firewall session's logs after its own
# sequence number (its LLM call, excluded) and before the next marked interception of that
# firewall session, whichever AI session that one belongs to. `w` is computed once per
# interception, and each window is one range of the (session_id, sequence_number) index (the
# last window of a firewall session is open-ended, hence two arms); `hit` is each log in a
# window of a session, which counts a log once per session (DISTINCT).
_WINDOW_LOGS = (
    "WITH k AS (SELECT json_extract(value, '$[0]') AS sid, json_extract(value, '$[1]') AS uid "
    "FROM json_each(?)), "
    "w AS MATERIALIZED (SELECT k.sid, k.uid, i.agent_firewall_session_id AS fw, "
    "i.agent_firewall_sequence_number AS lo, "
    "(SELECT MIN(j.agent_firewall_sequence_number) FROM interceptions AS j "
    "WHERE j.agent_firewall_session_id = i.agent_firewall_session_id "
    "AND j.agent_firewall_sequence_number > i.agent_firewall_sequence_number) AS hi "
    "FROM k JOIN interceptions AS i ON i.session_id = k.sid AND i.initiator_id = k.uid "
    "WHERE i.ended_at IS NOT NULL AND i.agent_firewall_session_id IS NOT NULL), "
    "hit AS (SELECT w.sid, w.uid, b.rowid AS log, b.allowed FROM w "
    "JOIN boundary_logs AS b ON b.session_id = w.fw AND b.sequence_number > w.lo "
    "AND b.sequence_number < w.hi UNION ALL SELECT w.sid, w.uid, b.rowid, b.allowed FROM w "
    "JOIN boundary_logs AS b ON b.session_id = w.fw AND b.sequence_number > w.lo "
    "WHERE w.hi IS NULL) "
)


def network_counts(
    conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(total, blocked) calls in the windows of each (session_id, initiator_id); sessions with
    no call in any window are left out."""
    if not keys:
        return {}
    sql = (
        f"{_WINDOW_LOGS}SELECT sid, uid, COUNT(DISTINCT log), "  # noqa: S608
        "COUNT(DISTINCT CASE WHEN NOT allowed THEN log END) FROM hit GROUP BY sid, uid"
    )
    rows = conn.execute(sql, (json.dumps([list(k) for k in keys]),))
    return {(str(r[0]), str(r[1])): (int(r[2]), int(r[3])) for r in rows}


def network_logs(conn: sqlite3.Connection, session_id: str, initiator_id: str) -> list[Row]:
    """Every call in the session's windows, oldest first."""
    sql = (
        f"{_WINDOW_LOGS}SELECT * FROM boundary_logs WHERE rowid IN (SELECT log FROM hit) "  # noqa: S608
        "ORDER BY captured_at, sequence_number, id"
    )
    return conn.execute(sql, (json.dumps([[session_id, initiator_id]]),)).fetchall()


def list_providers(conn: sqlite3.Connection) -> list[Row]:
    """Configured providers by name."""
    return conn.execute(
        "SELECT name, type, display_name, icon FROM ai_providers ORDER BY name"
    ).fetchall()


# --- session threads -----------------------------------------------------------------------


def interception_session_id(
    conn: sqlite3.Connection, interception_id: str, *, authorized: bool
) -> str | None:
    """The session id of an interception the caller may read, else None."""
    if not authorized:
        return None
    row = conn.execute(
        "SELECT session_id FROM interceptions WHERE id = ?", (interception_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def thread_rows(
    conn: sqlite3.Connection,
    session_id: str,
    *,
    after_id: str | None = None,
    before_id: str | None = None,
    limit: int = 0,
) -> list[Row]:
    """ListAIBridgeSessionThreads: every ended interception of a page of thread roots.

    Roots are taken `started_at ASC, id ASC` from the session start, so `before_id` yields the
    first threads before the cursor, not the ones right before it (Coder's behaviour). A zero
    limit means 50, as `COALESCE(NULLIF(limit, 0), 50)` does upstream.
    """
    cursor_sql, params = "", [session_id]
    for op, cursor in ((">", after_id), ("<", before_id)):
        if cursor is not None:
            cursor_sql += (
                f" AND (started_at, id) {op} "  # noqa: S608
                "((SELECT started_at FROM interceptions WHERE id = ?), ?)"
            )
            params += [cursor, cursor]
    sql = (
        "WITH pt AS (SELECT id AS thread_id, started_at FROM interceptions "  # noqa: S608
        "WHERE session_id = ? AND ended_at IS NOT NULL AND thread_root_id IS NULL"
        f"{cursor_sql} ORDER BY started_at, id LIMIT ?) "
        "SELECT pt.thread_id, i.* FROM interceptions AS i "
        "JOIN pt ON pt.thread_id = COALESCE(i.thread_root_id, i.id) "
        "WHERE i.session_id = ? AND i.ended_at IS NOT NULL "
        "ORDER BY pt.started_at, pt.thread_id, i.started_at, i.id"
    )
    return conn.execute(sql, (*params, limit or 50, session_id)).fetchall()


# --- models and clients --------------------------------------------------------------------


def _like_prefix(where: list[str], params: list[Any], column: str, prefix: str | None) -> None:
    if prefix:
        # Bound as one parameter (not `? || '%'`) so SQLite's LIKE optimization can use the
        # index; `%` and `_` inside the prefix stay wildcards, as in Postgres.
        where.append(f"{column} LIKE ?")
        params.append(prefix + "%")


def list_models(
    conn: sqlite3.Connection, prefix: str | None, *, authorized: bool, limit: int, offset: int
) -> list[str]:
    """Distinct models of ended interceptions, by prefix, ordered by model."""
    where, params = ["ended_at IS NOT NULL"], list[Any]()
    _like_prefix(where, params, "model", prefix)
    if not authorized:
        where.append("0")
    sql = (
        f"SELECT model FROM interceptions WHERE {' AND '.join(where)} "  # noqa: S608
        "GROUP BY model ORDER BY model LIMIT ? OFFSET ?"
    )
    return [str(r[0]) for r in conn.execute(sql, (*params, limit, offset))]


def list_clients(
    conn: sqlite3.Connection, prefix: str | None, *, authorized: bool, limit: int, offset: int
) -> list[str]:
    """COALESCE(client, 'Unknown') grouped by the raw column; Coder sets no ORDER BY."""
    where, params = ["ended_at IS NOT NULL"], list[Any]()
    _like_prefix(where, params, "COALESCE(client, 'Unknown')", prefix)
    if not authorized:
        where.append("0")
    sql = (
        "SELECT COALESCE(client, 'Unknown') FROM interceptions "  # noqa: S608
        f"WHERE {' AND '.join(where)} GROUP BY client LIMIT ? OFFSET ?"
    )
    return [str(r[0]) for r in conn.execute(sql, (*params, limit, offset))]


# --- query plans ---------------------------------------------------------------------------


def _plan(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[str]:
    return [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def explain_list_queries(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN lines of a typical query of each list endpoint and session detail.

    Turns on `case_sensitive_like` on `conn`, as the serving connections have it (it decides
    whether a prefix LIKE can use an index).
    """
    conn.execute("PRAGMA case_sensitive_like = ON")
    user = conn.execute("SELECT id FROM users ORDER BY username LIMIT 1").fetchone()
    user_id = "" if user is None else str(user[0])
    by_user = search_where(InterceptionSearch(initiator_id=user_id), authorized=True)
    everything = SessionSearch()
    by_model = SessionSearch(model="gpt-4.1")
    by_period = SessionSearch(started_after=0, started_before=2**62)
    page = (100, 0)
    count_by_model = search_where(by_model, authorized=True)
    return {
        "interceptions.count": _plan(
            conn,
            f"SELECT COUNT(*) FROM interceptions AS i "  # noqa: S608
            f"WHERE {by_user.sql}",
            by_user.params,
        ),
        "interceptions.list": _plan(
            conn, _interceptions_sql(by_user, cursor=True), (*by_user.params, 0, "", *page)
        ),
        "sessions.count": _plan(conn, "SELECT COUNT(*) FROM session_summaries AS s WHERE 1", ()),
        "sessions.list": _plan(conn, *_page_plan_args(conn, everything, (0, ""), page)),
        "sessions.list period": _plan(conn, *_page_plan_args(conn, by_period, (0, ""), page)),
        "sessions.count model": _plan(
            conn,
            "SELECT COUNT(*) FROM (SELECT 1 FROM interceptions AS i "  # noqa: S608
            f"WHERE {count_by_model.sql} GROUP BY i.session_id, i.initiator_id)",
            count_by_model.params,
        ),
        "sessions.list model": _plan(conn, *_page_plan_args(conn, by_model, (0, ""), page)),
        "sessions.network": _plan(
            conn,
            f"{_WINDOW_LOGS}SELECT COUNT(DISTINCT log) FROM hit",  # noqa: S608
            ('[["", ""]]',),
        ),
        "sessions.threads": _plan(
            conn,
            "SELECT id FROM interceptions WHERE session_id = ? AND ended_at IS NOT NULL "
            "AND thread_root_id IS NULL ORDER BY started_at, id LIMIT 50",
            ("",),
        ),
        "models": _plan(
            conn,
            "SELECT model FROM interceptions WHERE ended_at IS NOT NULL AND model LIKE ? "
            "GROUP BY model ORDER BY model LIMIT 100",
            ("claude%",),
        ),
        "clients": _plan(
            conn,
            "SELECT COALESCE(client, 'Unknown') FROM interceptions WHERE ended_at IS NOT NULL "
            "AND COALESCE(client, 'Unknown') LIKE ? GROUP BY client LIMIT 100",
            ("C%",),
        ),
    }


def _page_plan_args(
    conn: sqlite3.Connection,
    search: SessionSearch,
    cursor: tuple[int, str],
    page: tuple[int, int],
) -> tuple[str, tuple[Any, ...]]:
    sql, params = _sessions_page_sql(_session_query(conn, search, authorized=True), cursor)
    return sql, (*params, *page)
