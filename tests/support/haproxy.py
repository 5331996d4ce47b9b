"""Debian's HAProxy on loopback, configured from docker/haproxy.cfg, with its runtime API.

The shipped config is kept whole; only `bind` and the `server` lines are pointed at loopback,
and two test-only hooks are added: the runtime API socket (to read and change server states)
and an `X-Replica` response header naming the server that answered (HAProxy's own 502 too), so
a test can tell which replica a failed request was on. Missing binary: skipped locally, a failure
under CI (tests/support/node_tools.py says why).
"""

from __future__ import annotations

import contextlib
import csv
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.docker_checks import DOCKER_DIR
from tests.support.node_tools import missing_tool
from tests.support.redis_server import free_port
from tests.support.serve_process import ProcessOutput

HAPROXY_CFG = DOCKER_DIR / "haproxy.cfg"
BACKEND = "gateways"
REPLICA_HEADER = "X-Replica"
# AIBRIDGE_SHUTDOWN_DRAIN_DELAY behind docker/haproxy.cfg (docs/operations.md says why).
DRAIN_DELAY_S = 2.0
WAIT_S = 30.0
# Debian installs it in /usr/sbin, which is not on every user's PATH.
_DEBIAN_PATH = "/usr/sbin/haproxy"


def haproxy_binary() -> str:
    """The `haproxy` executable, else skip (locally) or fail (CI)."""
    found = shutil.which("haproxy") or shutil.which(_DEBIAN_PATH)
    if found is None:
        missing_tool("haproxy not found: Debian: apt-get install haproxy")
    return found


def sections(text: str) -> dict[str, list[list[str]]]:
    """A config's sections (`global`, `backend gateways`, ...), each its directives' words."""
    found: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if line[0].isspace():
            current.append(words)
        else:
            current = found.setdefault(" ".join(words), [])
    return found


def check_config(text: str, workdir: Path) -> tuple[int, list[str]]:
    """`haproxy -c` on `text`: its exit status and its warnings."""
    path = workdir / "check.cfg"
    path.write_text(text)
    checked = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    output = checked.stdout + checked.stderr
    return checked.returncode, [line for line in output.splitlines() if "[WARNING]" in line]


def loopback_config(template: str, port: int, servers: Mapping[str, int], api: Path) -> str:
    """`template` listening on 127.0.0.1:`port` and balancing `servers` (name to loopback port)
    instead of its own; plus the runtime API on the unix socket `api` and `X-Replica`."""
    lines = template.splitlines()
    binds = [i for i, line in enumerate(lines) if line.split()[:1] == ["bind"]]
    listed = [i for i, line in enumerate(lines) if line.split()[:1] == ["server"]]
    assert len(binds) == 1, "the template has one `bind`"
    assert listed, "the template has `server` lines"
    assert listed == list(range(listed[0], listed[-1] + 1)), "the `server` lines are together"
    indent = "    "
    lines[binds[0]] = f"{indent}bind 127.0.0.1:{port}"
    lines[listed[0] : listed[-1] + 1] = [
        f"{indent}server {name} 127.0.0.1:{p}" for name, p in servers.items()
    ]
    # Hooks for the tests, each right below its section's header.
    hooks = {
        "global": f"stats socket {api} level admin",
        f"backend {BACKEND}": f"http-after-response set-header {REPLICA_HEADER} %[srv_name]",
    }
    for header, hook in hooks.items():
        lines.insert(lines.index(header) + 1, indent + hook)
    return "\n".join(lines) + "\n"


@dataclass
class HAProxy:
    """A running HAProxy: its base URL, output, and runtime API."""

    base_url: str
    api: Path
    output: ProcessOutput

    def command(self, line: str) -> str:
        """One runtime API command's answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.api))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self, server: str) -> dict[str, str]:
        """The runtime API's statistics of one server of the backend (`show stat`'s columns)."""
        text = self.command("show stat").removeprefix("# ")
        for row in csv.DictReader(text.splitlines()):
            if (row["pxname"], row["svname"]) == (BACKEND, server):
                return row
        raise AssertionError(f"no server {server} in {text}")

    def states(self) -> dict[str, str]:
        """Each server of the backend and its check status (`UP`, `DOWN`, `UP 1/2`, `MAINT`)."""
        text = self.command("show stat").removeprefix("# ")
        rows = csv.DictReader(text.splitlines())
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def point(self, server: str, port: int) -> None:
        """Send `server`'s traffic and checks to 127.0.0.1:`port` from now on."""
        answer = self.command(f"set server {BACKEND}/{server} addr 127.0.0.1 port {port}")
        assert "changed" in answer or "no need to change" in answer, answer

    def wait_state(self, server: str, status: str, within: float = WAIT_S) -> float:
        """Poll until `server` shows `status` (bounded); when it was seen."""
        deadline = time.monotonic() + within
        seen = ""
        while time.monotonic() < deadline:
            seen = self.states()[server]
            if seen == status:
                return time.monotonic()
            time.sleep(0.02)  # between polls only; the loop is bounded by the deadline
        raise AssertionError(f"{server} not {status} after {within:g}s but {seen!r}")


@contextlib.contextmanager
def run_haproxy(servers: Mapping[str, int], workdir: Path) -> Iterator[HAProxy]:
    """HAProxy before `servers` (name to loopback port), every one UP before this yields."""
    binary = haproxy_binary()
    port = free_port()
    api = workdir / "haproxy.sock"
    config = workdir / "haproxy.cfg"
    config.write_text(loopback_config(HAPROXY_CFG.read_text(), port, servers, api))
    process = subprocess.Popen(
        [binary, "-db", "-f", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = HAProxy(f"http://127.0.0.1:{port}", api, ProcessOutput(process))
    try:
        deadline = time.monotonic() + WAIT_S
        while not (api.exists() and _accepts(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"haproxy did not start:\n{running.output.drain()}")
            time.sleep(0.02)  # between polls only; the loop is bounded by the deadline
        for name in servers:
            running.wait_state(name, "UP")
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(WAIT_S)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
