"""Appended traffic (standin/traffic.py) as the REST API serves it, in both eras.

Every expectation is computed from the API's answer before the append plus the appended rows
read straight from the database, not from the stand-in's own queries.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from aibridge_graphql.standin.eras import API_ERAS, era
from aibridge_graphql.standin.pricing import LIBRARY_PROVIDER, price_usd
from aibridge_graphql.standin.seed import ANCHOR, DAY
from aibridge_graphql.standin.traffic import (
    MAX_RUNNING,
    CannotGrow,
    Traffic,
    UnknownSession,
    append_interception,
    start_session,
    traffic_rng,
)
from tests.support.live_standin import LiveStandin
from tests.support.standin_api import db_rows, get_json

BOTH_ERAS = pytest.mark.parametrize("api_era", API_ERAS, indirect=True)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
)


@pytest.fixture
def seeded(_seeded_db: Path) -> Path:
    """The seeded database the session's stand-ins copy (never written to)."""
    return _seeded_db


@pytest.fixture
def api(live_standin: LiveStandin, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    """The owner's client of the test's own stand-in, under its era's prefix."""
    prefix = era(live_standin.api_era).prefixes[0]
    headers = {"Coder-Session-Token": tokens["admin"]}
    with httpx.Client(base_url=live_standin.url + prefix, headers=headers, timeout=30) as client:
        yield client


def micros(text: str) -> int:
    """An API timestamp (RFC 3339, UTC) in microseconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def quiet_session(db: Path, *, with_client_session_id: bool) -> str:
    """A seeded session with nothing in flight, its id a plain UUID (no path escaping)."""
    key = "IS NOT NULL" if with_client_session_id else "IS NULL"
    rows = db_rows(
        db,
        "SELECT session_id FROM interceptions GROUP BY session_id "  # noqa: S608
        f"HAVING SUM(ended_at IS NULL) = 0 AND MAX(client_session_id) {key} "
        "AND COUNT(DISTINCT initiator_id) = 1 ORDER BY session_id",
    )
    return next(str(r[0]) for r in rows if UUID.match(str(r[0])))


def detail(api: httpx.Client, session_id: str) -> dict[str, Any]:
    body: dict[str, Any] = get_json(api, f"/sessions/{session_id}", limit=200)
    return body


def listed(api: httpx.Client, session_id: str) -> dict[str, Any]:
    [item] = get_json(api, "/sessions", q=f'session_id:"{session_id}"')["sessions"]
    return dict(item)


def usage_sums(db: Path, interception_id: str) -> dict[str, int]:
    """Token sums of one interception, from the database."""
    [row] = db_rows(
        db,
        "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
        "COALESCE(SUM(cache_read_input_tokens), 0), COALESCE(SUM(cache_write_input_tokens), 0) "
        "FROM token_usages WHERE interception_id = ?",
        interception_id,
    )
    return dict(zip(TOKEN_KEYS, row, strict=True))


def plus(before: dict[str, Any], delta: dict[str, int]) -> dict[str, int]:
    return {key: before[key] + delta[key] for key in TOKEN_KEYS}


def prompt_of(db: Path, interception_id: str) -> tuple[str, int] | None:
    rows = db_rows(
        db,
        "SELECT prompt, created_at FROM user_prompts WHERE interception_id = ? "
        "ORDER BY created_at DESC LIMIT 1",
        interception_id,
    )
    return None if not rows else (str(rows[0][0]), int(rows[0][1]))


def served_ids(db: Path, session_id: str) -> list[str]:
    rows = db_rows(
        db,
        "SELECT id FROM interceptions WHERE session_id = ? AND ended_at IS NOT NULL "
        "ORDER BY started_at, id",
        session_id,
    )
    return [str(r[0]) for r in rows]


@BOTH_ERAS
def test_a_continuation_adds_its_tokens_to_its_thread_and_session(
    live_standin: LiveStandin, api: httpx.Client
) -> None:
    db = live_standin.db
    session_id = quiet_session(db, with_client_session_id=True)
    before, before_item = detail(api, session_id), listed(api, session_id)

    added = live_standin.traffic.append_interception(session_id, thread="continue")

    assert (added.session_id, added.new_thread, added.new_session) == (session_id, False, False)
    assert added.ended_at is not None
    assert not added.in_flight
    delta = usage_sums(db, added.interception_id)
    assert delta["input_tokens"] > 0
    assert prompt_of(db, added.interception_id) is None  # a tool result, not a user prompt
    after, after_item = detail(api, session_id), listed(api, session_id)
    assert len(after["threads"]) == len(before["threads"]) == before_item["threads"]
    assert after_item["threads"] == before_item["threads"]
    # The thread it continues: the latest one, which now ends with it.
    grown = next(t for t in after["threads"] if t["id"] == added.thread_id)
    old = next(t for t in before["threads"] if t["id"] == added.thread_id)
    assert plus(old["token_usage"], delta) == {k: grown["token_usage"][k] for k in TOKEN_KEYS}
    assert micros(grown["ended_at"]) == added.ended_at
    expected = plus(before["token_usage_summary"], delta)
    assert {k: after["token_usage_summary"][k] for k in TOKEN_KEYS} == expected
    assert after_item["token_usage_summary"] == expected
    assert micros(after_item["ended_at"]) == added.ended_at > micros(before_item["ended_at"])
    # Last activity is the latest prompt: a continuation sends none.
    assert after_item["last_active_at"] == before_item["last_active_at"]
    assert added.interception_id in served_ids(db, session_id)


@BOTH_ERAS
def test_a_new_thread_brings_its_prompt_and_leads_the_session_list(
    live_standin: LiveStandin, api: httpx.Client
) -> None:
    db = live_standin.db
    session_id = quiet_session(db, with_client_session_id=True)
    before = listed(api, session_id)

    added = live_standin.traffic.append_interception(session_id, thread="new")

    assert added.new_thread
    assert added.thread_id == added.interception_id
    prompt = prompt_of(db, added.interception_id)
    assert prompt is not None
    text, prompted_at = prompt
    after = listed(api, session_id)
    assert after["threads"] == before["threads"] + 1
    assert after["last_prompt"] == text
    assert micros(after["last_active_at"]) == prompted_at > micros(before["last_active_at"])
    assert after["token_usage_summary"] == plus(
        before["token_usage_summary"], usage_sums(db, added.interception_id)
    )
    # Most recently active first: it leads the list now.
    assert get_json(api, "/sessions", limit=1)["sessions"][0]["id"] == session_id
    thread = next(t for t in detail(api, session_id)["threads"] if t["id"] == added.thread_id)
    assert thread["prompt"] == text
    assert micros(thread["started_at"]) == added.started_at


@BOTH_ERAS
def test_a_started_session_appears_first_and_counts(
    live_standin: LiveStandin, api: httpx.Client
) -> None:
    count = get_json(api, "/sessions")["count"]

    started = live_standin.traffic.start_session(
        "alice", client="Claude Code", provider_name="anthropic"
    )

    assert started.new_session
    assert started.thread_id == started.interception_id
    body = get_json(api, "/sessions", limit=1)
    assert body["count"] == count + 1
    [item] = body["sessions"]
    assert item["id"] == started.session_id
    assert item["initiator"]["username"] == "alice"
    assert (item["client"], item["providers"], item["threads"]) == ("Claude Code", ["anthropic"], 1)
    assert micros(item["started_at"]) == started.started_at
    assert item["token_usage_summary"] == usage_sums(live_standin.db, started.interception_id)
    [thread] = detail(api, started.session_id)["threads"]
    assert thread["id"] == started.interception_id
    assert "prompt" in thread


@BOTH_ERAS
def test_a_request_in_flight_is_served_once_its_session_ends(
    live_standin: LiveStandin, api: httpx.Client
) -> None:
    traffic = live_standin.traffic
    count = get_json(api, "/sessions")["count"]
    started = traffic.start_session("bogdan", client="Codex", in_flight=True)
    assert started.in_flight
    assert started.ended_at is None
    # In flight: Coder serves no interception without an end, so no session either.
    assert get_json(api, "/sessions")["count"] == count
    gone = api.get(f"/sessions/{started.session_id}")
    assert (gone.status_code, gone.json()["message"]) == (404, "Session not found.")
    assert started.session_id in traffic.running_sessions()

    ended = traffic.end_session(started.session_id)

    assert ended.finished == (started.interception_id,)
    assert ended.ended_at is not None
    assert ended.ended_at > started.started_at
    assert started.session_id not in traffic.running_sessions()
    item = listed(api, started.session_id)
    assert get_json(api, "/sessions")["count"] == count + 1
    assert micros(item["ended_at"]) == ended.ended_at


@BOTH_ERAS
def test_ending_a_running_seeded_session_serves_its_last_request(
    live_standin: LiveStandin, api: httpx.Client
) -> None:
    traffic = live_standin.traffic
    running = [s for s in traffic.running_sessions() if UUID.match(s)]
    assert running, "the seed has sessions still running at its anchor"
    session_id = running[0]
    [in_flight] = db_rows(
        live_standin.db,
        "SELECT id FROM interceptions WHERE session_id = ? AND ended_at IS NULL",
        session_id,
    )
    served = served_ids(live_standin.db, session_id)

    ended = traffic.end_session(session_id)

    assert ended.finished == (in_flight[0],)
    assert served_ids(live_standin.db, session_id) == [*served, in_flight[0]]
    item = listed(api, session_id)
    assert micros(item["ended_at"]) == ended.ended_at
    # Ended: the generator leaves it alone from now on.
    settled = detail(api, session_id)
    traffic.run(8)
    assert session_id not in traffic.running_sessions()
    assert detail(api, session_id) == settled


@pytest.mark.parametrize("api_era", ["sessions"], indirect=True)
def test_the_sessions_era_lists_the_appended_interception_with_its_rows(
    live_standin: LiveStandin, api: httpx.Client
) -> None:
    count = get_json(api, "/interceptions")["count"]
    started = live_standin.traffic.start_session("chen", client="Cursor", provider_name="openai")
    added = live_standin.traffic.append_interception(started.session_id, thread="continue")

    body = get_json(api, "/interceptions", limit=2)
    assert body["count"] == count + 2
    newest, root = body["results"]  # newest first
    assert (newest["id"], root["id"]) == (added.interception_id, started.interception_id)
    assert newest["initiator"]["username"] == root["initiator"]["username"] == "chen"
    assert (newest["client"], newest["provider_name"]) == ("Cursor", "openai")
    db = live_standin.db
    for item in (newest, root):
        sums = usage_sums(db, item["id"])
        assert sum(t["input_tokens"] for t in item["token_usages"]) == sums["input_tokens"]
        assert sum(t["output_tokens"] for t in item["token_usages"]) == sums["output_tokens"]
        assert micros(item["started_at"]) < micros(item["ended_at"])
    assert len(root["user_prompts"]) == 1
    assert newest["user_prompts"] == []


@pytest.mark.parametrize("api_era", ["ai-gateway"], indirect=True)
def test_appended_usage_is_priced_into_the_initiators_spend(
    live_standin: LiveStandin, tokens: dict[str, str]
) -> None:
    spend_url = live_standin.url + "/api/v2/users/alice/ai/spend"
    headers = {"Coder-Session-Token": tokens["admin"]}
    before = httpx.get(spend_url, headers=headers, timeout=30).json()

    traffic = live_standin.traffic
    started = traffic.start_session("alice", client="Claude Code", provider_name="anthropic")
    added = traffic.append_interception(started.session_id, thread="continue")

    after = httpx.get(spend_url, headers=headers, timeout=30).json()
    cost = _library_cost(live_standin.db, [started.interception_id, added.interception_id])
    assert cost > 0
    assert after["current_spend_micros"] - before["current_spend_micros"] == cost
    # The simulated clock continues the seeded month: the period is still November 2026.
    assert after["period_start"] == before["period_start"] == "2026-11-01T00:00:00Z"
    assert added.ended_at is not None
    assert added.ended_at < ANCHOR + 2 * DAY


@pytest.mark.parametrize("api_era", ["ai-gateway"], indirect=True)
def test_the_spend_period_follows_usage_appended_into_a_new_month(
    live_standin: LiveStandin, tokens: dict[str, str]
) -> None:
    """The budget clock is the latest priced usage, read per request (not once at start-up)."""
    spend_url = live_standin.url + "/api/v2/users/alice/ai/spend"
    headers = {"Coder-Session-Token": tokens["admin"]}
    november = httpx.get(spend_url, headers=headers, timeout=30).json()
    assert november["period_start"] == "2026-11-01T00:00:00Z"
    december = int(datetime(2026, 12, 2, tzinfo=UTC).timestamp()) * 1_000_000
    with contextlib.closing(sqlite3.connect(live_standin.db)) as conn:
        started = start_session(
            conn, traffic_rng(3, 0), now=december, user="alice", client="Claude Code",
            provider_name="anthropic",
        )  # fmt: skip
        conn.commit()

    spend = httpx.get(spend_url, headers=headers, timeout=30).json()
    assert (spend["period_start"], spend["period_end"]) == (
        "2026-12-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
    )
    # December's spend so far: this one session.
    assert spend["current_spend_micros"] == _library_cost(
        live_standin.db, [started.interception_id]
    )


def _library_cost(db: Path, interception_ids: list[str]) -> int:
    """The interceptions' token usages priced by the library's own full calculation."""
    total = 0
    for interception_id in interception_ids:
        rows = db_rows(
            db,
            "SELECT i.provider_name, i.model, t.input_tokens, t.output_tokens, "
            "t.cache_read_input_tokens, t.cache_write_input_tokens, t.created_at "
            "FROM token_usages AS t JOIN interceptions AS i ON i.id = t.interception_id "
            "WHERE i.id = ?",
            interception_id,
        )
        for provider_name, model, i, o, cr, cw, at in rows:
            provider = LIBRARY_PROVIDER[provider_name]
            assert provider is not None
            usd = price_usd(
                provider, model, input_tokens=i, output_tokens=o, cache_read_tokens=cr,
                cache_write_tokens=cw, at=datetime.fromtimestamp(at / 1_000_000, UTC),
            )  # fmt: skip
            micro = (usd or Decimal(0)) * 1_000_000
            total += int(micro.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return total


@pytest.mark.parametrize("api_era", ["ai-gateway"], indirect=True)
def test_a_session_behind_the_firewall_logs_the_new_requests_calls(
    live_standin: LiveStandin, api: httpx.Client
) -> None:
    db = live_standin.db
    rows = db_rows(
        db,
        "SELECT session_id, MAX(agent_firewall_session_id) FROM interceptions "
        "WHERE client_session_id IS NOT NULL GROUP BY session_id "
        "HAVING SUM(ended_at IS NULL) = 0 AND MAX(agent_firewall_session_id) IS NOT NULL "
        "ORDER BY session_id",
    )
    session_id, firewall_id = next((s, f) for s, f in rows if UUID.match(s))
    before = listed(api, session_id)["network_calls"]

    added = live_standin.traffic.append_interception(session_id, thread="new")

    [(mark,)] = db_rows(
        db, "SELECT agent_firewall_sequence_number FROM interceptions WHERE id = ?",
        added.interception_id,
    )  # fmt: skip
    window = db_rows(
        db,
        "SELECT allowed FROM boundary_logs WHERE session_id = ? AND sequence_number > ?",
        firewall_id,
        mark,
    )
    after = listed(api, session_id)["network_calls"]
    assert after["total"] == before["total"] + len(window)
    assert after["blocked"] == before["blocked"] + sum(1 for (allowed,) in window if not allowed)
    thread = next(t for t in detail(api, session_id)["threads"] if t["id"] == added.thread_id)
    assert thread["agent_firewall_session_id"] == firewall_id
    assert thread["agent_firewall_sequence_number"] == mark


@BOTH_ERAS
def test_ticks_serve_what_they_finish(live_standin: LiveStandin, api: httpx.Client) -> None:
    db = live_standin.db
    served_before = _served_sessions(db)
    before = get_json(api, "/sessions")["count"]
    assert before == len(served_before)
    reports = live_standin.traffic.run(25)

    started = {a.session_id for r in reports for a in r.started}
    finished = {i for r in reports for i in r.finished}
    assert started, "25 ticks start sessions"
    assert finished, "25 ticks end requests"
    served = _served_sessions(db)
    # New in the list: the started sessions whose first request ended, and seeded sessions
    # whose only request was still in flight.
    assert started & served
    assert get_json(api, "/sessions")["count"] == len(served) > before
    assert served >= served_before
    for interception_id in finished:
        [(session_id, ended_at)] = db_rows(
            db, "SELECT session_id, ended_at FROM interceptions WHERE id = ?", interception_id
        )
        assert ended_at is not None
        item = listed(api, session_id)
        assert micros(item["ended_at"]) >= ended_at
    # Simulated time keeps the tick's pace, 5 s a tick (a seeded request that ends later than
    # that, having recorded more, pushes it on).
    ats = [r.at for r in reports]
    steps = sorted(b - a for a, b in itertools.pairwise(ats))
    assert steps[0] >= 5_000_000
    assert steps[len(steps) // 2] == 5_000_000


def _served_sessions(db: Path) -> set[str]:
    """Sessions with an ended interception (one initiator each in these databases)."""
    rows = db_rows(db, "SELECT DISTINCT session_id FROM interceptions WHERE ended_at IS NOT NULL")
    return {str(r[0]) for r in rows}


def _copy(seeded: Path, path: Path) -> Path:
    shutil.copyfile(seeded, path)
    return path


def _content(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(conn.iterdump())


def test_the_same_seed_value_appends_the_same_records(seeded: Path, tmp_path: Path) -> None:
    first, second, other = (_copy(seeded, tmp_path / f"{n}.db") for n in "abc")
    results = []
    for db, seed_value in ((first, 5), (second, 5), (other, 6)):
        with Traffic(db, seed_value) as traffic:
            started = traffic.start_session("dara")
            appended = traffic.append_interception(started.session_id, thread="continue")
            traffic.run(10)
            results.append((started, appended))
    assert results[0] == results[1] != results[2]
    assert _content(first) == _content(second) != _content(other)
    assert _content(first) != _content(seeded)


def test_steps_continue_across_instances_and_the_seed_stays_as_it_was(
    seeded: Path, tmp_path: Path
) -> None:
    """Two runs of 3 steps are the run of 6, whichever process makes them; the seeded rows are
    left untouched (appends only add, ends only set `ended_at` of in-flight rows)."""
    whole, halves = (_copy(seeded, tmp_path / f"{n}.db") for n in ("whole", "halves"))
    with Traffic(whole, 2) as traffic:
        traffic.run(6)
        assert traffic.next_step == 6
    for _ in range(2):
        with Traffic(halves, 2) as traffic:
            traffic.run(3)
    assert _content(whole) == _content(halves)
    original = set(_content(seeded))
    kept = set(_content(whole))
    gone = original - kept
    # Derived per-session and per-user rows (standin/summaries.py) follow the appends.
    derived = ('INSERT INTO "session_summaries"', 'INSERT INTO "interception_counts"')
    gone = {line for line in gone if not line.startswith(derived)}
    assert {line for line in gone if not line.startswith('INSERT INTO "interceptions"')} == set()
    in_flight = db_rows(seeded, "SELECT COUNT(*) FROM interceptions WHERE ended_at IS NULL")
    assert len(gone) <= in_flight[0][0]


def test_bad_requests_say_what_is_wrong(seeded: Path, tmp_path: Path) -> None:
    db = _copy(seeded, tmp_path / "bad.db")
    scripted = quiet_session(db, with_client_session_id=False)
    with Traffic(db) as traffic:
        with pytest.raises(UnknownSession, match="no session with id 'nope'"):
            traffic.append_interception("nope")
        with pytest.raises(UnknownSession):
            traffic.end_session("nope")
        with pytest.raises(CannotGrow, match="no client session id"):
            traffic.append_interception(scripted, thread="new")
        with pytest.raises(ValueError, match="thread must be one of"):
            traffic.append_interception(scripted, thread="sideways")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="no user with id or username 'zed'"):
            traffic.start_session("zed")
        with pytest.raises(ValueError, match="unknown provider name 'gemini'"):
            traffic.start_session("alice", provider_name="gemini")
        taken = quiet_session(db, with_client_session_id=True)
        with pytest.raises(ValueError, match="exists"):
            traffic.start_session("alice", client_session_id=taken)
        # A failed step writes nothing and takes no step.
        assert traffic.next_step == 0
    with pytest.raises(ValueError, match="not a stand-in database"):
        Traffic(tmp_path / "empty.db")


def test_the_functions_take_a_connection_and_leave_the_commit_to_the_caller(
    seeded: Path, tmp_path: Path
) -> None:
    db = _copy(seeded, tmp_path / "raw.db")
    session_id = quiet_session(db, with_client_session_id=True)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        added = append_interception(conn, traffic_rng(9, 0), session_id, now=ANCHOR + DAY)
        assert added.started_at > ANCHOR + DAY
        assert conn.in_transaction
        conn.rollback()
    assert not db_rows(db, "SELECT 1 FROM interceptions WHERE id = ?", added.interception_id)


def test_a_refused_request_leaves_the_running_session_as_it_was(
    seeded: Path, tmp_path: Path
) -> None:
    db = _copy(seeded, tmp_path / "refused.db")
    with Traffic(db) as traffic:
        # A script: no client tools, no session id; its request is in flight.
        running = traffic.start_session("farah", client=None, in_flight=True)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        with pytest.raises(CannotGrow, match="cannot grow"):
            append_interception(conn, traffic_rng(1, 99), running.session_id, now=ANCHOR + DAY)
        still = conn.execute(
            "SELECT ended_at FROM interceptions WHERE id = ?", (running.interception_id,)
        ).fetchone()
        assert still == (None,)
        assert not conn.in_transaction  # nothing was written


def test_every_session_a_tick_ends_had_a_request_to_end(seeded: Path, tmp_path: Path) -> None:
    db = _copy(seeded, tmp_path / "ends.db")
    with Traffic(db, 11) as traffic:
        reports = traffic.run(40)
    ended = [e for r in reports for e in r.ended]
    assert ended
    for report in reports:
        for end in report.ended:
            assert end.finished, end
            assert end.session_id not in {a.session_id for a in report.extended}
    assert len({e.session_id for e in ended}) == len(ended)  # an ended session stays ended


def test_record_shape_is_the_seeds(seeded: Path, tmp_path: Path) -> None:
    """Appended records look like seeded ones: a root's prompt, provider names routed through
    their runtime provider, tokens in the seed's ranges, thread links."""
    db = _copy(seeded, tmp_path / "shape.db")
    with Traffic(db, 4) as traffic:
        for _ in range(40):
            traffic.tick()
            assert len(traffic.running_sessions()) <= MAX_RUNNING
    original = {row[0] for row in db_rows(seeded, "SELECT id FROM interceptions")}
    rows = db_rows(
        db,
        "SELECT i.id, i.provider, i.provider_name, i.thread_root_id, i.thread_parent_id, "
        "(SELECT COUNT(*) FROM user_prompts WHERE interception_id = i.id), "
        "(SELECT MIN(input_tokens) FROM token_usages WHERE interception_id = i.id) "
        "FROM interceptions AS i",
    )
    appended = [row for row in rows if row[0] not in original]
    assert len(appended) > 20
    runtime = {"anthropic": "anthropic", "bedrock": "anthropic", "copilot": "copilot"}
    for _, provider, name, root, parent, prompts, inputs in appended:
        assert provider == runtime.get(name, "openai")
        assert (root is None) == (parent is None)
        assert prompts == (1 if root is None else 0)
        assert 800 <= inputs <= 60_000
