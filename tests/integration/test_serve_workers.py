"""`serve --workers 2` as real processes on loopback: one master, two workers on the same HTTP and
gRPC ports, connections spread over both, `/metrics` counting the whole group, a SIGKILLed worker
restarted, SIGTERM to the master finishing the work in flight and exiting 0.

Which worker served a request is read from its access line (each carries the worker's `pid`,
found by the request id); the workers' pids from the master's `worker N started` lines.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2 as catalog_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2_grpc as catalog_grpc
from aibridge_graphql.standin.eras import ApiEra
from tests.support.node_tools import require_executable
from tests.support.serve_process import (
    CLI,
    WAIT_S,
    ModelsGate,
    ServeProcess,
    gated_standin,
    poll_until,
    refuses_connections,
    serve,
    sigterm,
)

WORKERS = ("--workers", "2")
# Fresh connections until both workers have served one: the kernel hashes each connection to a
# worker, so 64 all landing on one of two has odds of 2^-63.
MAX_TRIES = 64
STARTED = re.compile(r'"message": "worker (\d+) started \(pid (\d+)\)"')
EXIT_MARGIN_S = 10.0


@pytest.fixture(scope="module")
def upstream(standin_url_for: Callable[[ApiEra], str]) -> str:
    # Supervising processes does not depend on the era: one is enough.
    return standin_url_for("sessions")


@pytest.fixture(scope="module")
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return {"Coder-Session-Token": tokens["admin"]}


@pytest.fixture(scope="module")
def workers(upstream: str) -> Iterator[ServeProcess]:
    """One `serve --workers 2` shared by the tests that only send requests; stopped with
    SIGTERM (which must exit 0), so the master removes its metrics directory."""
    with serve(upstream, args=WORKERS) as running:
        yield running
        sigterm(running)
        assert running.exit_code(WAIT_S) == 0, running.text()


def worker_pids(running: ServeProcess) -> dict[int, int]:
    """Worker index → pid, from the master's latest `worker N started` lines read so far."""
    pids: dict[int, int] = {}
    for line in running.lines:
        if match := STARTED.search(line):
            pids[int(match.group(1))] = int(match.group(2))
    return pids


def served_by(running: ServeProcess, request_id: str) -> int:
    """The pid on the access line of the request with this id (waited for, bounded)."""
    line = running.wait_for(re.compile(re.escape(f'"request_id": "{request_id}"'))).string
    record = json.loads(line)
    assert record["logger"] == "aibridge_graphql.access", record
    return int(record["pid"])


def graphql(
    base_url: str, admin: dict[str, str], operation: str, request_id: str
) -> dict[str, Any]:
    """`query <operation> { models }` on a fresh connection; its data."""
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": f"query {operation} {{ models }}"},
        headers={**admin, "X-Request-Id": request_id},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


def grpc_call(address: str, admin: dict[str, str], method: str, request_id: str) -> Any:
    """One CatalogService call on a fresh channel (so a fresh connection)."""
    metadata = (("coder-session-token", admin["Coder-Session-Token"]), ("x-request-id", request_id))
    with grpc.insecure_channel(address) as channel:
        stub: Any = catalog_grpc.CatalogServiceStub(channel)
        if method == "ListClients":
            return stub.ListClients(catalog_pb.ListClientsRequest(), metadata=metadata, timeout=30)
        return stub.ListModels(catalog_pb.ListModelsRequest(), metadata=metadata, timeout=30)


def until_every_worker_served(
    running: ServeProcess, pids: set[int], send: Callable[[str], object], prefix: str
) -> None:
    """Send requests (each on a new connection) until each of `pids` has served one; every
    request must be answered, by one of them."""
    seen: set[int] = set()
    for attempt in range(MAX_TRIES):
        request_id = f"{prefix}-{attempt}"
        send(request_id)
        pid = served_by(running, request_id)
        assert pid in pids, f"served by {pid}, not a worker of {pids}"
        seen.add(pid)
        if seen == pids:
            return
    raise AssertionError(f"{MAX_TRIES} connections all reached {seen}, not all of {pids}")


def test_both_workers_answer_graphql_and_grpc_on_the_same_ports(
    workers: ServeProcess, admin: dict[str, str], upstream: str
) -> None:
    pids = set(worker_pids(workers).values())
    assert len(pids) == 2, workers.text()
    expected = httpx.get(f"{upstream}/api/v2/aibridge/models", headers=admin).json()

    def over_http(request_id: str) -> None:
        assert graphql(workers.base_url, admin, "Spread", request_id) == {
            "data": {"models": expected}
        }

    def over_grpc(request_id: str) -> None:
        reply = grpc_call(workers.grpc_address, admin, "ListModels", request_id)
        assert list(reply.models) == expected

    until_every_worker_served(workers, pids, over_http, "spread-http")
    until_every_worker_served(workers, pids, over_grpc, "spread-grpc")


def counted(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def scrape_via_a_worker(running: ServeProcess, admin: dict[str, str], n: int) -> tuple[int, str]:
    """`/metrics` on a new connection, and the pid of the worker that answered it: a probe request
    on the same connection first names the worker (its access line)."""
    with httpx.Client(base_url=running.base_url, headers=admin, timeout=30) as client:
        request_id = f"probe-{n}"
        probe = client.post(
            "/graphql",
            json={"query": "query Probe { __typename }"},
            headers={"X-Request-Id": request_id},
        )
        assert probe.status_code == 200, probe.text
        scrape = client.get("/metrics")
        assert scrape.status_code == 200
        connection = {
            r.extensions["network_stream"].get_extra_info("client_addr") for r in (probe, scrape)
        }
        assert len(connection) == 1, "the scrape went over another connection than the probe"
    return served_by(running, request_id), scrape.text


def test_metrics_count_the_requests_of_every_worker_whichever_answers(
    workers: ServeProcess, admin: dict[str, str]
) -> None:
    pids = set(worker_pids(workers).values())
    # At least 12 requests, and as many more as it takes for both workers to have served some.
    served: set[int] = set()
    graphql_requests, grpc_requests = 0, 6
    while graphql_requests < 12 or served != pids:
        assert graphql_requests < MAX_TRIES, f"every request reached {served}, not both of {pids}"
        graphql(workers.base_url, admin, "Counted", f"counted-{graphql_requests}")
        served.add(served_by(workers, f"counted-{graphql_requests}"))
        graphql_requests += 1
    for n in range(grpc_requests):
        grpc_call(workers.grpc_address, admin, "ListClients", f"counted-grpc-{n}")
    scraped_by: set[int] = set()
    for n in itertools.count():
        assert n < MAX_TRIES, f"every scrape reached {scraped_by}, not both of {pids}"
        pid, text = scrape_via_a_worker(workers, admin, n)
        scraped_by.add(pid)
        operations = counted(
            text, "aibridge_graphql_operation_duration_seconds_count", operation="Counted"
        )
        calls = counted(
            text,
            "aibridge_grpc_server_handled_total",
            method="/aibridge.v1.CatalogService/ListClients",
            code="OK",
        )
        assert (operations, calls) == (graphql_requests, grpc_requests), (pid, text)
        # Nothing in flight but nothing is: the scrape itself is not counted.
        assert counted(text, "aibridge_http_requests_in_flight") == 0
        if scraped_by == pids:
            break
    # The merged exposition is as clean as a single process's.
    promtool = require_executable("promtool", "apt-get install prometheus (.ci/run installs it)")
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=WAIT_S
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def process_state(pid: int) -> str:
    """The state letter in /proc/PID/stat (`Z` for a zombie), `gone` once reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "gone"
    return stat[stat.rindex(")") + 2]


def test_a_killed_worker_is_restarted_and_the_port_keeps_answering(
    upstream: str, admin: dict[str, str]
) -> None:
    with serve(upstream, args=WORKERS) as running:
        before = worker_pids(running)
        victim, survivor = before[0], before[1]
        os.kill(victim, signal.SIGKILL)
        poll_until(lambda: process_state(victim) in ("Z", "gone"), "the worker dead")
        # Until the new worker listens the survivor answers everything.
        for n in range(10):
            graphql(running.base_url, admin, "Meanwhile", f"meanwhile-{n}")
            pid = served_by(running, f"meanwhile-{n}")
            assert pid in {survivor, *worker_pids(running).values()} - {victim}, pid
        restarted = running.wait_for(re.compile(r'"message": "worker 0 ready \(pid (\d+)\)"'))
        replacement = int(restarted.group(1))
        assert replacement not in (victim, survivor)
        warnings = [
            r
            for r in running.records()
            if r.get("level") == "WARNING" and r.get("logger") == "aibridge_graphql.workers"
        ]
        assert len(warnings) == 1, warnings
        assert warnings[0]["worker_pid"] == victim
        assert "signal SIGKILL" in str(warnings[0]["message"])
        until_every_worker_served(
            running,
            {survivor, replacement},
            lambda request_id: graphql(running.base_url, admin, "After", request_id),
            "after",
        )
        sigterm(running)
        assert running.exit_code(WAIT_S) == 0, running.text()


@pytest.fixture
def gate() -> ModelsGate:
    return ModelsGate()


@pytest.fixture
def held_upstream(standin_db_for: Callable[[ApiEra], Path], gate: ModelsGate) -> Iterator[str]:
    with gated_standin(standin_db_for("sessions"), gate) as url:
        yield url


def readyz_status(base_url: str) -> int:
    return httpx.get(f"{base_url}/readyz", timeout=5).status_code


def test_sigterm_to_the_master_finishes_the_work_in_flight_and_exits_0(
    held_upstream: str, gate: ModelsGate, admin: dict[str, str]
) -> None:
    drain, grace = 0.5, 20.0
    env = {"AIBRIDGE_SHUTDOWN_DRAIN_DELAY": str(drain), "AIBRIDGE_SHUTDOWN_GRACE": str(grace)}
    with (
        serve(held_upstream, env, WORKERS) as running,
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        expected = httpx.get(f"{held_upstream}/api/v2/aibridge/models", headers=admin).json()
        gate.hold = True
        http_call = pool.submit(graphql, running.base_url, admin, "InFlight", "in-flight")
        grpc_reply = pool.submit(
            grpc_call, running.grpc_address, admin, "ListModels", "in-flight-grpc"
        )
        poll_until(lambda: gate.held == 2, "both calls held upstream")
        sigterm(running)
        # Every worker stops listening; the master's own hold on the ports never listens.
        http_address = running.base_url.removeprefix("http://")
        poll_until(lambda: refuses_connections(http_address), "refusing HTTP connections")
        poll_until(lambda: refuses_connections(running.grpc_address), "refusing gRPC connections")
        assert running.process.poll() is None, "exited with work in flight"
        assert not http_call.done()
        assert not grpc_reply.done()
        gate.release.set()
        assert http_call.result(timeout=30) == {"data": {"models": expected}}
        assert list(grpc_reply.result(timeout=30).models) == expected
        assert running.exit_code(drain + grace + EXIT_MARGIN_S) == 0, running.text()
    assert "Traceback" not in running.text(), running.text()
    loud = [r for r in running.records() if r.get("level") not in ("DEBUG", "INFO")]
    assert not loud, loud
    stopped = [r for r in running.records() if r.get("message") == "stopped serving"]
    assert {r["pid"] for r in stopped} == set(worker_pids(running).values()), running.text()


def test_a_port_in_use_stops_the_master_before_any_worker_starts(upstream: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                CLI,
                "serve",
                "--upstream",
                upstream,
                "--port",
                str(port),
                "--grpc-port",
                "0",
                *WORKERS,
            ],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
    assert done.returncode == 1, done
    assert f"cannot listen on 127.0.0.1: [Errno 98] port {port} is in use" in done.stderr
    assert "worker" not in done.stdout + done.stderr
