"""What the benchmarks share: the servers as processes, CPU pinning, a counting proxy, seeding.

bench/gateway.py, bench/usage.py, bench/standin.py, bench/soak.py, bench/huge_bodies.py and
bench/peer.py each measure something; this module measures nothing itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiohttp import ClientSession, web

API = "/api/v2/aibridge"
# The bar on a server's resident memory after a run (the gateway's and the stand-in's).
RSS_TARGET_MB = 200.0
READY_TIMEOUT = 60.0

# `serve` flag for the gRPC face: any free port, read back from the `gRPC listening on` line.
GRPC_ANY_PORT = ["--grpc-port", "0"]


# ---------------------------------------------------------------------------------------------
# Processes.


def free_port() -> int:
    """A port free right now on 127.0.0.1 (the servers bind it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pinning:
    """Which CPU each party runs on (`None`: not pinned)."""

    client: int | None
    upstream: int | None
    gateway: int | None

    def describe(self) -> str:
        if self.client is None:
            return "not pinned (taskset or a second core unavailable)"
        if self.gateway == self.upstream:
            return f"load client on cpu{self.client}, stand-in and gateways on cpu{self.upstream}"
        return f"load client and gateways on cpu{self.client}, stand-in alone on cpu{self.upstream}"


def choose_pinning(enabled: bool, layout: str) -> Pinning:
    """`apart`: the upstream on a core of its own, as Coder runs on its own machines; the
    gateway beside the load client, which only waits while the gateway works. `shared`: the
    gateway competes with the upstream for one core."""
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
        return Pinning(None, None, None)
    gateway = cpus[1] if layout == "shared" else cpus[0]
    return Pinning(cpus[0], cpus[1], gateway)


@dataclass
class Proc:
    """A server process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-20:])


def spawn(name: str, args: list[str], log: Path, cpu: int | None, env: dict[str, str]) -> Proc:
    command = (["taskset", "-c", str(cpu)] if cpu is not None else []) + args
    with log.open("wb") as out:
        popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    return Proc(name, popen, log)


def wait_ready(proc: Proc, url: str, headers: dict[str, str] | None = None) -> None:
    """Poll `url` until 200; fail with the process's log if it dies or the deadline passes."""
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(url, headers=headers).status_code == 200:
                    return
            time.sleep(0.05)  # a pause between polls, bounded by the deadline
    raise RuntimeError(f"{proc.name} not ready at {url}:\n{proc.tail()}")


def rss_mb(pid: int) -> float:
    """The resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def stop(proc: Proc) -> None:
    if proc.popen.poll() is None:
        proc.popen.terminate()
        try:
            proc.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()


# ---------------------------------------------------------------------------------------------
# The counting proxy: a loopback HTTP hop that records every upstream request it forwards.


_SESSION = web.AppKey("session", ClientSession)
_FORWARDED = {"coder-session-token", "authorization"}


@dataclass
class CountingProxy:
    """Forwards GETs to the stand-in and records their paths; runs its own loop in a thread."""

    upstream: str
    calls: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        """Where the gateway under count sends its upstream requests."""
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls.append(request.path_qs)
        session = request.app[_SESSION]
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        async with session.get(self.upstream + request.path_qs, headers=headers) as response:
            body = await response.read()
            return web.Response(
                status=response.status, body=body, content_type=response.content_type
            )

    @contextlib.contextmanager
    def running(self) -> Iterator[CountingProxy]:
        ready = threading.Event()
        stopping: asyncio.Event | None = None

        async def serve() -> None:
            nonlocal stopping
            stopping = asyncio.Event()
            app = web.Application()
            app.router.add_get("/{tail:.*}", self._handle)
            async with ClientSession() as session:
                app[_SESSION] = session
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                self.port = int(runner.addresses[0][1])
                ready.set()
                await stopping.wait()
                await runner.cleanup()

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("counting proxy did not start")
        try:
            yield self
        finally:
            assert stopping is not None
            loop.call_soon_threadsafe(stopping.set)
            thread.join(10)
            loop.close()


# ---------------------------------------------------------------------------------------------
# Measuring and seeding.


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seed(db: Path, count: int, admin_token: str) -> None:
    from aibridge_graphql.standin.seed import seed_database
    from aibridge_graphql.standin.store import open_database

    conn = open_database(db)
    try:
        seed_database(conn, count, 1, admin_token)
        conn.commit()
    finally:
        conn.close()


def cli_path() -> str:
    """The `aibridge-graphql` script next to this interpreter (the venv's)."""
    script = Path(sys.executable).parent / "aibridge-graphql"
    return str(script) if script.exists() else "aibridge-graphql"
