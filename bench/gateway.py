"""`make bench`: the gateway next to a client making the same REST calls itself, in one run.

It seeds a stand-in database, starts the stand-in and the gateway as separate processes on
127.0.0.1 (with `taskset` when possible: the stand-in alone on one core, the gateway beside this
load client, which only waits while the gateway works; `--layout shared` for one core), then for
realistic frontend views measures p50/p95 through the gateway and through a sequential REST client,
interleaved iteration by iteration. Upstream calls per GraphQL query are counted by a second
gateway process whose upstream is a counting proxy (so the timed gateway pays no proxy hop).
The same views through the gateway's gRPC face (bench/grpc_face.py, a grpc.aio client in this
process) are timed in the same interleaving and counted through the same proxy.
Then the `usage` query in both API eras (bench/usage.py): upstream calls, p50/p95, coverage.
Last, throughput at c16 with `serve --workers 1` and `--workers auto` (bench/workers.py), every
process free to use every core.
Targets are printed as met or MISSED; nothing is hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aibridge_graphql.standin.tokens import generate_token
from bench.grpc_face import (
    GrpcClient,
    GrpcView,
    graphql_digest,
    grpc_address,
    grpc_view,
)
from bench.harness import (
    API,
    GRPC_ANY_PORT,
    READY_TIMEOUT,
    RSS_TARGET_MB,
    CountingProxy,
    Pinning,
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

SINGLE_RESOURCE_TARGET = 1.2
DASHBOARD_TARGET = 2.0
# The context section: a frontend one network round trip away from the servers.
DEFAULT_CLIENT_RTT_MS = 10.0
RTT_ITERATIONS = 20

# ---------------------------------------------------------------------------------------------
# The views: one GraphQL query each, and the REST calls a frontend would make for it, in order.


@dataclass
class View:
    """A frontend view: its GraphQL query and the sequential REST calls that build the same data."""

    name: str
    graphql: str
    variables: dict[str, Any]
    rest_calls: Callable[[httpx.Client], int]


DASHBOARD = """
query Dashboard {
  sessions(first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      sessionId client models providers lastActiveAt lastPrompt threadCount
      initiator { id username name avatarUrl }
      tokenUsage { inputTokens outputTokens cacheReadInputTokens cacheWriteInputTokens }
      threads(first: 3) {
        nodes { threadId prompt model provider startedAt endedAt
                tokenUsage { inputTokens outputTokens } }
      }
    }
  }
}"""

SESSION_DETAIL = """
query SessionDetail($id: String!) {
  session(sessionId: $id) {
    sessionId client models providers startedAt endedAt lastActiveAt lastPrompt threadCount metadata
    initiator { username }
    tokenUsage { inputTokens outputTokens cacheReadInputTokens cacheWriteInputTokens metadata }
    threads(first: 20) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        threadId prompt model provider credentialKind credentialHint startedAt endedAt
        tokenUsage { inputTokens outputTokens }
        agenticActions {
          model thinking
          tokenUsage { inputTokens outputTokens }
          toolCalls { toolCallId tool serverUrl injected input createdAt }
        }
      }
    }
  }
}"""

INTERCEPTIONS_TABLE = """
query InterceptionsTable($filter: InterceptionFilter) {
  interceptions(first: 25, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      interceptionId client provider providerName model startedAt endedAt
      initiator { username }
      tokenUsages { inputTokens outputTokens }
      userPrompts { prompt }
      toolUsages { tool injected invocationError }
    }
  }
  models
  clients
}"""

MODELS = "query Models { models }"


def _get(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(API + path, params=params or None)
    if response.status_code != 200:
        raise RuntimeError(f"REST {path} answered {response.status_code}: {response.text[:200]}")
    return response.json()


def dashboard_rest(client: httpx.Client) -> int:
    """The list, then each session's first three threads, one after the other."""
    page = _get(client, "/sessions", limit=20)
    for session in page["sessions"]:
        _get(client, f"/sessions/{session['id']}", limit=3)
    return 1 + len(page["sessions"])


def session_detail_rest(session_id: str) -> Callable[[httpx.Client], int]:
    """The session's list entry (last prompt, thread count) and its first 20 threads."""

    def calls(client: httpx.Client) -> int:
        _get(client, "/sessions", q=f'session_id:"{session_id}"', limit=1)
        _get(client, f"/sessions/{session_id}", limit=20)
        return 2

    return calls


def interceptions_table_rest(q: str) -> Callable[[httpx.Client], int]:
    """The filtered page, then the filter drop-downs (models, clients)."""

    def calls(client: httpx.Client) -> int:
        _get(client, "/interceptions", q=q, limit=25)
        _get(client, "/models")
        _get(client, "/clients")
        return 3

    return calls


def models_rest(client: httpx.Client) -> int:
    """One call."""
    _get(client, "/models")
    return 1


# ---------------------------------------------------------------------------------------------
# Measuring.


@dataclass
class Result:
    """The measurements of one view."""

    view: View
    gateway_calls: int
    rest_calls: int
    gateway_ms: list[float]
    rest_ms: list[float]

    @property
    def ratio(self) -> float:
        """REST p50 / gateway p50: above 1 means the gateway is faster."""
        return statistics.median(self.rest_ms) / statistics.median(self.gateway_ms)


def graphql(client: httpx.Client, view: View) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": view.graphql, "variables": view.variables})
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{view.name}: GraphQL errors: {json.dumps(body)[:500]}")
    return body


def count_gateway_calls(counting: httpx.Client, proxy: CountingProxy, view: View) -> int:
    """Upstream requests one execution of the view's query makes (through the counting proxy)."""
    before = len(proxy.calls)
    graphql(counting, view)
    return len(proxy.calls) - before


def measure(
    view: View,
    gateway: httpx.Client,
    rest: httpx.Client,
    counted_calls: int,
    iterations: int,
    warmup: int,
) -> Result:
    for _ in range(warmup):
        graphql(gateway, view)
        view.rest_calls(rest)
    gateway_ms: list[float] = []
    rest_ms: list[float] = []
    rest_calls = 0
    # Interleaved, so drift (other load, CPU frequency) hits both sides alike.
    for _ in range(iterations):
        start = time.perf_counter()
        graphql(gateway, view)
        gateway_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        rest_calls = view.rest_calls(rest)
        rest_ms.append((time.perf_counter() - start) * 1000)
    return Result(view, counted_calls, rest_calls, gateway_ms, rest_ms)


def measure_all(
    views: list[View],
    gateway: httpx.Client,
    rest: httpx.Client,
    calls: dict[str, int],
    iterations: int,
    warmup: int,
) -> list[Result]:
    """`measure` every view, announcing each."""
    results = []
    for view in views:
        print(f"  measuring {view.name}…", flush=True)
        results.append(measure(view, gateway, rest, calls[view.name], iterations, warmup))
    return results


def network_delay(rtt_ms: float) -> dict[str, list[Callable[[httpx.Request], None]]]:
    """httpx event hooks making every request of a client pay one network round trip first."""

    def wait(_: httpx.Request) -> None:
        time.sleep(rtt_ms / 1000)  # the emulated round trip, not a wait for a server

    return {"request": [wait]}


def pick_views(rest: httpx.Client) -> list[View]:
    """The four views (three without `GET /interceptions`), with a real multi-thread session
    and a filter that matches rows."""
    sessions = _get(rest, "/sessions", limit=100)["sessions"]
    if not sessions:
        raise RuntimeError("the seeded stand-in has no sessions")
    detail = max(sessions, key=lambda s: s.get("threads", 0))
    views = [
        View("sessions dashboard", DASHBOARD, {}, dashboard_rest),
        View(
            "session detail",
            SESSION_DETAIL,
            {"id": detail["id"]},
            session_detail_rest(detail["id"]),
        ),
    ]
    # Today's Coder (the AI Gateway era) has no `GET /interceptions`, hence no such view.
    found = rest.get(API + "/interceptions", params={"limit": 1})
    if found.status_code == 200:
        recent = found.json()["results"]
        provider = recent[0]["provider"] if recent else "anthropic"
        views.append(
            View(
                "interceptions table",
                INTERCEPTIONS_TABLE,
                {"filter": {"provider": provider}},
                interceptions_table_rest(f"provider:{provider}"),
            )
        )
    views.append(View("single resource (models)", MODELS, {}, models_rest))
    return views


# ---------------------------------------------------------------------------------------------
# Reporting.


def print_table(results: list[Result]) -> None:
    """One row per view: calls on each side, p50/p95 on each side, and their ratio."""
    print()
    print(
        f"{'view':<26} {'upstream calls':>15} {'REST calls':>10} "
        f"{'gateway p50/p95 ms':>19} {'REST p50/p95 ms':>17} {'REST/gw p50':>12}"
    )
    for r in results:
        gateway = f"{statistics.median(r.gateway_ms):.2f}/{percentile(r.gateway_ms, 0.95):.2f}"
        rest = f"{statistics.median(r.rest_ms):.2f}/{percentile(r.rest_ms, 0.95):.2f}"
        print(
            f"{r.view.name:<26} {r.gateway_calls:>15} {r.rest_calls:>10} "
            f"{gateway:>19} {rest:>17} {r.ratio:>11.2f}×"
        )


def report(results: list[Result], rss: float, pinning: Pinning) -> bool:
    """The loopback table and the targets, each met or MISSED; True when all are met."""
    print_table(results)
    by_name = {r.view.name: r for r in results}
    single = by_name["single resource (models)"]
    dashboard = by_name["sessions dashboard"]
    single_factor = statistics.median(single.gateway_ms) / statistics.median(single.rest_ms)
    checks = [
        (
            f"single-resource query p50 within {SINGLE_RESOURCE_TARGET}× of the direct REST call",
            f"{single_factor:.2f}× the REST p50",
            single_factor <= SINGLE_RESOURCE_TARGET,
        ),
        (
            f"sessions dashboard at least {DASHBOARD_TARGET}× faster than the sequential client",
            f"sequential REST p50 / gateway p50 = {dashboard.ratio:.2f}",
            dashboard.ratio >= DASHBOARD_TARGET,
        ),
        (
            f"gateway RSS after the run under {RSS_TARGET_MB:.0f} MB",
            f"{rss:.1f} MB",
            rss < RSS_TARGET_MB,
        ),
    ]
    print()
    print("Targets (ratios from this run):")
    for label, value, met in checks:
        print(f"  [{'met' if met else 'MISSED'}] {label}: {value}")
    print()
    print(
        "Upstream calls are counted by a second gateway process whose upstream is a counting "
        "proxy;\nREST calls are those the sequential client made for the same view. "
        f"Pinning: {pinning.describe()}."
    )
    return all(met for _, _, met in checks)


# ---------------------------------------------------------------------------------------------
# The gRPC face: the same views through `aibridge.v1`, timed beside GraphQL and REST.


def alive(proc: Proc) -> Callable[[], bool]:
    """True while the process runs (for `grpc_address`, which reads its log)."""
    return lambda: proc.popen.poll() is None


def count_grpc_calls(client: GrpcClient, proxy: CountingProxy, view: GrpcView) -> int:
    """Upstream requests one execution of the view's gRPC calls makes (through the proxy)."""
    before = len(proxy.calls)
    client.answer(view)
    return len(proxy.calls) - before


def same_answers(
    views: list[View], twins: list[GrpcView], graphql_client: httpx.Client, grpc: GrpcClient
) -> dict[str, bool]:
    """Per view: whether GraphQL and gRPC answered with the same ids, counts and names."""
    return {
        view.name: graphql_digest(view.name, graphql(graphql_client, view)) == grpc.answer(twin)
        for view, twin in zip(views, twins, strict=True)
    }


@dataclass
class Sides:
    """The three clients timed against each other: GraphQL, gRPC, sequential REST."""

    graphql: httpx.Client
    grpc: GrpcClient
    rest: httpx.Client


@dataclass
class GrpcResult:
    """The gRPC measurements of one view."""

    view: GrpcView
    upstream_calls: int
    grpc_ms: list[float]


def measure_with_grpc(
    view: View,
    twin: GrpcView,
    sides: Sides,
    counted: tuple[int, int],
    iterations: int,
    warmup: int,
) -> tuple[Result, GrpcResult]:
    """`measure`, with the gRPC twin timed between the GraphQL query and the REST calls."""
    for _ in range(warmup):
        graphql(sides.graphql, view)
        sides.grpc.timed(twin)
        view.rest_calls(sides.rest)
    gateway_ms: list[float] = []
    grpc_ms: list[float] = []
    rest_ms: list[float] = []
    rest_calls = 0
    # Interleaved, so drift (other load, CPU frequency) hits the three sides alike.
    for _ in range(iterations):
        start = time.perf_counter()
        graphql(sides.graphql, view)
        gateway_ms.append((time.perf_counter() - start) * 1000)
        grpc_ms.append(sides.grpc.timed(twin))
        start = time.perf_counter()
        rest_calls = view.rest_calls(sides.rest)
        rest_ms.append((time.perf_counter() - start) * 1000)
    graphql_calls, grpc_calls = counted
    return (
        Result(view, graphql_calls, rest_calls, gateway_ms, rest_ms),
        GrpcResult(twin, grpc_calls, grpc_ms),
    )


def measure_all_with_grpc(
    views: list[View],
    twins: list[GrpcView],
    sides: Sides,
    calls: dict[str, int],
    grpc_calls: dict[str, int],
    iterations: int,
    warmup: int,
) -> tuple[list[Result], list[GrpcResult]]:
    """`measure_with_grpc` every view, announcing each."""
    results: list[Result] = []
    grpc_results: list[GrpcResult] = []
    for view, twin in zip(views, twins, strict=True):
        print(f"  measuring {view.name} (GraphQL, gRPC, REST)…", flush=True)
        counted = (calls[view.name], grpc_calls[twin.name])
        result, grpc_result = measure_with_grpc(view, twin, sides, counted, iterations, warmup)
        results.append(result)
        grpc_results.append(grpc_result)
    return results, grpc_results


def print_grpc_table(
    grpc_results: list[GrpcResult],
    results: list[Result],
    heading: str = "The gRPC face, timed in the same interleaved run as the table above:",
) -> None:
    """One row per view: gRPC calls and their upstream calls next to GraphQL's, and the p50/p95
    of the three sides from the same interleaved run."""
    print()
    print(heading)
    print(
        f"{'view':<26} {'gRPC calls':>10} {'upstream gRPC/GraphQL':>21} "
        f"{'gRPC p50/p95 ms':>17} {'GraphQL p50/p95 ms':>19} {'REST p50/p95 ms':>17} "
        f"{'REST/gRPC p50':>14}"
    )
    for g, r in zip(grpc_results, results, strict=True):
        grpc = f"{statistics.median(g.grpc_ms):.2f}/{percentile(g.grpc_ms, 0.95):.2f}"
        gateway = f"{statistics.median(r.gateway_ms):.2f}/{percentile(r.gateway_ms, 0.95):.2f}"
        rest = f"{statistics.median(r.rest_ms):.2f}/{percentile(r.rest_ms, 0.95):.2f}"
        upstream = f"{g.upstream_calls}/{r.gateway_calls}"
        ratio = statistics.median(r.rest_ms) / statistics.median(g.grpc_ms)
        print(
            f"{g.view.name:<26} {g.view.rpcs:>10} {upstream:>21} "
            f"{grpc:>17} {gateway:>19} {rest:>17} {ratio:>13.2f}×"
        )


def report_grpc(
    grpc_results: list[GrpcResult], results: list[Result], same: dict[str, bool]
) -> bool:
    """The gRPC table and its targets, each met or MISSED; True when all are met."""
    print_grpc_table(grpc_results, results)
    unequal = [
        f"{g.view.name} {g.upstream_calls} vs {r.gateway_calls}"
        for g, r in zip(grpc_results, results, strict=True)
        if g.upstream_calls != r.gateway_calls
    ]
    differing = [name for name, equal in same.items() if not equal]
    checks = [
        (
            "upstream calls per gRPC call equal GraphQL's for the same view",
            "equal for all views" if not unequal else "differ: " + "; ".join(unequal),
            not unequal,
        ),
        (
            "gRPC answers carry the same ids, counts and names as GraphQL's",
            "same for all views" if not differing else "differ: " + ", ".join(differing),
            not differing,
        ),
    ]
    print()
    print("gRPC targets (from this run):")
    for label, value, met in checks:
        print(f"  [{'met' if met else 'MISSED'}] {label}: {value}")
    print()
    print(
        "gRPC calls go over one grpc.aio channel from this process (a view's several calls at "
        "once);\ntheir upstream calls are counted through the same counting proxy as GraphQL's."
    )
    return all(met for _, _, met in checks)


def measure_far_with_grpc(
    args: argparse.Namespace,
    views: list[View],
    twins: list[GrpcView],
    counts: tuple[dict[str, int], dict[str, int]],
    urls: tuple[str, int, str],
    token: str,
) -> tuple[list[Result], list[GrpcResult]]:
    """The views with every client call (gRPC, like HTTP) first paying one emulated round trip.

    `urls`: the stand-in's, the gateway's port, its gRPC address."""
    print(f"  and with a {args.client_rtt_ms:g} ms client round trip:", flush=True)
    standin_url, gateway_port, gateway_grpc = urls
    hooks = network_delay(args.client_rtt_ms)
    auth = {"Coder-Session-Token": token}
    with (
        httpx.Client(base_url=standin_url, headers=auth, timeout=30, event_hooks=hooks) as rest,
        httpx.Client(
            base_url=f"http://127.0.0.1:{gateway_port}", headers=auth, timeout=30, event_hooks=hooks
        ) as gateway_client,
        GrpcClient(gateway_grpc, token, args.client_rtt_ms) as grpc_client,
    ):
        iterations = min(args.iterations, RTT_ITERATIONS)
        sides = Sides(gateway_client, grpc_client, rest)
        calls, grpc_calls = counts
        return measure_all_with_grpc(views, twins, sides, calls, grpc_calls, iterations, warmup=2)


def report_far_grpc(grpc_results: list[GrpcResult], results: list[Result], rtt_ms: float) -> None:
    """The gRPC rows of the context table (a view's concurrent calls pay the round trip once)."""
    print_grpc_table(
        grpc_results,
        results,
        f"The gRPC face with the same {rtt_ms:g} ms round trip per call (a view's concurrent "
        "calls pay it once):",
    )


# ---------------------------------------------------------------------------------------------


def report_far(results: list[Result], rtt_ms: float) -> None:
    """The context table: where a frontend pays a network round trip per HTTP request."""
    print()
    print(
        f"Context, not a target: the same views when every client request first pays a {rtt_ms:g} "
        "ms\nnetwork round trip (a frontend away from its servers), while the gateway still "
        "reaches\nthe upstream over loopback (as when it runs next to Coder):"
    )
    print_table(results)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--interceptions", type=int, default=20_000)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument(
        "--client-rtt-ms",
        type=float,
        default=DEFAULT_CLIENT_RTT_MS,
        help="emulated frontend round trip for the context table (0: skip it)",
    )
    parser.add_argument(
        "--usage-iterations",
        type=int,
        default=10,
        help="iterations of the usage query per API era (0: skip that section)",
    )
    parser.add_argument(
        "--layout",
        choices=("apart", "shared"),
        default="apart",
        help="apart: the stand-in alone on one core, the gateway beside the load client "
        "(default); shared: the gateway on the stand-in's core",
    )
    parser.add_argument(
        "--workers-seconds",
        type=float,
        default=10.0,
        help="load duration per point of the workers section (0: skip that section)",
    )
    parser.add_argument(
        "--workers",
        type=workers_option,
        default="auto",
        help="the --workers compared with --workers 1 in that section (a number, or auto)",
    )
    add_results_option(parser, "gateway")
    return parser.parse_args(argv)


def workers_option(value: str) -> str:
    """`auto` or a whole number from 2, as `serve --workers` takes it."""
    text = value.strip().lower()
    if text == "auto" or (text.isascii() and text.isdigit() and int(text) >= 2):
        return text
    raise argparse.ArgumentTypeError("a whole number from 2, or auto")


def run(args: argparse.Namespace) -> bool:
    cores = os.sched_getaffinity(0)
    pinning = choose_pinning(not args.no_pin, args.layout)
    if pinning.client is not None:
        os.sched_setaffinity(0, {pinning.client})
    env = {**os.environ, "AIBRIDGE_LOG_LEVEL": "WARNING"}
    procs: list[Proc] = []
    cli = cli_path()
    admin_token = generate_token()
    auth = {"Coder-Session-Token": admin_token}
    with tempfile.TemporaryDirectory(prefix="aibridge-bench-") as tmp:
        work = Path(tmp)
        db = work / "standin.db"
        started = time.perf_counter()
        seed(db, args.interceptions, admin_token)
        print(
            f"Seeded {args.interceptions} interceptions in {time.perf_counter() - started:.1f}s; "
            f"{args.iterations} iterations per view after {args.warmup} warm-up; "
            f"{pinning.describe()}."
        )
        try:
            standin_port, gateway_port, counting_port = free_port(), free_port(), free_port()
            standin_url = f"http://127.0.0.1:{standin_port}"
            standin = spawn(
                "stand-in",
                [
                    cli,
                    "standin",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(standin_port),
                    "--db",
                    str(db),
                    "--api-era",  # the views include the interceptions table
                    "sessions",
                ],
                work / "standin.log",
                pinning.upstream,
                env,
            )
            procs.append(standin)
            wait_ready(standin, f"{standin_url}{API}/models", auth)
            gateway = spawn(
                "gateway",
                [
                    cli,
                    "serve",
                    "--upstream",
                    standin_url,
                    "--port",
                    str(gateway_port),
                    *GRPC_ANY_PORT,
                ],
                work / "gateway.log",
                pinning.gateway,
                env,
            )
            procs.append(gateway)
            wait_ready(gateway, f"http://127.0.0.1:{gateway_port}/readyz")
            gateway_grpc = grpc_address(gateway.log, alive(gateway), READY_TIMEOUT)
            with CountingProxy(standin_url).running() as proxy:
                counting = spawn(
                    "counting gateway",
                    [
                        cli,
                        "serve",
                        "--upstream",
                        proxy.url,
                        "--port",
                        str(counting_port),
                        *GRPC_ANY_PORT,
                    ],
                    work / "counting.log",
                    pinning.gateway,
                    env,
                )
                procs.append(counting)
                wait_ready(counting, f"http://127.0.0.1:{counting_port}/readyz")
                counting_grpc = grpc_address(counting.log, alive(counting), READY_TIMEOUT)
                with (
                    httpx.Client(base_url=standin_url, headers=auth, timeout=30) as rest,
                    httpx.Client(
                        base_url=f"http://127.0.0.1:{gateway_port}", headers=auth, timeout=30
                    ) as gateway_client,
                    httpx.Client(
                        base_url=f"http://127.0.0.1:{counting_port}", headers=auth, timeout=30
                    ) as counting_client,
                    GrpcClient(counting_grpc, admin_token) as counting_grpc_client,
                    GrpcClient(gateway_grpc, admin_token) as grpc_client,
                ):
                    views = pick_views(rest)
                    calls = {v.name: count_gateway_calls(counting_client, proxy, v) for v in views}
                    twins = [grpc_view(v.name, v.variables) for v in views]
                    grpc_calls = {
                        t.name: count_grpc_calls(counting_grpc_client, proxy, t) for t in twins
                    }
                    same = same_answers(views, twins, counting_client, counting_grpc_client)
                    stop(counting)
                    results, grpc_results = measure_all_with_grpc(
                        views,
                        twins,
                        Sides(gateway_client, grpc_client, rest),
                        calls,
                        grpc_calls,
                        args.iterations,
                        args.warmup,
                    )
                    far, far_grpc = (
                        measure_far_with_grpc(
                            args,
                            views,
                            twins,
                            (calls, grpc_calls),
                            (standin_url, gateway_port, gateway_grpc),
                            admin_token,
                        )
                        if args.client_rtt_ms > 0
                        else ([], [])
                    )
            rss = rss_mb(gateway.popen.pid)
            ok = report(results, rss, pinning)
            ok = report_grpc(grpc_results, results, same) and ok
            if far:
                report_far(far, args.client_rtt_ms)
                report_far_grpc(far_grpc, far, args.client_rtt_ms)
        finally:
            for proc in reversed(procs):
                stop(proc)
        if args.usage_iterations > 0:
            # After the views' processes are gone: each era's stand-in opens the same database.
            from bench.usage import measure_usage, report_usage

            usage = measure_usage(
                db, work, cli, env, pinning, auth, args.usage_iterations, min(args.warmup, 2)
            )
            report_usage(usage)
        if args.workers_seconds > 0:
            from bench.workers import measure_workers, report_workers

            # Every core again: the workers are there to use them all.
            os.sched_setaffinity(0, cores)
            timing = (args.workers_seconds, min(args.warmup, 2))
            points = measure_workers(db, work, cli, env, admin_token, timing, args.workers)
            ok = report_workers(points, args.workers_seconds) and ok
        return ok


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with recorded(args.results, "bench.gateway", argv):
        ok = run(args)
        # Missed targets are reported above; the run itself succeeded either way.
        print("All targets met." if ok else "Some targets were MISSED (see above).")


if __name__ == "__main__":
    main()
