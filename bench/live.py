"""`make bench-live`: many open subscriptions of one view, what they cost and how fast they hear.

A stand-in (2,000 seeded interceptions, ai-gateway era) runs behind a counting proxy; the
gateway (`serve`, default live settings: a poll every 5 s) is pinned to a core of its own, this
client and the stand-in to the other. The figures, each against its goal (issue 17):

1. 1,000 SSE subscribers of `sessions` with one token: upstream `GET /sessions` calls per poll
   interval (goal: 1, not 1,000);
2. the gateway's RSS with those 1,000 streams open (goal: < 300 MB);
3. idle: the gateway's CPU while the 1,000 streams are open and nothing changes (goal: < 1 % of
   a core);
4. a session appended to the stand-in (its traffic generator) reaches every subscriber within
   the poll interval + 250 ms (p99 over subscribers and appends, measured from the commit);
5. 100 subscribers with 100 tokens: calls per interval (goal: 100, one poller each).

MET/MISSED per goal; exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, TCPConnector

from aibridge_graphql.standin.tokens import generate_token, split_token
from aibridge_graphql.standin.traffic import Traffic
from bench.harness import (
    API,
    CountingProxy,
    Proc,
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
from bench.soak import cpu_seconds

INTERVAL_S = 5.0  # the default AIBRIDGE_LIVE_POLL_INTERVAL, which the gateway runs with
RSS_GOAL_MB = 300.0
IDLE_GOAL_CORE = 0.01
LATENCY_SLACK_S = 0.25
QUERY = """subscription Watch {
  sessions(first: 20) {
    kind
    observedAt
    session { sessionId threadCount lastActiveAt tokenUsage { inputTokens outputTokens } }
  }
}"""


@dataclass
class Subscribers:
    """Open SSE streams, each noting when it heard of which session."""

    heard: list[dict[str, float]] = field(default_factory=list)
    open: int = 0
    failed: list[str] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    heard_more: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _one(self, http: ClientSession, url: str, token: str, want: int) -> None:
        heard: dict[str, float] = {}
        self.heard.append(heard)
        headers = {"Coder-Session-Token": token, "Accept": "text/event-stream"}
        try:
            async with http.post(url, json={"query": QUERY}, headers=headers) as response:
                if response.status != 200:
                    self.failed.append(f"HTTP {response.status}")
                    return
                self.open += 1
                if self.open == want:
                    self.ready.set()
                async for raw in response.content:
                    line = raw.decode()
                    if line.startswith("data: {"):
                        event = json.loads(line[6:])
                        if event.get("errors"):
                            self.failed.append(event["errors"][0]["message"])
                            continue
                        session = event["data"]["sessions"]["session"]["sessionId"]
                        heard.setdefault(session, time.time())
                        self.heard_more.set()
        except (TimeoutError, OSError) as exc:
            self.failed.append(type(exc).__name__)

    async def all_heard(self, session_id: str, within_s: float) -> None:
        """Return once every stream heard of `session_id`, or after `within_s`."""
        deadline = time.monotonic() + within_s
        while not all(session_id in heard for heard in self.heard):
            self.heard_more.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.heard_more.wait(), left)

    def start(self, http: ClientSession, url: str, tokens: list[str]) -> None:
        self.ready.clear()
        self.open = 0
        for token in tokens:
            self.tasks.append(asyncio.create_task(self._one(http, url, token, len(tokens))))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        self.heard.clear()


def add_tokens(db: Path, count: int) -> list[str]:
    """`count` more tokens of the owner (so `count` callers as the gateway sees them)."""
    conn = sqlite3.connect(db)
    try:
        (owner,) = conn.execute("SELECT id FROM users WHERE role = 'owner' LIMIT 1").fetchone()
        tokens = [generate_token() for _ in range(count)]
        conn.executemany(
            "INSERT INTO api_keys (id, secret, user_id, expires_at) VALUES (?, ?, ?, ?)",
            [(*split_token(t), owner, 2**62) for t in tokens],
        )
        conn.commit()
        return tokens
    finally:
        conn.close()


def sessions_calls(proxy: CountingProxy) -> int:
    return sum(1 for path in proxy.calls if path.split("?")[0].endswith("/sessions"))


async def calls_per_interval(proxy: CountingProxy, intervals: int) -> float:
    """`GET /sessions` calls per poll interval, counted over `intervals` intervals."""
    before = sessions_calls(proxy)
    await asyncio.sleep(intervals * INTERVAL_S)  # the window counted (a benchmark, not a test)
    return (sessions_calls(proxy) - before) / intervals


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


@contextlib.contextmanager
def servers(workdir: Path, pin: bool) -> Iterator[tuple[Proc, CountingProxy, Path, str]]:
    db = workdir / "standin.db"
    admin = generate_token()
    seed(db, 2000, admin)
    # The gateway alone on one core; this client and the stand-in on another.
    cpus = sorted(os.sched_getaffinity(0))
    gateway_cpu, other_cpu = (cpus[0], cpus[1]) if pin and len(cpus) > 1 else (None, None)
    if other_cpu is not None:
        os.sched_setaffinity(0, {other_cpu})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    standin_port = free_port()
    standin = spawn(
        "stand-in",
        [cli_path(), "standin", "--db", str(db), "--port", str(standin_port)],
        workdir / "standin.log",
        other_cpu,
        env,
    )
    gateway: Proc | None = None
    try:
        standin_url = f"http://127.0.0.1:{standin_port}"
        wait_ready(standin, f"{standin_url}{API}/models", {"Coder-Session-Token": admin})
        with CountingProxy(standin_url).running() as proxy:
            port = free_port()
            gateway = spawn(
                "gateway",
                [cli_path(), "serve", "--upstream", proxy.url, "--port", str(port)],
                workdir / "gateway.log",
                gateway_cpu,
                {**env, "AIBRIDGE_GRPC_ENABLED": "false", "AIBRIDGE_LOG_LEVEL": "WARNING"},
            )
            wait_ready(gateway, f"http://127.0.0.1:{port}/readyz")
            where = "not pinned" if gateway_cpu is None else f"gateway alone on cpu{gateway_cpu}"
            print(f"pinning: {where}")
            yield gateway, proxy, db, f"http://127.0.0.1:{port}/graphql"
    finally:
        if gateway is not None:
            stop(gateway)
        stop(standin)


async def run(subscribers: int, tokens_count: int, appends: int, pin: bool) -> bool:
    results: list[bool] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-live-") as tmp,
        servers(Path(tmp), pin) as (
            gateway,
            proxy,
            db,
            url,
        ),
    ):
        pid = gateway.popen.pid
        one = add_tokens(db, 1)[0]
        many = add_tokens(db, tokens_count)
        timeout = ClientTimeout(total=None, sock_connect=30, sock_read=None)
        async with ClientSession(connector=TCPConnector(limit=0), timeout=timeout) as http:
            subs = Subscribers()
            subs.start(http, url, [one] * subscribers)
            await asyncio.wait_for(subs.ready.wait(), 120)
            await asyncio.sleep(INTERVAL_S)  # let the first poll's baseline settle
            print(f"{subs.open} SSE streams open, one token; failures: {len(subs.failed)}")

            cpu_before = cpu_seconds(pid)
            started = time.monotonic()
            per_interval = await calls_per_interval(proxy, 6)
            idle = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started)
            rss = rss_mb(pid)
            results.append(ok := per_interval <= 1.2)
            print(
                f"1. GET /sessions per {INTERVAL_S:g} s interval, {subscribers} subscribers, "
                f"one token: {per_interval:.2f} (goal 1)  {verdict(ok)}"
            )
            results.append(ok := rss < RSS_GOAL_MB)
            print(
                f"2. gateway RSS with {subs.open} streams: {rss:.0f} MB (goal < "
                f"{RSS_GOAL_MB:.0f})  {verdict(ok)}"
            )
            results.append(ok := idle < IDLE_GOAL_CORE)
            print(
                f"3. idle CPU with {subs.open} streams: {idle * 100:.2f} % of a core "
                f"(goal < {IDLE_GOAL_CORE * 100:g} %)  {verdict(ok)}"
            )

            delays: list[float] = []
            missing = 0
            with Traffic(db) as traffic:
                for n in range(appends):
                    # A different phase of the poll cycle each time.
                    await asyncio.sleep(INTERVAL_S * (n % 5) / 5 + 0.37)
                    appended = traffic.start_session("admin")
                    committed = time.time()
                    await subs.all_heard(appended.session_id, 3 * INTERVAL_S)
                    for heard in subs.heard:
                        at = heard.get(appended.session_id)
                        if at is None:
                            missing += 1
                        else:
                            delays.append(at - committed)
            p50, p99 = percentile(delays, 0.5), percentile(delays, 0.99)
            goal = INTERVAL_S + LATENCY_SLACK_S
            results.append(ok := missing == 0 and p99 <= goal)
            print(
                f"4. appended session to every subscriber ({appends} appends x {subs.open}): "
                f"p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(delays):.2f} s, missed "
                f"{missing} (goal p99 <= {goal:.2f} s)  {verdict(ok)}"
            )
            await subs.close()

            subs.start(http, url, many)
            await asyncio.wait_for(subs.ready.wait(), 120)
            await asyncio.sleep(INTERVAL_S)
            per_interval = await calls_per_interval(proxy, 4)
            results.append(ok := tokens_count * 0.8 <= per_interval <= tokens_count * 1.2)
            print(
                f"5. GET /sessions per interval, {tokens_count} subscribers with "
                f"{tokens_count} tokens: {per_interval:.1f} (goal {tokens_count})  "
                f"{verdict(ok)}"
            )
            await subs.close()
            if subs.failed:
                print(f"stream failures: {len(subs.failed)} (first: {subs.failed[0]})")
    return all(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--appends", type=int, default=10)
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    add_results_option(parser, "live")
    args = parser.parse_args(argv)
    with recorded(args.results, "bench.live", argv):
        ok = asyncio.run(run(args.subscribers, args.tokens, args.appends, args.pin))
        print("all goals MET" if ok else "some goals MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
