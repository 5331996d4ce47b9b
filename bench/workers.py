"""`make bench`'s workers section: throughput of `serve --workers 1` and `--workers auto` at c16.

Issue 20's goal: on 2 cores, `--workers 2` serves the dashboard and the 25-row list (the views of
`make bench-peer`) at 1.6 times the requests per second of `--workers 1` or more. The upstream is
the in-memory replay of the stand-in (bench/replay.py: each distinct request fetched once, then
answered from memory) and the load is bench/peer.py's bounded aiohttp client, in this process.
Both share the gateway's cores here (using all of them is the point of workers), so the CPU each
took is printed beside the throughput; every response body is checked against a reference.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness import API, READY_TIMEOUT, Proc, free_port, spawn, stop, wait_ready
from bench.peer import DASHBOARD_OURS, LIST_OURS, Point, Target, run_load, tree_cpu_seconds
from bench.peer import wait_replay as wait_replay_url

WORKERS_GOAL = 1.6
GOAL_CORES = 2
CONCURRENCY = 16
VIEWS = {"dashboard": DASHBOARD_OURS, "25-row list": LIST_OURS}
LISTENING = re.compile(r"Gateway listening on (http://[^\s]+)/graphql")


@dataclass(frozen=True)
class WorkersPoint:
    """One load run of one view against one gateway, and what the rest of the machine spent."""

    view: str
    workers: str
    point: Point
    load_cpu_s: float
    replay_cpu_s: float


def workers_label(workers: str) -> str:
    """`auto (2)` for auto on two cores, else the number as given."""
    if workers == "auto":
        return f"auto ({len(os.sched_getaffinity(0))})"
    return workers


def own_cpu_seconds() -> float:
    """CPU this process (the load client) has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait_listening(proc: Proc) -> str:
    """The gateway's base URL, once it printed that it listens (a master does so once every
    worker listens)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if match := LISTENING.search(proc.log.read_text(errors="replace")):
            return match.group(1)
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)  # a pause between reads of the log, bounded by the deadline
    raise RuntimeError(f"{proc.name} did not listen:\n{proc.tail()}")


def reference_body(url: str, body: bytes, token: str) -> bytes:
    """The view's answer: 200, no `errors`, at least one item; every response must equal it."""
    headers = {"Coder-Session-Token": token, "Content-Type": "application/json"}
    response = httpx.post(url, content=body, headers=headers, timeout=60)
    data = response.json()
    if response.status_code != 200 or data.get("errors") or not data.get("data"):
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    return response.content


def measure_gateway(
    workers: str,
    replay: tuple[Proc, str],
    work: Path,
    cli: str,
    env: dict[str, str],
    token: str,
    timing: tuple[float, float],
) -> list[WorkersPoint]:
    """Start `serve --workers W` before the replay, drive each view at c16; `timing`: seconds
    and warm-up seconds per view."""
    replay_proc, replay_url = replay
    seconds, warmup = timing
    port = free_port()
    gateway = spawn(
        f"gateway --workers {workers}",
        [
            *(cli, "serve", "--upstream", replay_url, "--port", str(port)),
            *("--grpc-port", "0", "--workers", workers),
        ],
        work / f"gateway-workers-{workers}.log",
        None,
        env,
    )
    try:
        url = wait_listening(gateway) + "/graphql"
        points = []
        for view, query in VIEWS.items():
            body = json.dumps({"query": query}).encode()
            target = Target(url, body, reference_body(url, body, token), gateway.popen.pid)
            if warmup > 0:
                run_load(target, token, CONCURRENCY, warmup, {})
            load_before, replay_before = own_cpu_seconds(), tree_cpu_seconds(replay_proc.popen.pid)
            point = run_load(target, token, CONCURRENCY, seconds, {})
            points.append(
                WorkersPoint(
                    view,
                    workers_label(workers),
                    point,
                    own_cpu_seconds() - load_before,
                    tree_cpu_seconds(replay_proc.popen.pid) - replay_before,
                )
            )
        return points
    finally:
        stop(gateway)


def measure_workers(
    db: Path,
    work: Path,
    cli: str,
    env: dict[str, str],
    token: str,
    timing: tuple[float, float],
    workers: str = "auto",
) -> list[WorkersPoint]:
    """`--workers 1`, then `--workers W`, over one stand-in (sessions era, for the list) and its
    replay; every process on every core this one may use."""
    procs: list[Proc] = []
    auth = {"Coder-Session-Token": token}
    try:
        standin_port = free_port()
        standin_url = f"http://127.0.0.1:{standin_port}"
        standin = spawn(
            "stand-in",
            [
                *(cli, "standin", "--port", str(standin_port), "--db", str(db)),
                *("--api-era", "sessions"),
            ],
            work / "workers-standin.log",
            None,
            env,
        )
        procs.append(standin)
        wait_ready(standin, f"{standin_url}{API}/models", auth)
        replay = spawn(
            "replay",
            [sys.executable, "-m", "bench.replay", "--upstream", standin_url],
            work / "workers-replay.log",
            None,
            env,
        )
        procs.append(replay)
        replay_url = wait_replay_url(replay)
        points = []
        for count in ("1", workers):
            points += measure_gateway(count, (replay, replay_url), work, cli, env, token, timing)
        return points
    finally:
        for proc in reversed(procs):
            stop(proc)


def ratios(points: list[WorkersPoint]) -> dict[str, float]:
    """Per view: requests per second with the workers over those with one process (measured
    first)."""
    single: dict[str, float] = {}
    out: dict[str, float] = {}
    for p in points:
        if p.view not in single:
            single[p.view] = p.point.rps
        else:
            out[p.view] = p.point.rps / single[p.view] if single[p.view] else float("nan")
    return out


def report_workers(points: list[WorkersPoint], seconds: float) -> bool:
    """The table and the goal line; True unless the goal applies here and was missed."""
    cores = len(os.sched_getaffinity(0))
    print()
    print(
        f"Throughput with workers (c{CONCURRENCY}, {seconds:g} s a point, in-memory replay "
        f"upstream;\n{cores} cores shared by the gateway, the replay and this load client):"
    )
    print(
        f"{'view':<12} {'workers':>9} {'req/s':>8} {'p50/p99 ms':>14} {'CPU ms/req':>10} "
        f"{'cores used':>10} {'load CPU s':>10} {'replay CPU s':>12} {'bad':>4}"
    )
    for p in points:
        latency = f"{p.point.p50_ms:.1f}/{p.point.p99_ms:.1f}"
        print(
            f"{p.view:<12} {p.workers:>9} {p.point.rps:>8.1f} {latency:>14} "
            f"{p.point.cpu_ms:>10.2f} {p.point.core_share:>10.2f} {p.load_cpu_s:>10.2f} "
            f"{p.replay_cpu_s:>12.2f} {p.point.bad:>4}"
        )
    found = ratios(points)
    summary = "; ".join(f"{view} {ratio:.2f}x" for view, ratio in found.items())
    met = all(ratio >= WORKERS_GOAL for ratio in found.values())
    label = f"--workers {GOAL_CORES} throughput at least {WORKERS_GOAL}x --workers 1"
    if cores == GOAL_CORES:
        print(f"  [{'MET' if met else 'MISSED'}] {label} (issue 20): {summary}")
        return met
    print(f"  (the goal is for {GOAL_CORES} cores, this host has {cores}): {summary}")
    return True
