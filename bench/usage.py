"""`make bench`'s usage section: the `usage` query over the seeded stand-in, in both API eras.

For each era it starts a stand-in on the bench's database (`--api-era sessions`, then
`ai-gateway`), a gateway before it, and a counting gateway before a counting proxy; it prints the
upstream calls one query makes, p50/p95 through the gateway, and what the answer covered
(`complete`, what it scanned). The sessions era reads `GET /interceptions` (1000 a call); the AI
Gateway era has no such route, so it walks `GET /sessions` and one `GET /sessions/{id}` per
session, which over 20,000 interceptions is far past the default upstream-call budget (100):
that answer is partial and says so, with the gateway's default settings, as an operator gets it.
The timed runs go first and the counted one last, after which the stand-in is stopped at once
(requests the gateway abandoned at its deadline may still be running there).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    GRPC_ANY_PORT,
    CountingProxy,
    Pinning,
    Proc,
    free_port,
    percentile,
    spawn,
    stop,
    wait_ready,
)

ERAS = {"sessions": "/api/v2/aibridge", "ai-gateway": "/api/v2/ai-gateway"}
USAGE = """
query Usage {
  usage(groupBy: [USER, MODEL]) {
    complete incompleteReason source
    scanned { upstreamCalls interceptions sessions threads }
    totals { totalTokens cost { micros complete } }
    rows { userId model totalTokens cost { micros } }
  }
}
"""


@dataclass
class UsageResult:
    """One era's measurements and what its answer covered."""

    era: str
    upstream_calls: int
    gateway_ms: list[float]
    answer: dict[str, Any]


def _usage(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": USAGE})
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"usage: GraphQL errors: {str(body)[:500]}")
    usage: dict[str, Any] = body["data"]["usage"]
    return usage


def _measure_era(
    era: str,
    db: Path,
    work: Path,
    cli: str,
    env: dict[str, str],
    pinning: Pinning,
    auth: dict[str, str],
    iterations: int,
    warmup: int,
) -> UsageResult:
    procs: list[Proc] = []
    try:
        standin_port, gateway_port, counting_port = free_port(), free_port(), free_port()
        standin_url = f"http://127.0.0.1:{standin_port}"
        host = ["--host", "127.0.0.1", "--port"]
        standin = spawn(
            f"stand-in ({era})",
            [cli, "standin", *host, str(standin_port), "--db", str(db), "--api-era", era],
            work / f"usage-standin-{era}.log",
            pinning.upstream,
            env,
        )
        procs.append(standin)
        wait_ready(standin, f"{standin_url}{ERAS[era]}/models", auth)
        serve = [cli, "serve", *GRPC_ANY_PORT, "--port"]
        gateway = spawn(
            f"gateway ({era})",
            [*serve, str(gateway_port), "--upstream", standin_url],
            work / f"usage-gateway-{era}.log",
            pinning.gateway,
            env,
        )
        procs.append(gateway)
        wait_ready(gateway, f"http://127.0.0.1:{gateway_port}/readyz")
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        with httpx.Client(base_url=gateway_url, headers=auth, timeout=120) as client:
            for _ in range(warmup):
                _usage(client)
            timings: list[float] = []
            answer: dict[str, Any] = {}
            for _ in range(iterations):
                start = time.perf_counter()
                answer = _usage(client)
                timings.append((time.perf_counter() - start) * 1000)
        stop(gateway)
        with CountingProxy(standin_url).running() as proxy:
            counting = spawn(
                f"counting gateway ({era})",
                [*serve, str(counting_port), "--upstream", proxy.url],
                work / f"usage-counting-{era}.log",
                pinning.gateway,
                env,
            )
            procs.append(counting)
            wait_ready(counting, f"http://127.0.0.1:{counting_port}/readyz")
            counting_url = f"http://127.0.0.1:{counting_port}"
            with httpx.Client(base_url=counting_url, headers=auth, timeout=120) as client:
                before = len(proxy.calls)
                _usage(client)
                calls = len(proxy.calls) - before
            stop(counting)
            # Calls the gateway abandoned at its deadline may still be running upstream: stop
            # the stand-in too, so that the proxy's in-flight requests end now.
            stop(standin)
        return UsageResult(era, calls, timings, answer)
    finally:
        for proc in reversed(procs):
            stop(proc)


def measure_usage(
    db: Path,
    work: Path,
    cli: str,
    env: dict[str, str],
    pinning: Pinning,
    auth: dict[str, str],
    iterations: int,
    warmup: int,
) -> list[UsageResult]:
    """The usage query in each era, one era's processes at a time (they share the database)."""
    results = []
    for era in ERAS:
        print(f"  measuring usage ({era} era)…", flush=True)
        results.append(
            _measure_era(era, db, work, cli, env, pinning, auth, max(1, iterations), warmup)
        )
    return results


def report_usage(results: list[UsageResult]) -> None:
    """The usage table: calls, p50/p95 and what each answer covered (no target: context)."""
    print()
    print("Usage query (groupBy: [USER, MODEL]) over the same stand-in, default settings:")
    header = (
        f"{'era':<11} {'source':<13} {'upstream calls':>14} {'p50 ms':>9} {'p95 ms':>9}  "
        f"{'complete':<8} scanned"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        answer = result.answer
        scanned = answer["scanned"]
        what = (
            f"{scanned['interceptions']} interceptions"
            if answer["source"] == "INTERCEPTIONS"
            else f"{scanned['sessions']} sessions, {scanned['threads']} threads"
        )
        print(
            f"{result.era:<11} {answer['source'].lower():<13} {result.upstream_calls:>14} "
            f"{statistics.median(result.gateway_ms):>9.1f} "
            f"{percentile(result.gateway_ms, 0.95):>9.1f}  "
            f"{str(answer['complete']).lower():<8} {what}"
        )
        if not answer["complete"]:
            print(f"{'':<11} stopped: {answer['incompleteReason']}")
