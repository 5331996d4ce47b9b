"""Live traffic while serving (`--live`, create_app(live=...)) and appends from another process
(`standin simulate`, a `Traffic` on the same file) reaching a stand-in that runs as a process."""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from aibridge_graphql.cli import main
from aibridge_graphql.standin import cli as standin_cli
from aibridge_graphql.standin import live
from aibridge_graphql.standin.eras import ApiEra, era
from aibridge_graphql.standin.live import LiveOptions
from aibridge_graphql.standin.traffic import Traffic
from tests.support.live_standin import live_copy, standin_process
from tests.support.standin_api import db_rows

DEADLINE = 30.0


@pytest.fixture
def seeded(_seeded_db: Path) -> Path:
    """The seeded database of the test session (copied, never written to)."""
    return _seeded_db


def sessions(url: str, api_era: ApiEra, token: str) -> dict[str, Any]:
    prefix = era(api_era).prefixes[0]
    response = httpx.get(
        f"{url}{prefix}/sessions",
        params={"limit": 1000},
        headers={"Coder-Session-Token": token},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def eventually(check: Callable[[], bool], what: str) -> None:
    """Poll `check` until true, within DEADLINE (a short pause between polls only)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not {what} within {DEADLINE:g}s")


def served_count(db: Path) -> int:
    """Sessions with an ended interception, straight from the database."""
    rows = db_rows(
        db,
        "SELECT COUNT(*) FROM (SELECT 1 FROM interceptions WHERE ended_at IS NOT NULL "
        "GROUP BY session_id, initiator_id)",
    )
    return int(rows[0][0])


def steps_taken(db: Path, seed_value: int) -> int:
    rows = db_rows(db, "SELECT next_step FROM traffic_state WHERE seed_value = ?", seed_value)
    return int(rows[0][0]) if rows else 0


@pytest.mark.parametrize("api_era", ["sessions", "ai-gateway"])
def test_live_mode_grows_the_served_data_while_serving(
    seeded: Path, tmp_path: Path, tokens: dict[str, str], api_era: ApiEra
) -> None:
    options = LiveOptions(seed_value=4, interval=0.05)
    with live_copy(seeded, tmp_path, api_era, live=options) as standin:
        first = sessions(standin.url, api_era, tokens["admin"])
        eventually(
            lambda: sessions(standin.url, api_era, tokens["admin"]) != first,
            "a change in the session list",
        )
        eventually(lambda: steps_taken(standin.db, 4) >= 3, "three ticks")
        eventually(
            lambda: (
                sessions(standin.url, api_era, tokens["admin"])["count"] == served_count(standin.db)
            ),
            "the served count matching the database",
        )


def test_live_ticks_are_those_of_the_seed_value(seeded: Path, tmp_path: Path) -> None:
    """What a live server appended is what `Traffic` appends, step for step, on a copy."""
    (tmp_path / "served").mkdir()
    with live_copy(seeded, tmp_path / "served", live=LiveOptions(8, 0.05)) as standin:
        eventually(lambda: steps_taken(standin.db, 8) >= 4, "four ticks")
    steps = steps_taken(standin.db, 8)
    replay = tmp_path / "replay.db"
    shutil.copyfile(seeded, replay)
    with Traffic(replay, 8, tick_seconds=0.05) as traffic:
        traffic.run(steps)
    assert records(standin.db) == records(replay)
    assert records(replay) != records(seeded)


# The tables traffic writes (serving adds the planner's statistics, which differ).
TRAFFIC_TABLES = (
    "interceptions",
    "token_usages",
    "user_prompts",
    "tool_usages",
    "model_thoughts",
    "boundary_logs",
    "traffic_state",
)


def records(db: Path) -> list[str]:
    """The rows of the tables traffic writes, as SQL."""
    prefixes = tuple(f'INSERT INTO "{table}"' for table in TRAFFIC_TABLES)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [line for line in conn.iterdump() if line.startswith(prefixes)]


def test_simulate_reaches_a_running_standin_process(
    seeded: Path, tmp_path: Path, tokens: dict[str, str]
) -> None:
    db = tmp_path / "shared.db"
    shutil.copyfile(seeded, db)
    with standin_process(db, "ai-gateway") as running:
        before = sessions(running.url, "ai-gateway", tokens["admin"])
        result = CliRunner().invoke(
            main, ["standin", "simulate", "--db", str(db), "--ticks", "12", "--seed-value", "3"]
        )
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].startswith("step 0: ")
        assert lines[11].startswith("step 11: ")
        assert lines[-1].startswith(f"Appended 12 tick(s) to {db}: ")
        # The running server reads each request afresh: no restart, no stale snapshot.
        after = sessions(running.url, "ai-gateway", tokens["admin"])
        assert after["count"] == served_count(db) > before["count"]
        # Again: the steps continue (no clash with the ids of the first run).
        again = CliRunner().invoke(
            main, ["standin", "simulate", "--db", str(db), "--ticks", "2", "--seed-value", "3"]
        )
        assert again.exit_code == 0, again.output
        assert again.output.startswith("step 12: ")


def test_traffic_appends_to_a_standin_process_and_it_serves_them_at_once(
    seeded: Path, tmp_path: Path, tokens: dict[str, str]
) -> None:
    db = tmp_path / "process.db"
    shutil.copyfile(seeded, db)
    with standin_process(db, "sessions") as running, Traffic(db) as traffic:
        count = sessions(running.url, "sessions", tokens["admin"])["count"]
        started = traffic.start_session("emeka", client="Zed")
        listed = sessions(running.url, "sessions", tokens["admin"])
        assert listed["count"] == count + 1
        assert listed["sessions"][0]["id"] == started.session_id
        traffic.append_interception(started.session_id, thread="continue")
        [item] = [
            s
            for s in sessions(running.url, "sessions", tokens["admin"])["sessions"]
            if s["id"] == started.session_id
        ]
        assert item["threads"] == 1
        output_tokens = db_rows(
            db,
            "SELECT SUM(output_tokens) FROM token_usages WHERE interception_id IN "
            "(SELECT id FROM interceptions WHERE session_id = ?)",
            started.session_id,
        )[0][0]
        assert item["token_usage_summary"]["output_tokens"] == output_tokens


def test_standin_live_process_says_so_and_appends(
    seeded: Path, tmp_path: Path, tokens: dict[str, str]
) -> None:
    db = tmp_path / "live.db"
    shutil.copyfile(seeded, db)
    args = ("--live", "--live-interval", "0.1", "--seed-value", "6")
    with standin_process(db, "sessions", *args) as running:
        line = running.output.wait_for(re.compile(r"^Traffic: "))
        assert "every 0.1 s (seed value 6" in line.string
        first = served_count(db)
        eventually(lambda: served_count(db) > first, "a session more")
        eventually(
            lambda: sessions(running.url, "sessions", tokens["admin"])["count"] == served_count(db),
            "the served count matching the database",
        )


def test_simulate_and_live_options_say_what_is_wrong(seeded: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["standin", "simulate", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    unseeded = runner.invoke(main, ["standin", "simulate", "--db", str(empty)])
    assert unseeded.exit_code == 1
    assert "has no users" in unseeded.output
    for args in (["--ticks", "0"], ["--tick-seconds", "0"]):
        bad = runner.invoke(main, ["standin", "simulate", "--db", str(seeded), *args])
        assert bad.exit_code == 2, bad.output
    lone = runner.invoke(main, ["standin", "--live-interval", "2", "--db", str(empty)])
    assert lone.exit_code == 2
    assert "--live-interval needs --live" in lone.output
    slow = runner.invoke(main, ["standin", "--live", "--live-interval", "0"])
    assert slow.exit_code == 2
    assert "--live-interval" in slow.output
    helped = runner.invoke(main, ["standin", "simulate", "--help"])
    assert helped.exit_code == 0
    for option in ("--db", "--ticks", "--seed-value", "--tick-seconds"):
        assert option in helped.output
    assert "--live" in runner.invoke(main, ["standin", "--help"]).output


def test_the_cli_defaults_are_the_live_modules() -> None:
    assert standin_cli.DEFAULT_LIVE_INTERVAL == live.DEFAULT_INTERVAL
    assert standin_cli.MIN_LIVE_INTERVAL == live.MIN_INTERVAL
    with pytest.raises(ValueError, match="at least"):
        LiveOptions(interval=0.01)
