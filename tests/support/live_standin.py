"""A stand-in whose database a test appends traffic to, served in-process or as a real process.

In-process: `live_copy(seeded_db, directory, api_era)` copies the seeded database, serves the
copy on loopback (a thread) and yields a `LiveStandin` whose `traffic` (standin/traffic.py)
appends to it: `traffic.append_interception(session_id)`, `traffic.start_session("alice")`,
`traffic.end_session(session_id)`, `traffic.tick()`. Each call is committed before it returns,
and the next request to the stand-in sees it (every request reads in a fresh transaction).

As a process: `standin_process(db, api_era, ...)` runs `aibridge-graphql standin` on the
file; a `Traffic` opened on the same file (or `standin simulate --db FILE`) appends to it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.eras import ApiEra
from aibridge_graphql.standin.live import LiveOptions
from aibridge_graphql.standin.traffic import Traffic
from tests.support.serve_process import CLI, WAIT_S, ProcessOutput
from tests.support.servers import run_app_in_thread

LISTENING = re.compile(r"Stand-in listening on (http://127\.0\.0\.1:\d+)/api/v2/")
# The traffic seed value the helpers use unless told otherwise.
TRAFFIC_SEED = 1


@dataclass(frozen=True)
class LiveStandin:
    """A served copy of a seeded database and the traffic that appends to it."""

    url: str  # base URL, without the API prefix
    db: Path
    api_era: ApiEra
    traffic: Traffic


@contextlib.contextmanager
def live_copy(
    seeded_db: Path,
    directory: Path,
    api_era: ApiEra = "sessions",
    *,
    seed_value: int = TRAFFIC_SEED,
    live: LiveOptions | None = None,
) -> Iterator[LiveStandin]:
    """Serve a copy of `seeded_db` (in `directory`) in `api_era`; `live` also ticks it."""
    db = directory / f"live-{api_era}.db"
    shutil.copyfile(seeded_db, db)
    with (
        run_app_in_thread(lambda: create_app(db, api_era=api_era, live=live)) as url,
        Traffic(db, seed_value) as traffic,
    ):
        yield LiveStandin(url, db, api_era, traffic)


@dataclass(frozen=True)
class StandinProcess:
    """A running `aibridge-graphql standin` and its output."""

    url: str
    output: ProcessOutput


@contextlib.contextmanager
def standin_process(db: Path, api_era: ApiEra = "sessions", *args: str) -> Iterator[StandinProcess]:
    """`aibridge-graphql standin --db DB --port 0 --api-era ERA ARGS`; interrupted at the end."""
    command = [CLI, "standin", "--db", str(db), "--port", "0", "--api-era", api_era, *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ProcessOutput(process)
    try:
        url = output.wait_for(LISTENING).group(1)
        yield StandinProcess(url, output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(WAIT_S)
