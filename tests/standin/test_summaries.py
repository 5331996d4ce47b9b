"""The derived tables (summaries.py): kept equal to a rebuild by the triggers on every kind of
write, built by the bulk seed and on opening an older database, and the period pages they serve
equal to a grouping computed here from the raw rows."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aibridge_graphql.standin import summaries
from aibridge_graphql.standin.records import (
    InterceptionRecord,
    TokenUsageRecord,
    UserPromptRecord,
    UserRecord,
    insert_api_key,
    insert_interceptions,
    insert_providers,
    insert_users,
)
from aibridge_graphql.standin.search import SessionSearch
from aibridge_graphql.standin.seed import (
    ANCHOR,
    Extras,
    generate_interceptions,
    make_users,
    seed_database,
)
from aibridge_graphql.standin.store import (
    count_sessions,
    list_sessions,
    open_database,
    prepare_for_serving,
)
from tests.support.standin_api import api_client, build_database, get_json, serve

ADMIN = "AdminToken-0123456789abcdefghijkl"
DERIVED = {
    "session_summaries": "SELECT * FROM session_summaries ORDER BY session_id, initiator_id",
    "interception_counts": "SELECT * FROM interception_counts WHERE ended > 0 ORDER BY 1",
}


def derived(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """The derived tables' rows, JSON arrays of distinct values put in order."""
    tables = {name: conn.execute(sql).fetchall() for name, sql in DERIVED.items()}
    columns = summaries.COLUMNS
    providers, models = columns.index("providers"), columns.index("models")
    tables["session_summaries"] = [
        tuple(
            sorted(conn.execute("SELECT value FROM json_each(?)", (v,)).fetchall())
            if n in (providers, models)
            else v
            for n, v in enumerate(row)
        )
        for row in tables["session_summaries"]
    ]
    return tables


def rebuilt(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """What a rebuild from the raw rows gives, leaving the database as it was."""
    conn.execute("SAVEPOINT check_rebuild")
    try:
        summaries.rebuild(conn)
        return derived(conn)
    finally:
        conn.execute("ROLLBACK TO check_rebuild")
        conn.execute("RELEASE check_rebuild")


@pytest.fixture
def small(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_database(tmp_path / "standin.db")
    seed_database(conn, 80, 5, ADMIN)
    conn.commit()
    yield conn
    conn.close()


def _one(conn: sqlite3.Connection, sql: str, *params: Any) -> Any:
    return conn.execute(sql, params).fetchone()[0]


def _record(conn: sqlite3.Connection, session_id: str) -> InterceptionRecord:
    """A new in-flight interception continuing `session_id`, by that session's initiator."""
    initiator = _one(
        conn, "SELECT initiator_id FROM interceptions WHERE session_id = ?", session_id
    )
    return InterceptionRecord(
        id="0f0f0f0f-0000-4000-8000-000000000001",
        api_key_id=None,
        initiator_id=initiator,
        provider="anthropic",
        provider_name="anthropic",
        model="claude-new-model",
        client="Brand New Client",
        metadata={"k": 1},
        started_at=ANCHOR - 1,
        ended_at=None,
        client_session_id=session_id,
        thread_parent_id=None,
        thread_root_id=None,
        credential_kind="centralized",
        credential_hint="",
        token_usages=(TokenUsageRecord("0f0f-t1", "r1", 10, 20, 3, 4, None, ANCHOR - 1),),
        user_prompts=(UserPromptRecord("0f0f-p1", "r1", "the newest prompt", None, ANCHOR),),
    )


def _busiest(conn: sqlite3.Connection) -> str:
    return str(
        _one(
            conn,
            "SELECT session_id FROM interceptions WHERE ended_at IS NOT NULL "
            "GROUP BY session_id ORDER BY count(*) DESC, session_id LIMIT 1",
        )
    )


def test_every_write_keeps_the_derived_tables_equal_to_a_rebuild(
    small: sqlite3.Connection,
) -> None:
    conn = small
    session = _busiest(conn)
    new = _record(conn, session)
    first = _one(conn, "SELECT id FROM interceptions WHERE ended_at IS NOT NULL ORDER BY id")
    other_user = _one(conn, "SELECT id FROM users WHERE username = 'auditor'")

    def sql(statement: str, *params: Any) -> Callable[[], object]:
        return lambda: conn.execute(statement, params)

    # (what, whether it changes a derived row, the write)
    writes: list[tuple[str, bool, Callable[[], object]]] = [
        ("insert in flight", False, lambda: insert_interceptions(conn, [new])),
        ("end it", True, sql("UPDATE interceptions SET ended_at = ? WHERE id = ?", ANCHOR, new.id)),
        (
            "a child row of an ended interception",
            True,
            sql(
                "INSERT INTO user_prompts VALUES ('0f0f-p2', ?, 'r', 'later', NULL, ?)",
                first,
                ANCHOR + 9,
            ),
        ),
        (
            "a token count",
            True,
            sql("UPDATE token_usages SET input_tokens = 7 WHERE id = '0f0f-t1'"),
        ),
        ("a model", True, sql("UPDATE interceptions SET model = '@SUM(1,2)' WHERE id = ?", first)),
        (
            "to another session",
            True,
            sql("UPDATE interceptions SET session_id = 'elsewhere' WHERE id = ?", new.id),
        ),
        (
            "an initiator",
            True,
            sql("UPDATE interceptions SET initiator_id = ? WHERE id = ?", other_user, first),
        ),
        (
            "behind the firewall",
            True,
            sql("UPDATE interceptions SET agent_firewall_session_id = 'fw' WHERE id = ?", first),
        ),
        ("delete a prompt", True, sql("DELETE FROM user_prompts WHERE id = '0f0f-p2'")),
        ("delete a token usage", True, sql("DELETE FROM token_usages WHERE id = '0f0f-t1'")),
        (
            "back in flight",
            True,
            sql("UPDATE interceptions SET ended_at = NULL WHERE id = ?", first),
        ),
        ("delete one", True, sql("DELETE FROM interceptions WHERE id = ?", new.id)),
    ]
    for what, changes, write in writes:
        before = derived(conn)
        write()
        after = derived(conn)
        assert after == rebuilt(conn), what
        # A write that should change a derived row and did not would test nothing.
        assert (after != before) == changes, what
    conn.commit()


def test_the_bulk_seed_writes_what_the_triggers_write(tmp_path: Path) -> None:
    seeded = open_database(tmp_path / "bulk.db")
    seed_database(seeded, 300, 9, ADMIN)
    seeded.commit()
    plain = open_database(tmp_path / "plain.db")
    rng = random.Random(9)
    users = make_users(rng, ADMIN)
    insert_users(plain, [u.record for u in users])
    for user in users:
        insert_api_key(plain, user.record.id, user.token, ANCHOR)
    insert_providers(plain, [("anthropic", "anthropic")])
    insert_interceptions(plain, generate_interceptions(rng, users, 300, Extras(9)))
    plain.commit()
    assert derived(seeded) == derived(plain) == rebuilt(plain)
    assert len(derived(seeded)["session_summaries"]) > 30
    # The seed's indexes are back, as the schema has them.
    index_sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
    assert seeded.execute(index_sql).fetchall() == plain.execute(index_sql).fetchall()


@pytest.mark.parametrize("change", ["drop", "old version"])
def test_a_database_without_this_version_gains_it_on_open(tmp_path: Path, change: str) -> None:
    path = tmp_path / "standin.db"
    with contextlib.closing(open_database(path)) as conn:
        seed_database(conn, 120, 3, ADMIN)
        conn.commit()
        expected = derived(conn)
        if change == "drop":  # a database written before the tables existed
            for table in ("session_summaries", "interception_counts", "session_summaries_version"):
                conn.execute(f"DROP TABLE {table}")
            for name in summaries.TRIGGERS:
                conn.execute(f"DROP TRIGGER {name}")
        else:
            conn.execute("DELETE FROM session_summaries WHERE rowid % 2 = 0")
            conn.execute("UPDATE session_summaries_version SET version = version - 1")
        conn.commit()
    with contextlib.closing(open_database(path)) as conn:
        assert derived(conn) == expected
        names = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        assert names >= set(summaries.TRIGGERS)


# --- period pages against a grouping of the raw rows ---------------------------------------


def _grouped(
    db: Path, low: int | None, high: int | None, initiator: str | None = None
) -> list[tuple[Any, ...]]:
    """(session_id, initiator_id, started_at, ended_at, threads, last_active_at) per session
    with ended interceptions started in [low, high], in the list's order."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT session_id, initiator_id, started_at, ended_at, thread_root_id IS NULL, "
            "(SELECT MAX(created_at) FROM user_prompts WHERE interception_id = i.id) "
            "FROM interceptions AS i WHERE ended_at IS NOT NULL"
        ).fetchall()
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for session_id, initiator_id, started, ended, root, prompt_at in rows:
        if initiator is not None and initiator_id != initiator:
            continue
        if (low is None or started >= low) and (high is None or started <= high):
            groups[(session_id, initiator_id)].append((started, ended, root, prompt_at))
    result = []
    for (session_id, initiator_id), members in groups.items():
        first = min(m[0] for m in members)
        prompts = [m[3] for m in members if m[3] is not None]
        result.append(
            (
                session_id,
                initiator_id,
                first,
                max(m[1] for m in members),
                sum(m[2] for m in members),
                max(prompts) if prompts else first,
            )
        )
    return sorted(result, key=lambda r: (r[5], r[0], r[1]), reverse=True)


def _bounds(db: Path) -> list[tuple[int | None, int | None]]:
    """Periods whose bounds fall inside multi-interception sessions (at, just before and just
    after one of their starts), open on either side, and both."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        starts = [
            int(r[0])
            for r in conn.execute(
                "SELECT i.started_at FROM interceptions AS i WHERE i.ended_at IS NOT NULL "
                "AND i.thread_parent_id IS NOT NULL ORDER BY i.id LIMIT 4"
            )
        ]
    periods: list[tuple[int | None, int | None]] = []
    for start in starts:
        for at in (start - 1, start, start + 1):
            periods += [
                (at, None),
                (None, at),
                (at - 3 * 3600 * 10**6, at),
                (at, at + 86_400 * 10**6),
            ]
    return periods


def test_period_pages_equal_a_grouping_of_the_raw_rows(standin_db: Path) -> None:
    prepare_for_serving(standin_db)
    conn = sqlite3.connect(standin_db)
    conn.row_factory = sqlite3.Row
    cut_somewhere = False
    try:
        busiest = conn.execute(
            "SELECT initiator_id FROM interceptions GROUP BY initiator_id ORDER BY count(*) DESC"
        ).fetchone()[0]
        periods = [(low, high, None) for low, high in _bounds(standin_db)]
        periods += [(low, high, busiest) for low, high in _bounds(standin_db)[::3]]
        for low, high, initiator in periods:
            expected = _grouped(standin_db, low, high, initiator)
            search = SessionSearch(initiator_id=initiator, started_after=low, started_before=high)
            found = list_sessions(conn, search, authorized=True, cursor=None, limit=1000, offset=0)
            got = [
                (
                    s.session_id,
                    s.initiator_id,
                    s.started_at,
                    s.ended_at,
                    s.threads,
                    s.last_active_at,
                )
                for s in found
            ]
            assert got == expected, (low, high, initiator)
            assert count_sessions(conn, search, authorized=True) == len(expected)
            # Offsets and the cursor walk the same order.
            assert [
                s.session_id
                for s in list_sessions(
                    conn, search, authorized=True, cursor=None, limit=7, offset=5
                )
            ] == [r[0] for r in expected[5:12]]
            if len(expected) > 3:
                cursor = (expected[2][5], expected[2][0])
                after = list_sessions(
                    conn, search, authorized=True, cursor=cursor, limit=1000, offset=0
                )
                assert [s.session_id for s in after] == [r[0] for r in expected[3:]]
            whole = {
                s.session_id: s
                for s in list_sessions(
                    conn, SessionSearch(), authorized=True, cursor=None, limit=1000, offset=0
                )
            }
            cut_somewhere |= any(whole[s.session_id].started_at != s.started_at for s in found)
    finally:
        conn.close()
    assert cut_somewhere, "no period cut a session: the grouped arm went untested"


def test_an_interception_without_a_user_is_counted_but_on_no_page(tmp_path: Path) -> None:
    owner = UserRecord("6a1b8c0e-0000-4000-8000-000000000001", "root", "r@x", "", "", "owner")
    ghost = "6a1b8c0e-0000-4000-8000-0000000000ff"
    base = InterceptionRecord(
        id="", api_key_id=None, initiator_id=owner.id, provider="openai", provider_name="openai",
        model="gpt-4.1", client=None, metadata=None, started_at=0, ended_at=0,
        client_session_id=None, thread_parent_id=None, thread_root_id=None,
        credential_kind="centralized", credential_hint="",
    )  # fmt: skip
    records = [
        replace(
            base,
            id=f"00000000-0000-4000-8000-{n:012d}",
            initiator_id=ghost if n % 2 else owner.id,
            started_at=n * 1000,
            ended_at=n * 1000 + 5,
        )
        for n in range(1, 9)
    ]
    db = tmp_path / "standin.db"
    build_database(db, [(owner, ADMIN)], records)
    with serve(db) as url, api_client(url, ADMIN) as client:
        listed = get_json(client, "/interceptions", limit=1000)
        assert listed["count"] == 8
        owned = [r.id for r in reversed(records) if r.initiator_id == owner.id]
        assert [r["id"] for r in listed["results"]] == owned
        page = get_json(client, "/interceptions", limit=2, offset=1)["results"]
        assert [r["id"] for r in page] == owned[1:3]
        sessions = get_json(client, "/sessions", limit=1000)
        assert sessions["count"] == 8  # the count has no users join; the page has
        assert [s["id"] for s in sessions["sessions"]] == owned


def test_open_writes_the_schema_only_when_a_trigger_differs(tmp_path: Path) -> None:
    path = tmp_path / "standin.db"
    open_database(path).close()

    def schema_version() -> int:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return int(conn.execute("PRAGMA schema_version").fetchone()[0])

    before = schema_version()
    open_database(path).close()
    assert schema_version() == before  # readers of a served file keep their statements
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TRIGGER interception_counts_insert")
        conn.execute(
            "CREATE TRIGGER session_summaries_stale AFTER INSERT ON users BEGIN SELECT 1; END"
        )
        conn.commit()
    with contextlib.closing(open_database(path)) as conn:
        names = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
    assert names == set(summaries.TRIGGERS)
