"""A real Prometheus (Debian's `prometheus`, installed by .ci/run) scrapes the gateway's /metrics
after real queries through the real stand-in; `promtool check metrics` lints the exposition.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from tests.support.node_tools import require_executable
from tests.support.servers import run_app_in_thread

DEADLINE_S = 30.0
HINT = "apt-get install prometheus (.ci/run installs it)"
DASHBOARD = "query Dashboard { sessions(first: 4) { edges { node { id threads(first: 1) "
DASHBOARD += "{ edges { node { id } } } } } } }"


def free_port() -> int:
    # Prometheus cannot report a port it picked itself; a just-freed one is good enough here.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def prometheus(target: str, workdir: Path) -> Iterator[str]:
    """Prometheus on loopback scraping `target` (host:port) every second; yields its URL."""
    binary = require_executable("prometheus", HINT)
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: aibridge-graphql\n"
        "    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://{address}"
    finally:
        process.terminate()
        process.wait(timeout=DEADLINE_S)


def query_until(base: str, promql: str, expected: float) -> float | None:
    """Poll Prometheus' query API (bounded) until `promql` is `expected`; the last value seen."""
    deadline = time.monotonic() + DEADLINE_S
    last: float | None = None
    while time.monotonic() < deadline:
        body: dict[str, Any] = {}
        with contextlib.suppress(httpx.TransportError):
            # 503 while Prometheus starts up.
            response = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
            if response.status_code == 200:
                body = response.json()
        results = body.get("data", {}).get("result", [])
        if results:
            last = float(results[0]["value"][1])
            if last == expected:
                return last
        # Scrapes happen every second: poll a few times per interval, within the deadline.
        time.sleep(0.2)
    return last


def test_prometheus_scrapes_the_gateway(
    standin_url: str, tokens: dict[str, str], tmp_path: Path
) -> None:
    promtool = require_executable("promtool", HINT)
    settings = Settings(upstream_url=standin_url)
    with run_app_in_thread(lambda: create_app(settings)) as gateway:
        for _ in range(2):
            response = httpx.post(
                f"{gateway}/graphql",
                json={"query": DASHBOARD},
                headers={"Coder-Session-Token": tokens["admin"]},
                timeout=DEADLINE_S,
            )
            assert "errors" not in response.json()
        exposition = httpx.get(f"{gateway}/metrics").text
        lint = subprocess.run(
            [promtool, "check", "metrics"],
            input=exposition,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
        with prometheus(gateway.removeprefix("http://"), tmp_path) as base:
            up = query_until(base, 'up{job="aibridge-graphql"}', 1)
            operations = query_until(
                base,
                'aibridge_graphql_operation_duration_seconds_count{operation="Dashboard",'
                'outcome="ok"}',
                2,
            )
            threads = query_until(
                base,
                'sum(aibridge_upstream_request_duration_seconds_count{endpoint="/sessions/{session_id}"})',
                8,
            )
    assert (up, operations, threads) == (1, 2, 8)
