"""The synthetic generator: deterministic, exact in size, and realistic in shape."""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aibridge_graphql.standin import catalogue
from aibridge_graphql.standin.seed import _uuid, seed_database
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import TOKEN_PATTERN, read_tokens

ADMIN_TOKEN = "AdminToken-0123456789abcdefghijkl"
COUNT = 1500


def seeded(path: Path, count: int, seed_value: int) -> sqlite3.Connection:
    conn = open_database(path)
    seed_database(conn, count, seed_value, ADMIN_TOKEN)
    conn.commit()
    return conn


def dump(conn: sqlite3.Connection) -> list[str]:
    return list(conn.iterdump())


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    conn = seeded(tmp_path_factory.mktemp("seed") / "standin.db", COUNT, 7)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


def rows(conn: sqlite3.Connection, sql: str) -> list[Any]:
    return conn.execute(sql).fetchall()


def scalar(conn: sqlite3.Connection, sql: str) -> Any:
    return conn.execute(sql).fetchone()[0]


def test_same_seed_value_gives_identical_content(tmp_path: Path) -> None:
    first = seeded(tmp_path / "a.db", 300, 42)
    second = seeded(tmp_path / "b.db", 300, 42)
    other = seeded(tmp_path / "c.db", 300, 43)
    assert dump(first) == dump(second)
    assert dump(first) != dump(other)


def test_exactly_count_interceptions(tmp_path: Path) -> None:
    for count in (0, 1, 37):
        conn = seeded(tmp_path / f"n{count}.db", count, 3)
        assert scalar(conn, "SELECT count(*) FROM interceptions") == count


def test_users_roles_and_tokens(db: sqlite3.Connection) -> None:
    tokens = read_tokens(db)
    roles = [t.role for t in tokens]
    assert (tokens[0].username, tokens[0].token) == ("admin", ADMIN_TOKEN)
    assert (roles.count("owner"), roles.count("auditor")) == (1, 1)
    assert roles.count("member") >= 6
    assert all(TOKEN_PATTERN.fullmatch(t.token) for t in tokens)
    assert len({t.token for t in tokens}) == len(tokens)
    initiators = scalar(db, "SELECT count(DISTINCT initiator_id) FROM interceptions")
    assert initiators == len(tokens)  # owner, auditor and every member start traffic


def test_providers_and_models_are_consistent(db: sqlite3.Connection) -> None:
    configured = {r["name"]: r["type"] for r in rows(db, "SELECT * FROM ai_providers")}
    assert {"anthropic", "openai", "copilot", "azure", "bedrock"} <= set(configured)
    used = rows(db, "SELECT DISTINCT provider, provider_name, model FROM interceptions")
    assert {r["provider"] for r in used} == {"anthropic", "openai", "copilot"}
    for row in used:
        assert row["provider_name"] in configured
        assert catalogue.RUNTIME_PROVIDER[row["provider_name"]] == row["provider"]
        assert row["model"] in catalogue.MODELS[row["provider_name"]]
    # Providers are routed: azure goes through openai, bedrock through anthropic.
    assert {("openai", "azure"), ("anthropic", "bedrock")} <= {
        (r["provider"], r["provider_name"]) for r in used
    }


def test_clients_include_named_ones_and_null(db: sqlite3.Connection) -> None:
    clients = {r[0] for r in rows(db, "SELECT DISTINCT client FROM interceptions")}
    assert None in clients
    assert {"Claude Code", "Codex", "GitHub Copilot (VS Code)", "Cursor"} <= clients
    assert clients - {None} <= {c.name for c in catalogue.CLIENTS}


def test_in_flight_interceptions_exist(db: sqlite3.Connection) -> None:
    assert scalar(db, "SELECT count(*) FROM interceptions WHERE ended_at IS NULL") > 0
    bad = "SELECT count(*) FROM interceptions WHERE ended_at IS NOT NULL AND ended_at < started_at"
    assert scalar(db, bad) == 0


def test_sessions_multi_thread_and_single(db: sqlite3.Connection) -> None:
    multi = scalar(
        db,
        """SELECT count(*) FROM (SELECT session_id FROM interceptions
           WHERE client_session_id IS NOT NULL AND thread_root_id IS NULL
           GROUP BY session_id HAVING count(*) > 1)""",
    )
    assert multi > 0
    singles = rows(
        db,
        "SELECT coalesce(thread_root_id, id) AS root, session_id FROM interceptions "
        "WHERE client_session_id IS NULL",
    )
    assert singles
    # Without a client session id, a child belongs to its thread root's session.
    assert all(r["root"] == r["session_id"] for r in singles)
    mismatched = "SELECT count(*) FROM interceptions WHERE session_id != client_session_id"
    assert scalar(db, mismatched + " AND client_session_id IS NOT NULL") == 0


def test_agentic_loops_link_parent_and_root(db: sqlite3.Connection) -> None:
    children = rows(
        db,
        """SELECT c.started_at AS started, p.ended_at AS parent_ended, p.session_id AS p_session,
                  c.session_id AS c_session, r.thread_root_id AS root_root,
                  coalesce(p.thread_root_id, p.id) AS parent_root, c.thread_root_id AS root,
                  (SELECT count(*) FROM tool_usages t WHERE t.interception_id = p.id) AS calls
           FROM interceptions c
           JOIN interceptions p ON p.id = c.thread_parent_id
           JOIN interceptions r ON r.id = c.thread_root_id""",
    )
    assert len(children) == scalar(
        db, "SELECT count(*) FROM interceptions WHERE thread_parent_id IS NOT NULL"
    )
    assert children
    for child in children:
        assert child["root_root"] is None
        assert child["parent_root"] == child["root"]
        assert child["p_session"] == child["c_session"]
        assert child["started"] > child["parent_ended"]
        assert child["calls"] > 0  # the parent's tool call is what the loop continued


def test_tool_usages_injected_client_and_errors(db: sqlite3.Connection) -> None:
    kinds = rows(
        db,
        """SELECT injected, server_url IS NULL AS no_server, invocation_error IS NOT NULL AS err,
                  count(*) AS n FROM tool_usages GROUP BY 1, 2, 3""",
    )
    seen = {(r["injected"], r["no_server"], r["err"]) for r in kinds}
    # Injected tools (with and without an error), client tools: no server, never an error.
    assert seen == {(1, 0, 0), (1, 0, 1), (0, 1, 0)}
    for (text,) in rows(db, "SELECT input FROM tool_usages LIMIT 200"):
        assert isinstance(json.loads(text), dict)


def test_token_metadata_keys(db: sqlite3.Connection) -> None:
    found: dict[str, set[str]] = {}
    nested = False
    query = """SELECT i.provider, t.metadata FROM token_usages t
               JOIN interceptions i ON i.id = t.interception_id"""
    for provider, metadata in rows(db, query):
        value = json.loads(metadata)
        found.setdefault(provider, set()).update(value)
        nested = nested or any(isinstance(v, dict) for v in value.values())
    assert {
        "cache_read_input",
        "cache_creation_input",
        "cache_ephemeral_5m_input",
        "cache_ephemeral_1h_input",
    } <= found["anthropic"]
    assert "prompt_cached" in found["openai"]
    assert nested


def test_credential_hints_masked_raw_and_empty(db: sqlite3.Connection) -> None:
    hints = [r[0] for r in rows(db, "SELECT credential_hint FROM interceptions")]
    assert "" in hints
    assert any(len(h) <= 15 and "..." in h for h in hints)
    assert any(len(h) > 15 for h in hints)
    kinds = {r[0] for r in rows(db, "SELECT DISTINCT credential_kind FROM interceptions")}
    assert kinds == {"centralized", "byok"}


def test_metadata_prompts_and_thoughts(db: sqlite3.Connection) -> None:
    assert scalar(db, "SELECT count(*) FROM interceptions WHERE metadata IS NULL") > 0
    assert scalar(db, "SELECT count(*) FROM interceptions WHERE metadata = '{}'") > 0
    assert scalar(db, "SELECT count(*) FROM model_thoughts") > 0
    prompts = "SELECT count(*) FROM user_prompts p JOIN interceptions i ON i.id = p.interception_id"
    assert scalar(db, prompts + " WHERE i.thread_root_id IS NULL") > 0
    # Children rows happen inside their interception.
    outside = """SELECT count(*) FROM token_usages t
                 JOIN interceptions i ON i.id = t.interception_id
                 WHERE t.created_at < i.started_at OR t.created_at > i.ended_at"""
    assert scalar(db, outside) == 0


def test_malformed_admin_token_is_refused(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "bad.db")
    with pytest.raises(ValueError, match="10-character id"):
        seed_database(conn, 1, 1, "not-a-token")


def test_ids_are_the_text_of_python_uuid4_from_the_same_bits() -> None:
    ours, theirs = random.Random(11), random.Random(11)
    for _ in range(5000):
        assert _uuid(ours) == str(uuid.UUID(int=theirs.getrandbits(128), version=4))
