"""`aibridge-graphql serve` hosts both faces in one process; the caller's deadline bounds and
cancels the upstream calls."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2 as catalog_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2_grpc as catalog_grpc
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from tests.support.grpc_face import face_settings, run_grpc_in_thread
from tests.support.servers import run_app_in_thread

CLI = str(Path(sys.executable).parent / "aibridge-graphql")
GRAPHQL_LINE = re.compile(r"Gateway listening on (http://127\.0\.0\.1:\d+)/graphql")
GRPC_LINE = re.compile(r"gRPC listening on (127\.0\.0\.1:\d+)")
WAIT_S = 30.0


def _wait_for(lines: queue.Queue[str | None], pattern: re.Pattern[str], seen: list[str]) -> str:
    deadline = time.monotonic() + WAIT_S
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if match := pattern.search(line):
            return match.group(1)
    raise AssertionError(f"no {pattern.pattern!r} in:\n" + "\n".join(seen))


def test_serve_hosts_both_faces_with_one_metrics(standin_url: str, tokens: dict[str, str]) -> None:
    env = {
        **os.environ,
        "AIBRIDGE_UPSTREAM_URL": standin_url,
        "AIBRIDGE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [CLI, "serve", "--port", "0", "--grpc-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        base = _wait_for(lines, GRAPHQL_LINE, seen)
        address = _wait_for(lines, GRPC_LINE, seen)
        with grpc.insecure_channel(address) as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            sessions = session_grpc.SessionServiceStub(channel).ListSessions(
                session_pb.ListSessionsRequest(page_size=2),
                metadata=(("coder-session-token", tokens["admin"]),),
                timeout=10,
            )
            assert len(sessions.sessions) == 2
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert (
            'aibridge_grpc_server_handled_total{code="OK",'
            'method="/aibridge.v1.SessionService/ListSessions"} 1.0' in metrics
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(WAIT_S)
    assert process.returncode == 0, "\n".join(seen)


def test_grpc_enabled_false_serves_graphql_only(standin_url: str) -> None:
    env = {**os.environ, "AIBRIDGE_UPSTREAM_URL": standin_url, "AIBRIDGE_GRPC_ENABLED": "false"}
    process = subprocess.Popen(
        [CLI, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, GRAPHQL_LINE, seen)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(WAIT_S)
        while (line := lines.get(timeout=WAIT_S)) is not None:
            seen.append(line)
    assert not any("gRPC listening" in line for line in seen)


@pytest.fixture
def slow_upstream() -> Any:
    """An upstream whose `/sessions` answers after 30 s; records abandoned requests."""
    cancelled = threading.Event()
    arrived = threading.Event()

    async def sessions(request: web.Request) -> web.Response:
        if "Coder-Session-Token" not in request.headers:
            # The gateway's era probe (no credentials): Coder's JSON 401, at once.
            return web.json_response({"message": "You must be logged in."}, status=401)
        arrived.set()
        # Up to 30 s, watching the connection: the gateway abandoning the call closes it.
        for _ in range(600):
            transport = request.transport
            if transport is None or transport.is_closing():
                cancelled.set()
                break
            await asyncio.sleep(0.05)
        return web.json_response({"count": 0, "sessions": []})

    def factory() -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v2/aibridge/sessions", sessions)
        return app

    with run_app_in_thread(factory) as url:
        yield url, cancelled, arrived


def test_the_callers_deadline_cancels_the_upstream_call(slow_upstream: Any) -> None:
    url, cancelled, _ = slow_upstream
    settings = face_settings(url, read_timeout=60.0)
    with (
        run_grpc_in_thread(settings) as face,
        grpc.insecure_channel(face.address) as channel,
    ):
        # The era detection runs once per process, before the first call goes upstream: done
        # here, so that the 0.5 s below are the call's own, however slow the machine is.
        with pytest.raises(grpc.RpcError):
            catalog_grpc.CatalogServiceStub(channel).ListModels(
                catalog_pb.ListModelsRequest(), metadata=(("coder-session-token", "t"),), timeout=30
            )
        with pytest.raises(grpc.RpcError) as error:
            session_grpc.SessionServiceStub(channel).ListSessions(
                session_pb.ListSessionsRequest(),
                metadata=(("coder-session-token", "t"),),
                timeout=0.5,
            )
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The upstream request was abandoned, not left running for its 30 s.
        assert cancelled.wait(10), "the upstream call was not cancelled"


def test_a_cancelled_call_cancels_the_upstream_call(slow_upstream: Any) -> None:
    url, cancelled, arrived = slow_upstream
    with (
        run_grpc_in_thread(face_settings(url, read_timeout=60.0)) as face,
        grpc.insecure_channel(face.address) as channel,
    ):
        future = session_grpc.SessionServiceStub(channel).ListSessions.future(
            session_pb.ListSessionsRequest(), metadata=(("coder-session-token", "t"),), timeout=60
        )
        assert arrived.wait(10), "the upstream call never started"
        future.cancel()
        assert cancelled.wait(10), "the upstream call was not cancelled"
