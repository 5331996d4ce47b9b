"""`aibridge-graphql standin`: help, errors, tokens, import, and serving as a real process."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from aibridge_graphql.cli import main
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.standin.tokens import TOKEN_PATTERN, read_tokens

CLI = str(Path(sys.executable).parent / "aibridge-graphql")
ADMIN_TOKEN = "AdminToken-0123456789abcdefghijkl"
DEADLINE = 30.0
LISTENING = re.compile(
    r"Stand-in listening on (http://127\.0\.0\.1:\d+)/api/v2/(ai-gateway|aibridge)$"
)


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["standin", *args], input=stdin)


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database prepared the way the serving command prepares it."""
    from aibridge_graphql.standin.cli import prepare

    path = tmp_path_factory.mktemp("cli") / "standin.db"
    conn = open_database(path)
    prepare(conn, 50, 5, ADMIN_TOKEN)
    conn.close()
    return path


@pytest.mark.parametrize("command", [[], ["tokens"], ["import"], ["seed"]])
def test_help_on_every_command(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "--db" in result.output
    if command == ["import"]:
        assert "its own session and thread root" in result.output
    if command == []:
        for option in ("--host", "--port", "--seed", "--seed-value", "--admin-token"):
            assert option in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "Invalid value for '--port'"),
        (["--seed", "-1"], "Invalid value for '--seed'"),
        (["--seed-value", "x"], "Invalid value for '--seed-value'"),
        (["--admin-token", "short"], "10-character id"),
        (["--db", "/nonexistent/dir/x.db"], "does not exist"),
        (["tokens", "--db", "/nonexistent.db"], "does not exist"),
    ],
)
def test_bad_values_are_usage_errors(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not sqlite " * 100)
    result = run("tokens", "--db", str(path))
    assert result.exit_code == 1
    assert "file is not a database" in result.stderr


def test_tokens_lists_every_user(seeded_db: Path) -> None:
    result = run("tokens", "--db", str(seeded_db))
    assert result.exit_code == 0
    header, *lines = result.output.splitlines()
    assert header.split() == ["USERNAME", "ROLE", "TOKEN"]
    users = [line.split() for line in lines]
    assert users[0] == ["admin", "owner", ADMIN_TOKEN]
    assert users[1][:2] == ["auditor", "auditor"]
    assert len(users) >= 8
    assert all(role == "member" for _, role, _ in users[2:])
    assert all(TOKEN_PATTERN.fullmatch(token) for _, _, token in users)


def _document(iid: str) -> str:
    item: dict[str, object] = {
        "id": iid,
        "initiator": {"id": "7d0c9f43-65c9-4a55-9e1f-3a1a6f0f6a11", "username": "zoe"},
        "provider": "anthropic",
        "provider_name": "anthropic",
        "model": "claude-sonnet-4-5",
        "client": None,
        "metadata": None,
        "started_at": "2026-03-01T10:00:00Z",
        "ended_at": "2026-03-01T10:00:03Z",
        "token_usages": [],
        "user_prompts": [],
        "tool_usages": [],
    }
    return json.dumps({"count": 1, "results": [item]})


def test_seed_writes_what_serving_would_seed_and_refuses_a_used_file(
    tmp_path: Path, seeded_db: Path
) -> None:
    path = tmp_path / "seeded.db"
    result = run("seed", "--db", str(path), "--count", "50", "--seed-value", "5",
                 "--admin-token", ADMIN_TOKEN)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        rf"Seeded 50 interceptions \(\d+ sessions\) into {path} in \S+s\.\n", result.output
    )
    query = "SELECT * FROM interceptions ORDER BY rowid"
    with (
        contextlib.closing(open_database(path)) as ours,
        contextlib.closing(open_database(seeded_db)) as served,
    ):
        assert ours.execute(query).fetchall() == served.execute(query).fetchall()
    again = run("seed", "--db", str(path))
    assert again.exit_code == 1
    assert "already has data" in again.stderr


def test_import_loads_and_reports(tmp_path: Path) -> None:
    db = tmp_path / "imported.db"
    source = tmp_path / "interceptions.json"
    source.write_text(_document("11111111-1111-4111-8111-111111111111"))
    result = run("import", str(source), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "Imported 1 interceptions" in result.output
    assert "Created 1 member(s): zoe." in result.output
    from_stdin = run(
        "import", "-", "--db", str(db), stdin=_document("2" * 8 + "-2222-4222-8222-" + "2" * 12)
    )
    assert from_stdin.exit_code == 0, from_stdin.output


def test_import_refuses_bad_records_and_loads_nothing(tmp_path: Path) -> None:
    db = tmp_path / "refused.db"
    source = tmp_path / "bad.json"
    good = json.loads(_document("11111111-1111-4111-8111-111111111111"))["results"][0]
    bad = {**good, "id": "nope", "model": 4}
    source.write_text(json.dumps([good, bad]))
    result = run("import", str(source), "--db", str(db))
    assert result.exit_code == 1
    assert "record 1 (id nope): id: " in result.stderr
    assert "record 1 (id nope): model: Input should be a valid string" in result.stderr
    assert "2 invalid record(s); nothing was imported" in result.stderr
    conn = open_database(db)
    assert conn.execute("SELECT count(*) FROM interceptions").fetchone()[0] == 0


def test_import_of_a_missing_file(tmp_path: Path) -> None:
    result = run("import", str(tmp_path / "missing.json"), "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 2
    assert "Invalid value for 'FILE'" in result.stderr
    assert "No such file or directory" in result.stderr


def _read_lines(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _wait_for_url(lines: queue.Queue[str | None]) -> tuple[str, list[str]]:
    """The base URL from the banner, and the lines read, within DEADLINE."""
    seen: list[str] = []
    deadline = time.monotonic() + DEADLINE
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if match := LISTENING.search(line):
            return match.group(1), seen
    raise AssertionError("no listening line; output:\n" + "\n".join(seen))


def test_serves_on_port_zero_and_stops(tmp_path: Path) -> None:
    db = tmp_path / "served.db"
    # The sessions era: the round trip imports a `GET /interceptions` response.
    args = ["standin", "--port", "0", "--db", str(db), "--seed", "40", "--api-era", "sessions"]
    process = subprocess.Popen(
        [CLI, *args, "--admin-token", ADMIN_TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process, lines), daemon=True).start()
    try:
        base, _ = _wait_for_url(lines)
        banner = [lines.get(timeout=DEADLINE) for _ in range(3)]
        assert banner[0] == "API era: sessions"
        assert banner[1] == f"Database: {db} (seeded now)"
        assert banner[2] == f"Admin token (admin, owner): {ADMIN_TOKEN}"
        headers = {"Coder-Session-Token": ADMIN_TOKEN}
        params = {"limit": "1000"}
        response = httpx.get(
            f"{base}/api/v2/aibridge/interceptions", headers=headers, params=params
        )
        assert response.status_code == 200
        assert 0 < response.json()["count"] <= 40
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=DEADLINE)
    assert process.returncode == 0
    _round_trip(response.json(), tmp_path)


def _round_trip(served: dict[str, Any], tmp_path: Path) -> None:
    """What the stand-in serves imports back; the owner-less result gets an owner to serve."""
    from aibridge_graphql.standin.cli import prepare

    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(served))
    db = tmp_path / "round-trip.db"
    result = run("import", str(exported), "--db", str(db))
    assert result.exit_code == 0, result.output
    conn = open_database(db)
    stored = conn.execute("SELECT count(*) FROM interceptions").fetchone()[0]
    assert stored == served["count"] == len(served["results"])
    initiators = {item["initiator"]["username"] for item in served["results"]}
    assert {t.username for t in read_tokens(conn)} == set()  # imported users have no tokens
    assert not prepare(conn, 10, 1, ADMIN_TOKEN)  # not seeded: it has users
    owner, *others = read_tokens(conn)
    assert (owner.role, owner.token, others) == ("owner", ADMIN_TOKEN, [])
    # The owner's username never clashes with an imported user's.
    assert owner.username == ("admin1" if "admin" in initiators else "admin")
    conn.close()
