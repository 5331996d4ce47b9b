"""A real `redis-server` on 127.0.0.1 (ephemeral port, nothing persisted), for the cache tests.

Missing binary: skipped locally, a failure under CI (tests/support/node_tools.py says why).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tests.support.node_tools import require_executable

_READY_TIMEOUT_S = 10.0
_POLL_S = 0.02


@dataclass
class RedisServer:
    """A running server: its URL, and the process (a test may stop it to cut Redis off)."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(_READY_TIMEOUT_S)


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; closed again at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def run_redis() -> Iterator[RedisServer]:
    """Start redis-server, wait until it answers PING (bounded), stop it afterwards."""
    binary = require_executable(
        "redis-server", "redis-server is needed (Debian: apt-get install redis-server)"
    )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, process)
    try:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not _answers_ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(_POLL_S)
        yield server
    finally:
        server.stop()
