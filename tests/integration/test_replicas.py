"""Three `serve` processes behind HAProxy (docker/haproxy.cfg), sharing one Redis: the response
cache and persisted queries are shared; a replica killed with SIGKILL under load fails only the
requests it was serving; a rolling restart with SIGTERM fails none. Real processes on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from aibridge_graphql.server.apq import sha256_hex
from aibridge_graphql.standin.eras import ApiEra
from tests.support.haproxy import DRAIN_DELAY_S, HAProxy, haproxy_binary, run_haproxy
from tests.support.redis_server import RedisServer, run_redis
from tests.support.replicas import Load, Outcome, Replicas
from tests.support.serve_process import ModelsGate, ServeProcess, gated_standin, sigterm

NAMES = ("r1", "r2", "r3")
GRACE_S = 15.0
EXIT_MARGIN_S = 5.0
DASHBOARD = """query Dashboard {
  sessions(first: 20) {
    totalCount
    nodes { sessionId lastPrompt initiator { username }
      threads(first: 3) { nodes { threadId model prompt } } }
  }
  models
}"""
MODELS = {"query": "query Models { models }"}
# Every request of the load goes upstream, where `/models` takes a little time: requests are in
# flight on every replica when one is stopped.
NO_STORE = {"Cache-Control": "no-store"}
MODELS_DELAY_S = 0.1
# Requests of the load between two steps of a test.
LOAD_STEP = 30


@dataclass
class Cluster:
    replicas: Replicas
    balancer: HAProxy
    redis: RedisServer

    def replica(self, name: str) -> ServeProcess:
        return self.replicas.running[name]

    def load(self, token: str) -> Load:
        headers = {"Coder-Session-Token": token, **NO_STORE}
        return Load(f"{self.balancer.base_url}/graphql", MODELS, headers)


@pytest.fixture(scope="module")
def _cluster(
    standin_db_for: Callable[[ApiEra], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    haproxy_binary()  # first: skip or fail before starting anything
    gate = ModelsGate(delay=MODELS_DELAY_S)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_redis())
        upstream = stack.enter_context(gated_standin(standin_db_for("sessions"), gate))
        env = {
            "AIBRIDGE_CACHE_ENABLED": "true",
            "AIBRIDGE_CACHE_SECRET": "replicas-test-secret",
            "AIBRIDGE_CACHE_URL": server.url,
            # This machine is slow at times: a Redis timeout would count as a miss.
            "AIBRIDGE_CACHE_TIMEOUT": "5",
            "AIBRIDGE_CACHE_TTL_SESSIONS": "600",
            "AIBRIDGE_CACHE_TTL_THREADS": "600",
            "AIBRIDGE_APQ_STORE": "redis",
            "AIBRIDGE_SHUTDOWN_DRAIN_DELAY": str(DRAIN_DELAY_S),
            "AIBRIDGE_SHUTDOWN_GRACE": str(GRACE_S),
        }
        replicas = Replicas(upstream, env, stack)
        replicas.start(NAMES)
        ports = {name: replicas.port(name) for name in NAMES}
        workdir = tmp_path_factory.mktemp("haproxy")
        balancer = stack.enter_context(run_haproxy(ports, workdir))
        yield Cluster(replicas, balancer, server)


@pytest.fixture
def cluster(_cluster: Cluster) -> Cluster:
    """Every replica running and UP in the balancer, Redis empty."""
    _cluster.replicas.heal(_cluster.balancer)
    for name in NAMES:
        _cluster.balancer.wait_state(name, "UP")
    with redis.Redis.from_url(_cluster.redis.url) as client:
        client.flushall()
    return _cluster


def admin(tokens: dict[str, str]) -> dict[str, str]:
    return {"Coder-Session-Token": tokens["admin"]}


def metric(replica: ServeProcess, name: str, **labels: str) -> float:
    """The sum of a replica's samples of `name` with `labels`, from its own `/metrics`."""
    text = httpx.get(f"{replica.base_url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def graphql(replica: ServeProcess, tokens: dict[str, str], body: dict[str, Any]) -> Any:
    response = httpx.post(f"{replica.base_url}/graphql", json=body, headers=admin(tokens))
    assert response.status_code == 200, response.text
    return response.json()


# A replica's upstream calls and cache lookups, counted per caller request only (the balancer's
# readiness probes are in neither).
LOOKUPS = "aibridge_response_cache_requests_total"
COUNTERS: dict[str, tuple[str, dict[str, str]]] = {
    "calls": ("aibridge_upstream_request_duration_seconds_count", {}),
    "hits": (LOOKUPS, {"result": "hit"}),
    "misses": (LOOKUPS, {"result": "miss"}),
}


def counters(replica: ServeProcess) -> dict[str, float]:
    return {key: metric(replica, name, **labels) for key, (name, labels) in COUNTERS.items()}


def grown(replica: ServeProcess, before: dict[str, float]) -> dict[str, float]:
    """How much each counter grew since `before`."""
    return {key: value - before[key] for key, value in counters(replica).items()}


def test_a_dashboard_cached_through_one_replica_is_a_hit_through_another(
    cluster: Cluster, tokens: dict[str, str]
) -> None:
    one, two = cluster.replica("r1"), cluster.replica("r2")
    before_one, before_two = counters(one), counters(two)
    first = graphql(one, tokens, {"query": DASHBOARD})
    assert "errors" not in first, first
    assert first["data"]["sessions"]["nodes"]
    assert first["data"]["models"]
    by_one = grown(one, before_one)
    assert by_one["misses"] > 0
    assert by_one["calls"] == by_one["misses"]  # each stored body cost one upstream call
    assert graphql(two, tokens, {"query": DASHBOARD}) == first
    # The second replica read every body from the entries the first one stored: the same
    # lookups, all hits, and no upstream call.
    assert grown(two, before_two) == {"calls": 0, "hits": by_one["misses"], "misses": 0}


def test_a_persisted_query_registered_on_one_replica_runs_on_another(
    cluster: Cluster, tokens: dict[str, str]
) -> None:
    query = MODELS["query"]
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}
    one, two = cluster.replica("r1"), cluster.replica("r2")
    missed = graphql(two, tokens, {"extensions": persisted})
    assert missed["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = graphql(one, tokens, {"query": query, "extensions": persisted})
    assert "errors" not in registered, registered
    hits = metric(two, "aibridge_graphql_apq_requests_total", result="hit")
    assert graphql(two, tokens, {"extensions": persisted}) == registered
    assert metric(two, "aibridge_graphql_apq_requests_total", result="hit") == hits + 1


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.status != 200]


def assert_clean_log(replica: ServeProcess) -> None:
    """Nothing above INFO and no traceback: a graceful stop is not an incident."""
    assert "Traceback" not in replica.drain(), replica.text()
    loud = [r for r in replica.records() if r.get("level") not in ("DEBUG", "INFO")]
    assert not loud, loud


def test_a_rolling_restart_with_sigterm_fails_no_request(
    cluster: Cluster, tokens: dict[str, str]
) -> None:
    windows: dict[str, tuple[float, float]] = {}
    with cluster.load(tokens["admin"]).running() as load:
        load.wait_for(LOAD_STEP)
        for name in NAMES:
            old = cluster.replica(name)
            # The new process starts while the old one drains; it joins once the old one left.
            new = cluster.replicas.spawn(name)
            sigterm(old)
            stopped = time.monotonic()
            cluster.balancer.wait_state(name, "DOWN", within=DRAIN_DELAY_S)
            assert old.exit_code(DRAIN_DELAY_S + GRACE_S + EXIT_MARGIN_S) == 0, old.text()
            assert_clean_log(old)
            cluster.replicas.replace(name, new, cluster.balancer)
            windows[name] = (stopped, time.monotonic())
            load.wait_for(LOAD_STEP // 3, since=windows[name][1], replica=name)
    outcomes = load.outcomes
    assert not failures(outcomes), (failures(outcomes), cluster.balancer.output.drain())
    # The load ran through every restart: requests were sent while each replica was away.
    for stopped, back in windows.values():
        assert any(stopped <= o.started < back for o in outcomes)
    finished = sum(
        o.replica == name and o.started < stopped < o.ended
        for name, (stopped, _) in windows.items()
        for o in outcomes
    )
    print(
        f"\n{len(outcomes)} requests through three restarts, none failed; {finished} were in "
        "flight on a replica when it got SIGTERM"
    )


def answered(replica: ServeProcess) -> set[str]:
    """The request ids of every request the replica answered (its access lines)."""
    replica.drain()
    return {str(r["request_id"]) for r in replica.records() if "status" in r}


def test_sigkill_fails_only_the_requests_in_flight_on_that_replica(
    cluster: Cluster, tokens: dict[str, str]
) -> None:
    victim = cluster.replica("r2")
    with cluster.load(tokens["admin"]).running() as load:
        load.wait_for(LOAD_STEP)
        assert {o.replica for o in load.outcomes} >= set(NAMES), "not every replica served"
        killed = time.monotonic()
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait(10)
        dead = time.monotonic()
        down = cluster.balancer.wait_state("r2", "DOWN")
        load.wait_for(LOAD_STEP, since=down)
    outcomes = load.outcomes
    failed = failures(outcomes)
    log = cluster.balancer.output.drain()
    survivors = answered(cluster.replica("r1")) | answered(cluster.replica("r3"))
    for outcome in failed:
        # Not answered before the kill, sent before HAProxy dropped r2: in flight on r2 at the
        # kill, or given to it in the moment before the health check could know.
        assert killed <= outcome.ended, (outcome, killed)
        assert outcome.started < down, (outcome, down)
        # On r2: neither other replica had it, and HAProxy logged it there if at all. What the
        # client gets is a 502, or its keep-alive connection closed unanswered (HAProxy's way to
        # let it retry a request on a reused server connection that got no byte back; it may
        # then log nothing, haproxy/haproxy#3414).
        assert outcome.request_id not in survivors, outcome
        lines = [line for line in log.splitlines() if f"{{{outcome.request_id}}}" in line]
        assert all(" gateways/r2 " in line for line in lines), (outcome, lines)
        if outcome.status == 502:
            assert len(lines) == 1, (outcome, lines)
        else:
            assert isinstance(outcome.status, str), outcome  # a transport error: no answer
    # Once r2 was down nothing went there and nothing failed; the survivors logged no error.
    after = [o for o in outcomes if o.started >= down]
    assert len(after) >= LOAD_STEP
    assert all(o.status == 200 and o.replica in ("r1", "r3") for o in after), failures(after)
    for name in ("r1", "r3"):
        assert_clean_log(cluster.replica(name))
    in_flight = sum(o.started < dead for o in failed)
    redispatched = cluster.balancer.stats("r2")["wredis"]
    print(
        f"\n{len(outcomes)} requests, {len(failed)} failed: {in_flight} sent before r2 died, "
        f"{len(failed) - in_flight} after; r2 down {down - dead:.2f}s after it died; "
        f"{redispatched} refused by r2 and redispatched"
    )
