"""`make soak`: minutes of the README's views at saturation, watching the gateway's memory and loop.

It seeds a stand-in (20,000 interceptions), starts the stand-in and the gateway (`serve`) as
separate processes pinned like `make bench` (the stand-in alone on one core, the gateway beside
this load client), then drives the README's dashboard, session-detail and interceptions-table
queries round-robin from a bounded pool of concurrent workers until the time is up, checking every
body (an HTTP error, a GraphQL error or a missing field counts as a failure). Every window (30 s)
it prints throughput, p50/p99, the gateway's RSS (/proc/PID/status) and the longest event-loop
stall the gateway measured itself (`aibridge_event_loop_lag_max_seconds` in its /metrics); open
file descriptors at start and end. Targets are printed as MET or MISSED; the exit status is 1
when any is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

from aibridge_graphql.server.graphiql import EXAMPLE_QUERY
from aibridge_graphql.standin.tokens import generate_token
from bench.harness import (
    API,
    GRPC_ANY_PORT,
    Proc,
    choose_pinning,
    cli_path,
    free_port,
    percentile,
    rss_mb,
    seed,
    spawn,
    stop,
    wait_ready,
)
from bench.report import add_results_option, recorded

RSS_LIMIT_MB = 200.0
RSS_FLAT = 0.20  # RSS may move this much (relative) after the warm-up minute
WARM_UP_S = 60.0
STALL_LIMIT_S = 0.25
REQUEST_TIMEOUT_S = 60.0
RSS_SAMPLE_S = 1.0
LAG_MAX = "aibridge_event_loop_lag_max_seconds"
LAG_BUCKET_250MS = 'aibridge_event_loop_lag_seconds_bucket{le="0.25"}'
LAG_COUNT = "aibridge_event_loop_lag_seconds_count"
GC_MAX = "aibridge_gc_pause_max_seconds"
GC_SUM = "aibridge_gc_pause_seconds_sum"
GC_COUNT = "aibridge_gc_pause_seconds_count"
GC_CPU = "aibridge_gc_cpu_seconds_total"

# The stand-in's API era, chosen here only: the interceptions table needs `/interceptions`, which
# only the `sessions` era has (the default `ai-gateway` era does not).
STANDIN_ERA_ARGS: list[str] = ["--api-era", "sessions"]

# The README's example queries ("Example queries"), verbatim.
DASHBOARD = EXAMPLE_QUERY

SESSION = """query Session($id: String!) {
  session(sessionId: $id) {
    sessionId startedAt endedAt
    threads(first: 10) {
      pageInfo { hasNextPage endCursor }
      nodes {
        threadId prompt model credentialKind credentialHint
        agenticActions { model thinking toolCalls { tool serverUrl injected input } }
      }
    }
  }
}"""

INTERCEPTIONS = """query Interceptions($after: String) {
  interceptions(first: 25, after: $after,
                filter: { provider: "anthropic", startedAfter: "2025-01-01T00:00:00Z" }) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { interceptionId model client initiator { username } tokenUsages { inputTokens } }
  }
  models
  clients
}"""


@dataclass(frozen=True)
class SoakView:
    """One request of the mix and the top-level fields a correct answer has (non-null)."""

    name: str
    query: str
    variables: dict[str, Any]
    expect: tuple[str, ...]

    def payload(self) -> dict[str, Any]:
        return {"query": self.query, "variables": self.variables}


def soak_views(standin_url: str, auth: dict[str, str]) -> list[SoakView]:
    """The three views, the session one on the seeded session with the most threads."""
    with httpx.Client(base_url=standin_url, headers=auth, timeout=30) as rest:
        response = rest.get(API + "/sessions", params={"limit": 100})
        response.raise_for_status()
        sessions = response.json()["sessions"]
    if not sessions:
        raise RuntimeError("the seeded stand-in has no sessions")
    busiest = max(sessions, key=lambda s: s.get("threads", 0))
    return [
        SoakView("dashboard", DASHBOARD, {}, ("sessions",)),
        SoakView("session", SESSION, {"id": busiest["id"]}, ("session",)),
        SoakView("interceptions", INTERCEPTIONS, {}, ("interceptions", "models", "clients")),
    ]


def check_body(view: SoakView, status: int, body: Any) -> str | None:
    """Why an answer is wrong, or None when it is a full, error-free answer."""
    if status != 200:
        return f"{view.name}: HTTP {status}"
    if not isinstance(body, dict):
        return f"{view.name}: body is not a JSON object"
    if body.get("errors"):
        first = body["errors"][0]
        code = (first.get("extensions") or {}).get("code")
        return f"{view.name}: {code}: {str(first.get('message'))[:120]}"
    data = body.get("data") or {}
    missing = [name for name in view.expect if data.get(name) is None]
    return f"{view.name}: no {', '.join(missing)}" if missing else None


# ---------------------------------------------------------------------------------------------
# The gateway's own figures.


def scrape(text: str) -> dict[str, float]:
    """Unlabelled (and the one labelled bucket) samples of Prometheus' text format, by name."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("aibridge_event_loop_lag", "aibridge_gc_")):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid: int) -> int:
    """How many file descriptors the process has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---------------------------------------------------------------------------------------------
# The load.


@dataclass
class Window:
    """What the workers recorded since the last report."""

    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0


@dataclass
class Totals:
    """The whole run."""

    requests: int = 0
    failures: int = 0
    first_failures: list[str] = field(default_factory=list)
    rss_after_warm_up: list[float] = field(default_factory=list)
    rss_max: float = 0.0
    stall_max: float = 0.0
    gc_max: float = 0.0
    gc_seconds: float = 0.0
    gc_count: int = 0
    gc_cpu: float = 0.0
    stalls_over_limit: int = 0


class Load:
    """Workers that send the views round-robin until `until` (monotonic), checking every body."""

    def __init__(self, gateway_url: str, auth: dict[str, str], views: list[SoakView]) -> None:
        self.url = gateway_url + "/graphql"
        self.auth = auth
        self.views = views
        self.window = Window()
        self.totals = Totals()
        self._next = 0

    def take_window(self) -> Window:
        window, self.window = self.window, Window()
        return window

    def _fail(self, reason: str) -> None:
        self.window.failures += 1
        self.totals.failures += 1
        if len(self.totals.first_failures) < 5:
            self.totals.first_failures.append(reason)

    async def worker(self, session: ClientSession, until: float) -> None:
        while time.monotonic() < until:
            view = self.views[self._next % len(self.views)]
            self._next += 1
            self.totals.requests += 1
            started = time.perf_counter()
            try:
                async with session.post(self.url, json=view.payload()) as response:
                    status = response.status
                    body = await response.json(content_type=None)
            except (TimeoutError, OSError, ClientError, ValueError) as error:
                self._fail(f"{view.name}: {type(error).__name__}: {error}")
                continue
            elapsed = (time.perf_counter() - started) * 1000
            problem = check_body(view, status, body)
            if problem is not None:
                self._fail(problem)
            else:
                self.window.latencies_ms.append(elapsed)


async def report_windows(
    load: Load,
    gateway: Proc,
    metrics_url: str,
    started: float,
    until: float,
    window_s: float,
) -> None:
    """Every `window_s`: one line of figures; RSS sampled every second in between."""
    pid = gateway.popen.pid
    totals = load.totals
    print(
        f"{'window':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'fail':>5} "
        f"{'RSS MB':>7} {'RSS max':>7} {'stalls>250ms':>12} {'longest stall':>13} "
        f"{'longest GC':>10}",
        flush=True,
    )
    last_over = 0.0
    async with httpx.AsyncClient(timeout=10) as client:
        window_start = started
        while window_start < until:
            window_end = min(window_start + window_s, until)
            rss_peak = 0.0
            while (now := time.monotonic()) < window_end:
                await asyncio.sleep(min(RSS_SAMPLE_S, window_end - now))
                rss = rss_mb(pid)
                rss_peak = max(rss_peak, rss)
                if time.monotonic() - started >= WARM_UP_S:
                    totals.rss_after_warm_up.append(rss)
            window = load.take_window()
            lag = scrape((await client.get(metrics_url)).text)
            over = lag[LAG_COUNT] - lag[LAG_BUCKET_250MS]
            totals.stall_max = lag[LAG_MAX]
            totals.gc_max = lag[GC_MAX]
            totals.gc_seconds, totals.gc_count = lag[GC_SUM], int(lag[GC_COUNT])
            totals.gc_cpu = lag[GC_CPU]
            totals.stalls_over_limit = int(over)
            totals.rss_max = max(totals.rss_max, rss_peak)
            seconds = window_end - window_start
            ok = window.latencies_ms
            p50 = f"{statistics.median(ok):7.1f}" if ok else f"{'-':>7}"
            p99 = f"{percentile(ok, 0.99):7.1f}" if ok else f"{'-':>7}"
            label = f"{window_start - started:4.0f}-{window_end - started:.0f}s"
            print(
                f"{label:>9} {len(ok) / seconds:7.1f} {p50} {p99} {window.failures:5d} "
                f"{rss:7.1f} {rss_peak:7.1f} {int(over - last_over):12d} "
                f"{lag[LAG_MAX] * 1000:10.1f} ms {lag[GC_MAX] * 1000:7.1f} ms",
                flush=True,
            )
            last_over = over
            window_start = window_end


async def drive(load: Load, gateway: Proc, gateway_url: str, args: argparse.Namespace) -> None:
    """The workers and the reporter, for `args.minutes`."""
    started = time.monotonic()
    until = started + args.minutes * 60
    connector = TCPConnector(limit=args.concurrency)
    timeout = ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with ClientSession(connector=connector, timeout=timeout, headers=load.auth) as session:
        await asyncio.gather(
            report_windows(load, gateway, gateway_url + "/metrics", started, until, args.window),
            *(load.worker(session, until) for _ in range(args.concurrency)),
        )


# ---------------------------------------------------------------------------------------------


def verdict(totals: Totals, gateway_alive: bool) -> bool:
    """The four targets, MET or MISSED; True when all are met."""
    after = totals.rss_after_warm_up
    if after:
        base = after[0]
        drift = max(abs(value - base) for value in after) / base
        flat = (f"{min(after):.1f}-{max(after):.1f} MB, {drift:.0%} from {base:.1f} MB", drift)
    else:
        flat = ("no sample after the first minute (run longer)", 1.0)
    errors = f"{totals.failures} of {totals.requests} requests" + (
        "" if gateway_alive else "; the gateway died"
    )
    checks = [
        (f"RSS flat within {RSS_FLAT:.0%} after the first minute", flat[0], flat[1] <= RSS_FLAT),
        (
            f"RSS under {RSS_LIMIT_MB:.0f} MB",
            f"max {totals.rss_max:.1f} MB",
            totals.rss_max < RSS_LIMIT_MB,
        ),
        (
            f"no event-loop stall over {STALL_LIMIT_S * 1000:.0f} ms",
            f"longest {totals.stall_max * 1000:.1f} ms, {totals.stalls_over_limit} samples over; "
            f"longest GC pause {totals.gc_max * 1000:.1f} ms",
            totals.stall_max <= STALL_LIMIT_S,
        ),
        ("no error", errors, totals.failures == 0 and gateway_alive),
    ]
    print()
    for label, value, met in checks:
        print(f"  [{'MET' if met else 'MISSED'}] {label}: {value}")
    for reason in totals.first_failures:
        print(f"    failure: {reason}")
    return all(met for _, _, met in checks)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="requests in flight at once (default 32)"
    )
    parser.add_argument("--window", type=float, default=30.0, help="seconds per report line")
    parser.add_argument("--interceptions", type=int, default=20_000)
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    add_results_option(parser, "soak")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.concurrency < 1 or args.window <= 0:
        parser.error("--minutes and --window must be positive, --concurrency at least 1")
    return args


def run(args: argparse.Namespace) -> bool:
    pinning = choose_pinning(not args.no_pin, "apart")
    if pinning.client is not None:
        os.sched_setaffinity(0, {pinning.client})
    # As `make bench`: access lines off, so the soak measures the gateway, not its log volume.
    env = {**os.environ, "AIBRIDGE_LOG_LEVEL": "WARNING"}
    admin_token = generate_token()
    auth = {"Coder-Session-Token": admin_token}
    cli = cli_path()
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="aibridge-soak-") as tmp:
        work = Path(tmp)
        db = work / "standin.db"
        seed(db, args.interceptions, admin_token)
        try:
            standin_url = f"http://127.0.0.1:{free_port()}"
            standin_args = [cli, "standin", "--host", "127.0.0.1", "--db", str(db)]
            standin_args += ["--port", standin_url.rsplit(":", 1)[1], *STANDIN_ERA_ARGS]
            standin = spawn("stand-in", standin_args, work / "standin.log", pinning.upstream, env)
            procs.append(standin)
            wait_ready(standin, f"{standin_url}{API}/models", auth)
            gateway_port = str(free_port())
            gateway_url = f"http://127.0.0.1:{gateway_port}"
            gateway = spawn(
                "gateway",
                # As deployed, gRPC face included (on any free port: 9090 may be taken).
                [cli, "serve", "--upstream", standin_url, "--port", gateway_port, *GRPC_ANY_PORT],
                work / "gateway.log",
                pinning.gateway,
                env,
            )
            procs.append(gateway)
            wait_ready(gateway, f"{gateway_url}/readyz")
            views = soak_views(standin_url, auth)
            fds_start = open_fds(gateway.popen.pid)
            print(
                f"Soak: {args.minutes:g} min of {', '.join(v.name for v in views)} round-robin at "
                f"concurrency {args.concurrency}, {args.interceptions} interceptions; "
                f"{pinning.describe()}.\nGateway pid {gateway.popen.pid}: "
                f"{rss_mb(gateway.popen.pid):.1f} MB RSS, {fds_start} open fds at start.",
                flush=True,
            )
            load = Load(gateway_url, auth, views)
            cpu_start = cpu_seconds(gateway.popen.pid)
            asyncio.run(drive(load, gateway, gateway_url, args))
            alive = gateway.popen.poll() is None
            fds_end = open_fds(gateway.popen.pid) if alive else -1
            cpu = cpu_seconds(gateway.popen.pid) - cpu_start if alive else 0.0
            total = load.totals
            print(
                f"\n{total.requests} requests, {total.failures} failed; gateway open fds: "
                f"{fds_start} at start, {fds_end} at end (pooled upstream and kept-alive client "
                "connections included)."
            )
            # CPU figures do not depend on what else the machine runs; wall-clock ones do.
            run_s = args.minutes * 60
            print(
                f"Gateway CPU: {cpu:.1f} s ({cpu / run_s:.0%} of a core), "
                f"{total.requests / cpu if cpu else 0:.1f} requests per CPU second. "
                f"GC: {total.gc_count} collections, {total.gc_cpu:.1f} s CPU "
                f"({total.gc_cpu / cpu if cpu else 0:.0%} of the gateway's CPU), "
                f"{total.gc_seconds:.1f} s wall, longest {total.gc_max * 1000:.1f} ms."
            )
            ok = verdict(total, alive)
            if not alive:
                print(gateway.tail())
            return ok
        finally:
            for proc in reversed(procs):
                stop(proc)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with recorded(args.results, "bench.soak", argv):
        ok = run(args)
        print("All soak targets met." if ok else "Some soak targets were MISSED (see above).")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
