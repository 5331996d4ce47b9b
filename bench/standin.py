"""`make bench-standin`: the stand-in at scale (100,000 interceptions by default).

It generates the synthetic data into a temporary database (timing generation + load), starts the
stand-in as its own process on 127.0.0.1, measures p50/p95 of each list endpoint with a typical
filter over a bounded number of sequential requests, prints the query plans of the list queries
(each must use an index), and the stand-in's resident memory against the 200 MB bar.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    API,
    RSS_TARGET_MB,
    Proc,
    cli_path,
    free_port,
    rss_mb,
    spawn,
    stop,
    wait_ready,
)
from bench.report import add_results_option, recorded

SEED_VALUE = 1
DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class Endpoint:
    """A list endpoint and a typical filter; `path(i)` may vary with the request number."""

    name: str
    path: Callable[[int], str]
    params: dict[str, Any]


@dataclass(frozen=True)
class Timing:
    """Latencies of one endpoint, in milliseconds."""

    endpoint: Endpoint
    ms: list[float]
    sample_count: int

    def quantile(self, q: float) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def generate(db: Path, count: int, admin_token: str) -> float:
    """Seed `count` interceptions into `db`; the seconds generation + load took."""
    from aibridge_graphql.standin.seed import seed_database
    from aibridge_graphql.standin.store import open_database

    conn = open_database(db)
    try:
        started = time.perf_counter()
        seed_database(conn, count, SEED_VALUE, admin_token)
        conn.commit()
        return time.perf_counter() - started
    finally:
        conn.close()


def _rfc3339(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def endpoints(conn: sqlite3.Connection) -> list[Endpoint]:
    """The measured requests, with filter values read from the data (busiest first)."""
    newest = int(conn.execute("SELECT max(started_at) FROM interceptions").fetchone()[0])
    member = conn.execute(
        """SELECT u.username FROM interceptions i JOIN users u ON u.id = i.initiator_id
           WHERE u.role = 'member' GROUP BY u.username ORDER BY count(*) DESC LIMIT 1"""
    ).fetchone()[0]
    sessions = [
        str(row[0])
        for row in conn.execute(
            """SELECT session_id FROM interceptions WHERE thread_root_id IS NULL
               AND ended_at IS NOT NULL GROUP BY session_id ORDER BY count(*) DESC, session_id
               LIMIT 50"""
        )
    ]
    week_ago = _rfc3339(newest - 7 * DAY_US)
    return [
        Endpoint(
            "interceptions provider+started_after",
            lambda _: "/interceptions",
            {"q": f'provider:anthropic started_after:"{week_ago}"'},
        ),
        Endpoint(
            "sessions initiator+model",
            lambda _: "/sessions",
            {"q": f"initiator:{member} model:claude-sonnet-4-5"},
        ),
        Endpoint(
            "session threads (50 busiest)",
            lambda i: f"/sessions/{sessions[i % len(sessions)]}",
            {},
        ),
        Endpoint("models prefix", lambda _: "/models", {"q": "claude"}),
        Endpoint("clients", lambda _: "/clients", {}),
    ]


def measure(client: httpx.Client, endpoint: Endpoint, requests: int, warmup: int) -> Timing:
    """Sequential requests; every response must be 200."""
    ms: list[float] = []
    sample_count = 0
    for i in range(warmup + requests):
        started = time.perf_counter()
        response = client.get(API + endpoint.path(i), params=endpoint.params)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{endpoint.name}: HTTP {response.status_code} {response.text}")
        if i >= warmup:
            ms.append(elapsed)
        sample_count = _size(response.json())
    return Timing(endpoint, ms, sample_count)


def _size(body: Any) -> int:
    """`count` of a list response, the threads of a session, or the items of a bare array."""
    if isinstance(body, dict):
        return int(body["count"]) if "count" in body else len(body["threads"])
    return len(body)


def plans(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(query, label, plan line) for every EXPLAIN QUERY PLAN line of the list queries.

    Labels: "index" (an index search or walk), "FULL SCAN" (a whole table read), "temp" (a scan
    of an intermediate result the query built, e.g. a CTE page), "" (sorting and structure).
    """
    from aibridge_graphql.standin.store import explain_list_queries

    lines = []
    for query, plan in explain_list_queries(conn).items():
        built = {
            line.split(" ", 1)[1]
            for line in plan
            if line.startswith(("MATERIALIZE ", "CO-ROUTINE "))
        }
        for line in plan:
            if "INDEX" in line:
                label = "index"
            elif line.startswith("SCAN "):
                label = "temp" if line.removeprefix("SCAN ") in built else "FULL SCAN"
            else:
                label = ""
            lines.append((query, label, line))
    return lines


def report(
    count: int, seconds: float, timings: list[Timing], plan_lines: list[tuple[str, str, str]],
    rss: float, peak: float, requests: int,
) -> bool:  # fmt: skip
    """Print the results; True when every plan uses an index and RSS is under the bar."""
    print(f"\nGenerated and loaded {count:,} interceptions in {seconds:.1f}s\n")
    print(f"Latency over {requests} sequential requests per endpoint (after warm-up):")
    print(f"  {'endpoint':<40} {'p50 ms':>8} {'p95 ms':>8} {'rows':>8}")
    for t in timings:
        print(
            f"  {t.endpoint.name:<40} {t.quantile(0.5):>8.2f} {t.quantile(0.95):>8.2f} "
            f"{t.sample_count:>8}"
        )
    print("\nQuery plans (store.explain_list_queries):")
    for query, label, line in plan_lines:
        print(f"  {query:<20} {label:<9} {line}")
    all_indexed = all(label != "FULL SCAN" for _, label, _ in plan_lines)
    rss_ok = rss < RSS_TARGET_MB
    print(
        f"\nStand-in memory: RSS {rss:.1f} MB, peak {peak:.1f} MB (bar: < {RSS_TARGET_MB:.0f} MB)"
    )
    print(f"  [{'met' if all_indexed else 'MISSED'}] no list query reads a whole table")
    print(f"  [{'met' if rss_ok else 'MISSED'}] stand-in RSS under {RSS_TARGET_MB:.0f} MB")
    return all_indexed and rss_ok


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size (VmHWM) of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.standin", description=__doc__)
    parser.add_argument("--interceptions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300, help="per endpoint (bounded)")
    parser.add_argument("--warmup", type=int, default=10)
    add_results_option(parser, "standin")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> bool:
    from aibridge_graphql.standin.tokens import generate_token

    admin_token = generate_token()
    with tempfile.TemporaryDirectory(prefix="aibridge-bench-standin-") as tmp:
        db = Path(tmp) / "standin.db"
        print(f"Generating {args.interceptions:,} interceptions…", flush=True)
        seconds = generate(db, args.interceptions, admin_token)
        port = free_port()
        # The sessions era serves every endpoint measured here, /interceptions included.
        command = [cli_path(), "standin", "--port", str(port), "--db", str(db)]
        command += ["--api-era", "sessions"]
        standin: Proc = spawn(
            "stand-in", command, Path(tmp) / "standin.log", None, dict(os.environ)
        )
        try:
            url = f"http://127.0.0.1:{port}"
            auth = {"Coder-Session-Token": admin_token}
            wait_ready(standin, f"{url}{API}/models", auth)
            conn = sqlite3.connect(db)
            # As the stand-in's read connections: Postgres-like case-sensitive prefix LIKEs.
            conn.execute("PRAGMA case_sensitive_like = ON")
            try:
                measured = endpoints(conn)
                with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
                    timings = []
                    for endpoint in measured:
                        print(f"  measuring {endpoint.name}…", flush=True)
                        timings.append(measure(client, endpoint, args.requests, args.warmup))
                plan_lines = plans(conn)
            finally:
                conn.close()
            pid = standin.popen.pid
            rss, peak = rss_mb(pid), peak_rss_mb(pid)
        finally:
            stop(standin)
    return report(args.interceptions, seconds, timings, plan_lines, rss, peak, args.requests)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark; exit 1 when a bar is missed."""
    args = parse_args(argv)
    with recorded(args.results, "bench.standin", argv):
        ok = run(args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
