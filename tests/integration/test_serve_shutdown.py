"""`serve` stops gracefully on SIGTERM: not ready first, listeners closed, work in flight
finished within the grace (then cancelled cleanly), exit 0. Real processes on loopback."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2 as catalog_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2_grpc as catalog_grpc
from aibridge_graphql.server.shutdown import SHUTTING_DOWN
from aibridge_graphql.standin.eras import ApiEra
from tests.support.serve_process import (
    ModelsGate,
    ServeProcess,
    gated_standin,
    poll_until,
    refuses_connections,
    serve,
    sigterm,
)

MODELS = {"query": "{ models }"}
# What exiting may take beyond the drain delay and the grace: closing pools, the interpreter.
EXIT_MARGIN_S = 5.0


@pytest.fixture
def gate() -> ModelsGate:
    return ModelsGate()


@pytest.fixture
def standin(standin_db_for: Callable[[ApiEra], Path], gate: ModelsGate) -> Iterator[str]:
    with gated_standin(standin_db_for("sessions"), gate) as url:
        yield url


def admin(tokens: dict[str, str]) -> dict[str, str]:
    return {"Coder-Session-Token": tokens["admin"]}


def health_status(address: str) -> Any:
    with grpc.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status


def readyz_status(base_url: str) -> int:
    return httpx.get(f"{base_url}/readyz", timeout=5).status_code


def assert_clean_log(running: ServeProcess) -> None:
    """Nothing above INFO and no traceback: a graceful stop is not an incident."""
    assert "Traceback" not in running.text(), running.text()
    loud = [r for r in running.records() if r.get("level") not in ("DEBUG", "INFO")]
    assert not loud, loud


def watch_health(address: str, first: threading.Event) -> tuple[list[Any], grpc.StatusCode]:
    """Watch the server's health until the stream ends (`first` set at the first status): the
    statuses seen and the end code."""
    statuses: list[Any] = []
    with grpc.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        stream = stub.Watch(health_pb2.HealthCheckRequest(), timeout=30)
        try:
            for reply in stream:
                statuses.append(reply.status)
                first.set()
        except grpc.RpcError as error:
            return statuses, error.code()
    return statuses, grpc.StatusCode.OK


def models_over_http(base_url: str, tokens: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base_url}/graphql", json=MODELS, headers=admin(tokens), timeout=30)


def models_over_grpc(address: str, tokens: dict[str, str]) -> Any:
    with grpc.insecure_channel(address) as channel:
        return catalog_grpc.CatalogServiceStub(channel).ListModels(
            catalog_pb.ListModelsRequest(),
            metadata=(("coder-session-token", tokens["admin"]),),
            timeout=30,
        )


def test_sigterm_finishes_in_flight_work_after_turning_unready(
    standin: str, gate: ModelsGate, tokens: dict[str, str]
) -> None:
    # A drain long enough for the polls below to see the 503 while still listening.
    env = {"AIBRIDGE_SHUTDOWN_DRAIN_DELAY": "2", "AIBRIDGE_SHUTDOWN_GRACE": "20"}
    with (
        serve(standin, env) as running,
        concurrent.futures.ThreadPoolExecutor(3) as pool,
    ):
        assert readyz_status(running.base_url) == 200
        assert health_status(running.grpc_address) == health_pb2.HealthCheckResponse.SERVING
        expected = httpx.get(f"{standin}/api/v2/aibridge/models", headers=admin(tokens)).json()
        gate.hold = True
        http_call = pool.submit(models_over_http, running.base_url, tokens)
        grpc_call = pool.submit(models_over_grpc, running.grpc_address, tokens)
        watching = threading.Event()
        watched = pool.submit(watch_health, running.grpc_address, watching)
        poll_until(lambda: gate.held == 2, "both calls held upstream")
        assert watching.wait(30), "the Watch stream never started"
        sigterm(running)
        started = time.monotonic()
        poll_until(lambda: readyz_status(running.base_url) == 503, "unready over HTTP")
        poll_until(
            lambda: (
                health_status(running.grpc_address) == health_pb2.HealthCheckResponse.NOT_SERVING
            ),
            "NOT_SERVING over gRPC",
        )
        http_address = running.base_url.removeprefix("http://")
        poll_until(lambda: refuses_connections(http_address), "refusing HTTP connections")
        poll_until(lambda: refuses_connections(running.grpc_address), "refusing gRPC connections")
        # The process still runs: the held calls are in flight.
        assert running.process.poll() is None
        assert not http_call.done()
        assert not grpc_call.done()
        gate.release.set()
        response = http_call.result(timeout=30)
        assert response.status_code == 200, response.text
        assert response.json() == {"data": {"models": expected}}
        assert list(grpc_call.result(timeout=30).models) == expected
        assert running.exit_code(30) == 0, running.text()
        # A Watch stream is no work in flight: it ended at the signal and held nothing open.
        assert time.monotonic() - started < 20, "exited once the work was done, not at the grace"
        statuses, ended = watched.result(timeout=10)
        assert (statuses[-1], ended) == (
            health_pb2.HealthCheckResponse.NOT_SERVING,
            grpc.StatusCode.OK,
        )
    assert_clean_log(running)


def test_work_longer_than_the_grace_is_cancelled_cleanly(
    standin: str, gate: ModelsGate, tokens: dict[str, str]
) -> None:
    drain, grace = 0.2, 1.0
    env = {
        "AIBRIDGE_SHUTDOWN_DRAIN_DELAY": str(drain),
        "AIBRIDGE_SHUTDOWN_GRACE": str(grace),
        # The request deadline must not end the held calls before the grace does.
        "AIBRIDGE_REQUEST_DEADLINE": "60",
        "AIBRIDGE_READ_TIMEOUT": "60",
    }
    with (
        serve(standin, env) as running,
        concurrent.futures.ThreadPoolExecutor(3) as pool,
    ):
        gate.hold = True
        http_call = pool.submit(models_over_http, running.base_url, tokens)
        grpc_call = pool.submit(models_over_grpc, running.grpc_address, tokens)
        watching = threading.Event()
        watched = pool.submit(watch_health, running.grpc_address, watching)
        poll_until(lambda: gate.held == 2, "both calls held upstream")
        assert watching.wait(30), "the Watch stream never started"
        sigterm(running)
        started = time.monotonic()
        code = running.exit_code(drain + grace + EXIT_MARGIN_S)
        took = time.monotonic() - started
        assert code == 0, running.text()
        assert took >= grace, "cancelled before the grace was over"
        response = http_call.result(timeout=10)
        assert response.status_code == 503
        assert response.json()["errors"][0]["message"] == SHUTTING_DOWN
        with pytest.raises(grpc.RpcError) as error:
            grpc_call.result(timeout=10)
        assert error.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
        # A Watch stream hears NOT_SERVING at the signal, then ends.
        statuses, ended = watched.result(timeout=10)
        assert statuses[-1] == health_pb2.HealthCheckResponse.NOT_SERVING, statuses
        assert ended == grpc.StatusCode.OK
    assert_clean_log(running)
    assert any("503" in line and "/graphql" in line for line in running.lines), running.text()


def test_a_second_signal_cuts_the_grace_short(
    standin: str, gate: ModelsGate, tokens: dict[str, str]
) -> None:
    env = {
        "AIBRIDGE_SHUTDOWN_DRAIN_DELAY": "0.2",
        "AIBRIDGE_SHUTDOWN_GRACE": "120",
        "AIBRIDGE_REQUEST_DEADLINE": "60",
        "AIBRIDGE_READ_TIMEOUT": "60",
    }
    with (
        serve(standin, env) as running,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        gate.hold = True
        http_call = pool.submit(models_over_http, running.base_url, tokens)
        poll_until(lambda: gate.held == 1, "the call held upstream")
        sigterm(running)
        http_address = running.base_url.removeprefix("http://")
        # The first signal's drain is over: the grace has begun.
        poll_until(lambda: refuses_connections(http_address), "refusing HTTP connections")
        assert running.process.poll() is None
        sigterm(running)
        assert running.exit_code(EXIT_MARGIN_S) == 0, running.text()
        response = http_call.result(timeout=10)
        assert response.status_code == 503
        assert response.json()["errors"][0]["message"] == SHUTTING_DOWN
    assert_clean_log(running)


async def _load(
    base_url: str, headers: dict[str, str], running: ServeProcess, *, in_flight: int, before: int
) -> tuple[float, list[tuple[float, object]]]:
    """Keep `in_flight` requests going; SIGTERM after `before` answers; stop once refused.

    Returns when the signal was sent and each request's (start time, status or error).
    """
    results: list[tuple[float, object]] = []
    signalled: list[float] = []
    enough = asyncio.Event()
    deadline = time.monotonic() + 60

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                response = await client.post(f"{base_url}/graphql", json=MODELS)
            except httpx.TransportError as error:
                results.append((sent, type(error).__name__))
                if signalled:
                    return  # the listener is closed: this replica is gone
                continue
            results.append((sent, response.status_code))
            if len(results) >= before:
                enough.set()

    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:
        workers = [asyncio.ensure_future(worker(client)) for _ in range(in_flight)]
        await asyncio.wait_for(enough.wait(), 60)
        sigterm(running)
        signalled.append(time.monotonic())
        await asyncio.gather(*workers)
    return signalled[0], results


def test_sigterm_under_load_fails_no_request_sent_before_it(
    standin: str, gate: ModelsGate, tokens: dict[str, str]
) -> None:
    # Each answer takes a little upstream time, so that requests are in flight at the signal.
    gate.delay = 0.02
    with serve(standin) as running:
        signalled, results = asyncio.run(
            _load(running.base_url, admin(tokens), running, in_flight=16, before=200)
        )
        assert running.exit_code(30) == 0, running.text()
        # Nothing was left waiting for the grace (15 s) to run out.
        assert time.monotonic() - signalled < 10
    before = [outcome for sent, outcome in results if sent < signalled]
    after = [outcome for sent, outcome in results if sent >= signalled]
    assert len(before) >= 200
    assert set(before) == {200}, {o: before.count(o) for o in set(before)}
    # After the signal: answered during the drain, or refused once the listener closed; never
    # an error answer.
    assert all(outcome == 200 or isinstance(outcome, str) for outcome in after), (
        [o for o in after if o != 200],
        [line for line in running.lines if "shutdown" in line or " 503" in line],
    )
    assert_clean_log(running)
