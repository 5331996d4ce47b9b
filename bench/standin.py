"""`make bench-standin`: the stand-in's call times as its data grows (issue 19).

For each size (2,000, 20,000, 200,000 and 1,000,000 interceptions by default; `--sizes`) it
seeds a temporary database (timed, as `standin seed` does), prices it for the AI Gateway era
(timed), starts one stand-in process per API era on 127.0.0.1, and times sequential requests of
the main list and detail calls over HTTP. It prints one curve per call (the median at each
size, the p95 at the largest), the goals below as MET or MISSED (judged on the median), the
query plans at the largest size (each must use an index) and each stand-in's memory against
the 200 MB bar. It exits 1 when a goal is missed. Seeding 1,000,000 takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.harness import RSS_TARGET_MB, Proc, cli_path, free_port, rss_mb, spawn, stop, wait_ready
from bench.report import add_results_option, recorded

SEED_VALUE = 1
DAY_US = 86_400 * 1_000_000
SIZES = (2_000, 20_000, 200_000, 1_000_000)
PREFIX = {"sessions": "/api/v2/aibridge", "ai-gateway": "/api/v2/ai-gateway"}
ERAS = tuple(PREFIX)


@dataclass(frozen=True)
class Call:
    """A measured request of one era; `path(i)` and `params` may vary with the request number."""

    name: str
    era: str
    path: Callable[[int], str]
    params: dict[str, Any]


@dataclass(frozen=True)
class Timing:
    """Latencies of one call at one size, in milliseconds, and the items of its last answer."""

    ms: list[float]
    items: int

    def quantile(self, q: float) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Goal:
    """A bar on a call's median: at one size, or at every size measured (`size` None)."""

    call: str
    era: str
    size: int | None
    below_ms: float
    why: str


INTERCEPTIONS_PAGE = "interceptions, page of 1000"
INTERCEPTIONS_DEEP = "interceptions, page of 1000 at half the count"
INTERCEPTIONS_TYPICAL = "interceptions provider + last 7 days"
SESSIONS_PAGE = "sessions, page of 1000"
SESSIONS_DEEP = "sessions, page of 1000 at half the count"
SESSIONS_PERIOD = "sessions, page of 1000, last 30 days"
SESSIONS_NARROWED = "sessions initiator + model"
DETAIL = "session detail (50 busiest)"
MODELS = "models prefix"
CLIENTS = "clients"

GOALS = (
    Goal(INTERCEPTIONS_PAGE, "sessions", 200_000, 150, "issue 19"),
    *(Goal(SESSIONS_PAGE, era, 200_000, 300, "issue 19") for era in ERAS),
    *(Goal(DETAIL, era, 200_000, 30, "issue 19") for era in ERAS),
    *(Goal(SESSIONS_PAGE, era, 20_000, 1000, "the lead's brief") for era in ERAS),
    # The curve stays flat: pages and details cost the same at every size.
    Goal(INTERCEPTIONS_PAGE, "sessions", None, 250, "flat curve"),
    Goal(INTERCEPTIONS_DEEP, "sessions", None, 300, "flat curve"),
    *(Goal(SESSIONS_PAGE, era, None, 300, "flat curve") for era in ERAS),
    *(Goal(SESSIONS_DEEP, era, None, 300, "flat curve") for era in ERAS),
    *(Goal(SESSIONS_PERIOD, era, None, 400, "flat curve") for era in ERAS),
    *(Goal(DETAIL, era, None, 30, "flat curve") for era in ERAS),
)
# Seeding goal: `standin seed` of 1,000,000 interceptions "in minutes".
SEED_GOAL = (1_000_000, 300.0)


@dataclass
class Results:
    """Everything measured, by size."""

    seed_seconds: dict[int, float] = field(default_factory=dict)
    price_seconds: dict[int, float] = field(default_factory=dict)
    timings: dict[tuple[str, str], dict[int, Timing]] = field(default_factory=dict)
    memory: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    plans: list[tuple[str, str, str]] = field(default_factory=list)


def seed(db: Path, count: int, admin_token: str) -> float:
    """Seed `count` interceptions into `db` as `standin seed` does; the seconds it took."""
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


def price(db: Path) -> float:
    """Price the usages for the AI Gateway era's spend (its start does it otherwise)."""
    from aibridge_graphql.standin.spend_data import prepare_spend

    started = time.perf_counter()
    prepare_spend(db)
    return time.perf_counter() - started


def _rfc3339(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def calls(conn: sqlite3.Connection) -> list[Call]:
    """The measured requests of both eras, with filter values and offsets read from the data."""
    newest = int(conn.execute("SELECT max(started_at) FROM interceptions").fetchone()[0])
    member = conn.execute(
        """SELECT u.username FROM interceptions i JOIN users u ON u.id = i.initiator_id
           WHERE u.role = 'member' GROUP BY u.username ORDER BY count(*) DESC LIMIT 1"""
    ).fetchone()[0]
    busiest = [
        str(row[0])
        for row in conn.execute(
            """SELECT session_id FROM interceptions WHERE thread_root_id IS NULL
               AND ended_at IS NOT NULL GROUP BY session_id ORDER BY count(*) DESC, session_id
               LIMIT 50"""
        )
    ]
    ended = int(
        conn.execute("SELECT COUNT(*) FROM interceptions WHERE ended_at IS NOT NULL").fetchone()[0]
    )
    sessions = int(conn.execute("SELECT COUNT(*) FROM session_summaries").fetchone()[0])
    week = _rfc3339(newest - 7 * DAY_US)
    month = _rfc3339(newest - 30 * DAY_US)

    def fixed(path: str) -> Callable[[int], str]:
        return lambda _: path

    def half(count: int) -> str:
        return str(count // 2 // 1000 * 1000)

    measured = [
        Call(INTERCEPTIONS_PAGE, "sessions", fixed("/interceptions"), {"limit": 1000}),
        Call(
            INTERCEPTIONS_DEEP,
            "sessions",
            fixed("/interceptions"),
            {"limit": 1000, "offset": half(ended)},
        ),
        Call(
            INTERCEPTIONS_TYPICAL,
            "sessions",
            fixed("/interceptions"),
            {"q": f'provider:anthropic started_after:"{week}"'},
        ),
    ]
    for era in ERAS:
        measured += [
            Call(SESSIONS_PAGE, era, fixed("/sessions"), {"limit": 1000}),
            Call(SESSIONS_DEEP, era, fixed("/sessions"), {"limit": 1000, "offset": half(sessions)}),
            Call(
                SESSIONS_PERIOD,
                era,
                fixed("/sessions"),
                {"limit": 1000, "q": f'started_after:"{month}"'},
            ),
            Call(
                SESSIONS_NARROWED,
                era,
                fixed("/sessions"),
                {"q": f"initiator:{member} model:claude-sonnet-4-5"},
            ),
            Call(DETAIL, era, lambda i: f"/sessions/{busiest[i % len(busiest)]}", {}),
        ]
    measured += [
        Call(MODELS, "sessions", fixed("/models"), {"q": "claude"}),
        Call(CLIENTS, "sessions", fixed("/clients"), {}),
    ]
    return measured


def measure(client: httpx.Client, call: Call, requests: int, warmup: int) -> Timing:
    """Sequential requests; every response must be 200."""
    ms: list[float] = []
    items = 0
    for i in range(warmup + requests):
        started = time.perf_counter()
        response = client.get(PREFIX[call.era] + call.path(i), params=call.params)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(
                f"{call.name} ({call.era}): HTTP {response.status_code} {response.text}"
            )
        if i >= warmup:
            ms.append(elapsed)
        items = _items(response.json())
    return Timing(ms, items)


def _items(body: Any) -> int:
    """Items in an answer: a page's results or sessions, a detail's threads, an array's items."""
    if isinstance(body, dict):
        for key in ("results", "sessions", "threads"):
            if key in body:
                return len(body[key])
    return len(body) if isinstance(body, list) else 0


def plans(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(query, label, plan line) for every EXPLAIN QUERY PLAN line of the list queries.

    Labels: "index" (an index search or walk), "FULL SCAN" (a whole table read), "temp" (a scan
    of an intermediate result the query built, e.g. a CTE page or the page's keys), "" (sorting
    and structure).
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
                scanned = line.removeprefix("SCAN ")
                temp = scanned in built or scanned.startswith("json_each VIRTUAL TABLE")
                label = "temp" if temp else "FULL SCAN"
            else:
                label = ""
            lines.append((query, label, line))
    return lines


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size (VmHWM) of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


@contextmanager
def standin(
    db: Path, era: str, log: Path, cpu: int | None, token: str
) -> Iterator[tuple[str, Proc]]:
    """A stand-in process serving `db` in `era`; yields its base URL."""
    port = free_port()
    command = [cli_path(), "standin", "--port", str(port), "--db", str(db), "--api-era", era]
    proc = spawn(f"stand-in ({era})", command, log, cpu, dict(os.environ))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(proc, f"{url}{PREFIX[era]}/models", {"Coder-Session-Token": token})
        yield url, proc
    finally:
        stop(proc)


def _cpu(pin: bool) -> int | None:
    """The core the stand-ins run on (the last one; the bench client takes the others)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2 or shutil.which("taskset") is None:
        return None
    return cpus[-1]


def run_size(size: int, args: argparse.Namespace, results: Results, last: bool) -> None:
    from aibridge_graphql.standin.tokens import generate_token

    token = generate_token()
    with tempfile.TemporaryDirectory(prefix="aibridge-bench-standin-") as tmp:
        db = Path(tmp) / "standin.db"
        print(f"\n{size:,} interceptions: seeding…", flush=True)
        results.seed_seconds[size] = seed(db, size, token)
        results.price_seconds[size] = price(db)
        print(
            f"  seeded in {results.seed_seconds[size]:.1f}s, priced in "
            f"{results.price_seconds[size]:.1f}s",
            flush=True,
        )
        with sqlite3.connect(db) as conn:
            measured = calls(conn)
        conn.close()
        for era in ERAS:
            log = Path(tmp) / f"standin-{era}.log"
            with standin(db, era, log, _cpu(args.pin), token) as (url, proc):
                headers = {"Coder-Session-Token": token}
                with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
                    for call in (c for c in measured if c.era == era):
                        timing = measure(client, call, args.requests, args.warmup)
                        results.timings.setdefault((call.name, era), {})[size] = timing
                        print(
                            f"  {era:<10} {call.name:<46} {timing.quantile(0.5):8.1f} ms",
                            flush=True,
                        )
                pid = proc.popen.pid
                results.memory[(era, size)] = (rss_mb(pid), peak_rss_mb(pid))
        if last:
            with sqlite3.connect(db) as conn:
                results.plans = plans(conn)
            conn.close()


def goal_lines(
    goals: Sequence[Goal], results: Results, sizes: Sequence[int]
) -> tuple[list[str], bool]:
    """`[MET]` / `[MISSED]` per goal (`[n/a]` when its size was not run); True when none missed."""
    lines, ok = [], True
    for goal in goals:
        timings = results.timings.get((goal.call, goal.era), {})
        wanted = [goal.size] if goal.size is not None else list(sizes)
        measured = {size: timings[size].quantile(0.5) for size in wanted if size in timings}
        where = f"at {goal.size:,}" if goal.size is not None else "at every size"
        what = f"{where}: {goal.call} ({goal.era}) < {goal.below_ms:.0f} ms [{goal.why}]"
        if not measured:
            lines.append(f"  [n/a]    {what}: size not run")
            continue
        worst_size = max(measured, key=lambda s: measured[s])
        met = measured[worst_size] < goal.below_ms
        ok &= met
        lines.append(f"  {_mark(met)} {what}: {measured[worst_size]:.1f} ms at {worst_size:,}")
    seed_size, seed_limit = SEED_GOAL
    if seed_size in results.seed_seconds:
        seconds = results.seed_seconds[seed_size]
        met = seconds < seed_limit
        ok &= met
        lines.append(
            f"  {_mark(met)} seeding {seed_size:,} interceptions < {seed_limit:.0f} s: "
            f"{seconds:.1f} s"
        )
    else:
        lines.append(
            f"  [n/a]    seeding {seed_size:,} interceptions < {seed_limit:.0f} s: size not run"
        )
    return lines, ok


def report(results: Results, sizes: Sequence[int], requests: int) -> bool:
    """Print the curves, goals, plans and memory; True when no goal or bar is missed."""
    largest = max(sizes)
    print("\nSeeding and pricing (seconds):")
    for size in sizes:
        seeded, priced = results.seed_seconds[size], results.price_seconds[size]
        print(f"  {size:>9,}  seed {seeded:7.1f}  price {priced:6.1f}")
    heads = "".join(f"{_short(s):>9}" for s in sizes)
    print(f"\nMedian ms of {requests} sequential requests per call (p95 and items at {largest:,}):")
    print(f"  {'call':<46} {'era':<10}{heads} {'p95':>8} {'items':>6}")
    for (name, era), by_size in results.timings.items():
        cells = "".join(
            f"{by_size[s].quantile(0.5):9.1f}" if s in by_size else f"{'-':>9}" for s in sizes
        )
        top = by_size.get(largest)
        tail = f"{top.quantile(0.95):8.1f} {top.items:6}" if top else ""
        print(f"  {name:<46} {era:<10}{cells} {tail}")
    lines, ok = goal_lines(GOALS, results, sizes)
    print("\nGoals (medians, this machine):")
    print("\n".join(lines))
    print(f"\nQuery plans at {largest:,} (store.explain_list_queries):")
    for query, label, line in results.plans:
        print(f"  {query:<22} {label:<9} {line}")
    indexed = all(label != "FULL SCAN" for _, label, _ in results.plans)
    print(f"  {_mark(indexed)} no list query reads a whole table")
    print(f"\nStand-in memory after its requests (bar: < {RSS_TARGET_MB:.0f} MB RSS):")
    memory_ok = True
    for (era, size), (rss, peak) in sorted(results.memory.items(), key=lambda item: item[0][1]):
        fine = rss < RSS_TARGET_MB
        memory_ok &= fine
        print(f"  {_mark(fine)} {era:<10} at {size:>9,}: RSS {rss:.1f} MB, peak {peak:.1f} MB")
    return ok and indexed and memory_ok


def _mark(met: bool) -> str:
    return "[MET]   " if met else "[MISSED]"


def _short(size: int) -> str:
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.standin", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=lambda text: sorted({int(part.replace("_", "")) for part in text.split(",")}),
        default=list(SIZES),
        help="interceptions per database, comma-separated (default 2000,20000,200000,1000000)",
    )
    parser.add_argument("--requests", type=int, default=20, help="per call and size (bounded)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not taskset the stand-ins"
    )
    add_results_option(parser, "standin")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark; exit 1 when a goal or bar is missed."""
    args = parse_args(argv)
    with recorded(args.results, "bench.standin", argv):
        results = Results()
        for size in args.sizes:
            run_size(size, args, results, last=size == max(args.sizes))
        ok = report(results, args.sizes, args.requests)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
