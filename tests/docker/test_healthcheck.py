"""docker/healthcheck.py, the image's stdlib-only probe, against a real loopback server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.docker_checks import HEALTHCHECK

STATUS_BY_PATH = {"/healthz": 200, "/readyz": 503, "/api": 401}


class Handler(BaseHTTPRequestHandler):
    """Answers each known path with its status, anything else with 404."""

    def do_GET(self) -> None:
        status = STATUS_BY_PATH.get(self.path, 404)
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the probe as the container does: a separate Python process, no AIBRIDGE_* inherited."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIBRIDGE_")}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**inherited, **(env or {})},
    )


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_2xx_is_healthy(base_url: str) -> None:
    assert run_probe(f"{base_url}/healthz").returncode == 0


def test_503_is_unhealthy(base_url: str) -> None:
    result = run_probe(f"{base_url}/readyz")
    assert result.returncode == 1
    assert "not healthy" in result.stderr


def test_401_is_healthy_only_with_any_status(base_url: str) -> None:
    assert run_probe(f"{base_url}/api").returncode == 1
    assert run_probe(f"{base_url}/api", "--any-status").returncode == 0


def test_refused_connection_is_unhealthy() -> None:
    assert run_probe(f"http://127.0.0.1:{unused_port()}/healthz").returncode == 1


def test_default_url_uses_the_port_variable(base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1]
    assert run_probe(env={"AIBRIDGE_PORT": port}).returncode == 0
    env = {"AIBRIDGE_HEALTHCHECK_URL": f"{base_url}/readyz"}
    assert run_probe(env=env).returncode == 1


def test_ignores_proxy_variables(base_url: str) -> None:
    # A proxy set for the app's egress must not intercept the probe of loopback.
    proxy = f"http://127.0.0.1:{unused_port()}"
    env = {"http_proxy": proxy, "HTTP_PROXY": proxy, "no_proxy": "", "NO_PROXY": ""}
    assert run_probe(f"{base_url}/healthz", env=env).returncode == 0


def test_rejects_non_http_urls() -> None:
    result = run_probe("file:///etc/passwd")
    assert result.returncode == 2
    assert "not an http(s) URL" in result.stderr
