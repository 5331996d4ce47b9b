"""`aibridge-graphql serve` as a real process, and a stand-in whose `/models` can be held."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from aibridge_graphql.standin.app import create_app
from tests.support.servers import run_app_in_thread

CLI = str(Path(sys.executable).parent / "aibridge-graphql")
GRAPHQL_LINE = re.compile(r"Gateway listening on (http://127\.0\.0\.1:\d+)/graphql")
GRPC_LINE = re.compile(r"gRPC listening on (127\.0\.0\.1:(\d+))")
WAIT_S = 30.0


class ProcessOutput:
    """A process's output read line by line on a thread, so every wait has a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: re.Pattern[str], within: float = WAIT_S) -> re.Match[str]:
        """Read lines until one matches `pattern` (bounded); fail with the output otherwise."""
        deadline = time.monotonic() + within
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no line matching {pattern.pattern!r}; output:\n{self.text()}")

    def exit_code(self, within: float) -> int:
        """Wait for the process to exit (bounded), then read the rest of its output."""
        code = self.process.wait(within)
        while (line := self._queue.get(timeout=WAIT_S)) is not None:
            self.lines.append(line)
        return code

    def drain(self) -> str:
        """Everything read so far, and what the process wrote since, without waiting."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._queue.put(None)  # the end stays visible to the next reader
                break
            self.lines.append(line)
        return self.text()

    def text(self) -> str:
        """Everything read so far."""
        return "\n".join(self.lines)


class ServeProcess(ProcessOutput):
    """A started `serve`, its output and (once it listens) where it listens."""

    base_url: str = ""
    grpc_address: str = ""

    def wait_listening(self) -> ServeProcess:
        """Read the output until both faces listen (bounded); note where."""
        self.base_url = self.wait_for(GRAPHQL_LINE).group(1)
        self.grpc_address = self.wait_for(GRPC_LINE).group(1)
        return self

    def kill(self) -> None:
        """SIGKILL, unless it has exited already."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(WAIT_S)

    def records(self) -> list[dict[str, object]]:
        """The JSON log records among the output lines."""
        found = []
        for line in self.lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    found.append(record)
        return found


def spawn_serve(
    upstream: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> ServeProcess:
    """Start `serve` on free ports before `upstream` (more flags in `args`), without waiting
    for it to listen."""
    process = subprocess.Popen(
        [CLI, "serve", "--upstream", upstream, "--port", "0", "--grpc-port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "AIBRIDGE_RETRIES": "0", **(env or {})},
    )
    return ServeProcess(process)


@contextlib.contextmanager
def serve(
    upstream: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[ServeProcess]:
    """`serve` on free ports before `upstream` (more flags in `args`); killed at the end if it
    is still running."""
    running = spawn_serve(upstream, env, args)
    try:
        yield running.wait_listening()
    finally:
        running.kill()


def sigterm(running: ServeProcess) -> None:
    running.process.send_signal(signal.SIGTERM)


def refuses_connections(address: str) -> bool:
    """Whether `host:port` refuses a TCP connection now."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def poll_until(check: Callable[[], bool], what: str, within: float = WAIT_S) -> None:
    """Call `check` until it is true (bounded; a short pause between calls)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)  # between polls only; the loop is bounded by the deadline
    raise AssertionError(f"not {what} after {within:g}s")


@dataclass
class ModelsGate:
    """How the stand-in answers `/models`: held until `release` is set, or after `delay`."""

    hold: bool = False
    delay: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    held: int = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.endswith("/models") and "Coder-Session-Token" in request.headers:
            if self.hold:
                self.held += 1
                self.arrived.set()
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self.release.wait, WAIT_S)
            elif self.delay:
                await asyncio.sleep(self.delay)
        return await handler(request)


@contextlib.contextmanager
def gated_standin(database: Path, gate: ModelsGate) -> Iterator[str]:
    """The stand-in (sessions era) on `database`, its `/models` answered as `gate` says."""

    def factory() -> web.Application:
        app = create_app(database, api_era="sessions")
        app.middlewares.append(gate.middleware)
        return app

    with run_app_in_thread(factory) as url:
        try:
            yield url
        finally:
            # Before the stand-in stops: its cleanup waits for the held requests.
            gate.release.set()
