"""Node side of the federation tests: install, compose a supergraph, run the gateways.

Every server listens on 127.0.0.1 only; readiness is polled with a bound and every process is
stopped (then killed if it must be) when its context exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from tests.support.node_tools import REPO_ROOT, ensure_node_modules, require_executable

FEDERATION_DIR = REPO_ROOT / "tests" / "federation"
_READY_TIMEOUT_S = 60.0
_POLL_INTERVAL_S = 0.1
_STOP_TIMEOUT_S = 10.0
_COMPOSE_TIMEOUT_S = 60.0
# A query every GraphQL server answers once its schema is loaded.
_PROBE = {"query": "{ __typename }"}


def install_node_modules() -> Path:
    """`npm ci` in tests/federation when needed, under a file lock (parallel runs share it)."""
    require_executable("node", "install Node.js 20+ (the federation tests run real gateways)")
    lock_path = FEDERATION_DIR / ".npm-install.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return ensure_node_modules(FEDERATION_DIR)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def compose(
    subgraphs: Mapping[str, str], output: Path, *, sdl_files: Mapping[str, Path] | None = None
) -> str:
    """Compose with `compose.mjs` (subgraph name → routing URL, SDL fetched from it unless given
    in `sdl_files`) into `output`; returns the supergraph SDL, fails the test on errors."""
    args = ["node", "compose.mjs", "-o", str(output)]
    for name, path in (sdl_files or {}).items():
        args += ["--sdl", f"{name}={path}"]
    args += [f"{name}={url}" for name, url in subgraphs.items()]
    result = subprocess.run(
        args,
        cwd=FEDERATION_DIR,
        capture_output=True,
        text=True,
        timeout=_COMPOSE_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"composition failed:\n{result.stderr[-4000:]}")
    return output.read_text()


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for servers that cannot report the one they bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                if client.post(url, json=_PROBE).status_code == 200:
                    return
            time.sleep(_POLL_INTERVAL_S)
    tail = log.read_text(errors="replace")[-4000:]
    pytest.fail(f"{url} did not become ready (exit status {process.poll()}):\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT_S)


@contextlib.contextmanager
def run_node_server(args: Sequence[str], url: str, log: Path) -> Iterator[str]:
    """Run a Node server from tests/federation until the context exits; yield `url` once ready.

    Output goes to `log` (read on failure): a pipe nobody drains could block the server.
    """
    env = {**os.environ, "NODE_ENV": "production", "NO_COLOR": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(args), cwd=FEDERATION_DIR, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        _wait_ready(process, url, log)
        yield url
    finally:
        _stop(process)


def run_apollo_gateway(supergraph: Path, log: Path) -> contextlib.AbstractContextManager[str]:
    """Apollo Gateway + Apollo Server serving `supergraph`; yields its GraphQL URL."""
    port = free_port()
    args = ["node", "apollo_gateway.mjs", str(supergraph), str(port)]
    return run_node_server(args, f"http://127.0.0.1:{port}/", log)


def run_hive_gateway(supergraph: Path, log: Path) -> contextlib.AbstractContextManager[str]:
    """Hive Gateway serving `supergraph` (config: gateway.config.mjs); yields its GraphQL URL."""
    port = free_port()
    binary = FEDERATION_DIR / "node_modules" / ".bin" / "hive-gateway"
    # Without `--host` Hive Gateway listens on every interface.
    args = [str(binary), "supergraph", str(supergraph), "-c", "gateway.config.mjs"]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    return run_node_server(args, f"http://127.0.0.1:{port}/graphql", log)
