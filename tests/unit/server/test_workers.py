"""The pieces of `serve --workers N` that run without worker processes: the held ports, the
restart pauses, the metrics directory, a worker's side of its pipe, the `--workers` flag.
(tests/integration/test_serve_workers.py runs the real processes.)"""

from __future__ import annotations

import asyncio
import errno
import multiprocessing
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from aibridge_graphql.cli import main
from aibridge_graphql.core.metrics import MULTIPROCESS_DIR_ENV
from aibridge_graphql.server.shutdown import ShutdownSignals
from aibridge_graphql.server.workers import (
    FIRST_BACKOFF_S,
    MAX_BACKOFF_S,
    NOW,
    STABLE_AFTER_S,
    STOP,
    PipeSupervisor,
    describe_exit,
    metrics_directory,
    reserve_ports,
    restart_delay,
)
from aibridge_graphql.settings import Settings

WAIT_S = 10.0


def test_a_worker_that_served_a_while_is_restarted_at_once() -> None:
    assert restart_delay(MAX_BACKOFF_S, STABLE_AFTER_S) == 0.0


def test_a_worker_that_keeps_dying_waits_longer_each_time_up_to_the_cap() -> None:
    delays = [0.0]
    for _ in range(8):
        delays.append(restart_delay(delays[-1], lived=1.0))
    assert delays[1:4] == [FIRST_BACKOFF_S, 2 * FIRST_BACKOFF_S, 4 * FIRST_BACKOFF_S]
    assert delays[-1] == MAX_BACKOFF_S


def test_exits_are_described_by_signal_or_code() -> None:
    assert describe_exit(-9) == "signal SIGKILL"
    assert describe_exit(1) == "exit code 1"


def connect(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_the_held_ports_resolve_port_0_refuse_connections_and_keep_others_out() -> None:
    reserved = reserve_ports(Settings(port=0, grpc_port=0))
    try:
        http, grpc = reserved.settings.port, reserved.settings.grpc_port
        assert http != 0
        assert grpc not in (0, http)
        for port in (http, grpc):
            # Held, not listening: connections reach only the workers.
            with pytest.raises(ConnectionRefusedError):
                connect(port)
            with socket.socket() as other, pytest.raises(OSError, match="in use") as taken:
                other.bind(("127.0.0.1", port))
            assert taken.value.errno == errno.EADDRINUSE
        # A worker binds the same port with SO_REUSEPORT and is the one that answers.
        with socket.socket() as worker:
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", http))
            worker.listen()
            connect(http)
    finally:
        reserved.close()


def test_a_port_in_use_even_with_so_reuseport_is_refused() -> None:
    with socket.socket() as other:
        # Another gateway's worker: SO_REUSEPORT would let a second group join it silently.
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port} is in use") as refused:
            reserve_ports(Settings(port=port, grpc_port=0))
        assert refused.value.errno == errno.EADDRINUSE


def test_the_same_port_for_both_faces_is_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError, match=f"port {port} is in use") as refused:
        reserve_ports(Settings(port=port, grpc_port=port))
    assert refused.value.errno == errno.EADDRINUSE


def test_without_the_grpc_face_only_the_http_port_is_held() -> None:
    reserved = reserve_ports(Settings(port=0, grpc_port=9, grpc_enabled=False))
    try:
        assert len(reserved.sockets) == 1
        assert reserved.settings.grpc_port == 9
    finally:
        reserved.close()


def test_the_metrics_directory_is_named_to_the_workers_and_removed_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    with metrics_directory() as path:
        assert os.environ[MULTIPROCESS_DIR_ENV] == path
        Path(path, "counter_1.db").write_bytes(b"")
    assert not Path(path).exists()
    assert MULTIPROCESS_DIR_ENV not in os.environ


async def test_a_worker_hears_stop_then_now_and_a_repeated_stop_stays_graceful() -> None:
    master, worker = multiprocessing.Pipe()
    signals = ShutdownSignals()
    with PipeSupervisor(worker).follow(signals):
        master.send_bytes(STOP)
        await asyncio.wait_for(signals.requested.wait(), WAIT_S)
        master.send_bytes(STOP)
        master.send_bytes(NOW)
        await asyncio.wait_for(signals.urgent.wait(), WAIT_S)
    master.close()
    worker.close()


async def test_a_worker_whose_master_is_gone_stops_gracefully() -> None:
    master, worker = multiprocessing.Pipe()
    signals = ShutdownSignals()
    with PipeSupervisor(worker).follow(signals):
        master.close()
        await asyncio.wait_for(signals.requested.wait(), WAIT_S)
        assert not signals.urgent.is_set()
    worker.close()


async def test_a_repeated_stop_request_is_no_second_signal() -> None:
    signals = ShutdownSignals()
    signals.ask(urgent=False, why="test")
    signals.ask(urgent=False, why="test")
    assert signals.requested.is_set()
    assert not signals.urgent.is_set()
    signals.ask(urgent=True, why="test")
    assert signals.urgent.is_set()


@pytest.mark.parametrize("value", ["0", "-1", "two", "²", "1025", "1.5"])
def test_a_bad_workers_value_is_a_usage_error_naming_the_setting(value: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--workers", value])
    assert result.exit_code == 2
    assert "workers (AIBRIDGE_WORKERS)" in result.output
    assert "must be a whole number from 1 to 1024, or auto" in result.output


@pytest.mark.parametrize(
    ("given", "expected"), [("1", 1), ("8", 8), (" 3 ", 3), ("auto", "auto"), ("AUTO", "auto")]
)
def test_workers_takes_a_number_or_auto(given: str, expected: int | str) -> None:
    assert Settings(workers=given).workers == expected


def test_auto_is_the_cores_this_process_may_run_on() -> None:
    assert Settings(workers="auto").worker_count == len(os.sched_getaffinity(0))
    assert Settings().worker_count == 1
