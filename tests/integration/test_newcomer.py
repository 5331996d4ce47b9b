"""What a newcomer hit (issue 7, item 10): `GET /`, `serve --help`, GraphiQL's opening query and
headers, and `demo` with busy ports, logging JSON access lines like `serve`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from aibridge_graphql.cli import main
from aibridge_graphql.server.graphiql import EXAMPLE_QUERY, PLACEHOLDER_HEADERS, offline_graphiql
from aibridge_graphql.server.serving import build_gateway
from aibridge_graphql.settings import Settings
from tests.support.servers import run_app_in_thread

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "aibridge-graphql")
DEADLINE = 30.0
ENDPOINTS = ("/graphql", "/healthz", "/readyz", "/metrics")
HEADERS_LINE = re.compile(r'^\s+(\{"Coder-Session-Token": ".+"\})$')
GRAPHIQL_LINE = re.compile(r"GraphiQL:\s+(http://127\.0\.0\.1:(\d+)/graphql)")


@pytest.fixture(scope="module")
def gateway_url(standin_url: str) -> Iterator[str]:
    settings = Settings(upstream_url=standin_url)
    with run_app_in_thread(lambda: build_gateway(settings, offline_graphiql(settings))) as url:
        yield url


def test_root_points_to_graphql_and_the_other_endpoints(gateway_url: str) -> None:
    with httpx.Client(base_url=gateway_url, timeout=10) as client:
        as_json = client.get("/")
        as_page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert as_json.status_code == 200
    body = as_json.json()
    assert body["graphql"] == "/graphql"
    assert set(ENDPOINTS) <= set(body["endpoints"])
    assert as_page.status_code == 200
    assert as_page.headers["Content-Type"].startswith("text/html")
    for path in ENDPOINTS:
        assert f'href="{path}"' in as_page.text


def test_serve_help_lists_the_endpoints() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for path in ENDPOINTS:
        assert path in result.output
    assert "Prometheus" in result.output


def test_graphiql_opens_on_the_readme_dashboard_query_with_the_token_header(
    gateway_url: str,
) -> None:
    with httpx.Client(timeout=10) as client:
        page = client.get(f"{gateway_url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "Welcome to GraphiQL" not in page.text
    assert f"const EXAMPLE_QUERY = {json.dumps(EXAMPLE_QUERY)};" in page.text
    assert f"const DEFAULT_HEADERS = {json.dumps(PLACEHOLDER_HEADERS)};" in page.text
    assert "React.useState(parameters.headers || DEFAULT_HEADERS)" in page.text


def test_the_opening_query_is_the_readmes_and_answers_without_errors(
    gateway_url: str, tokens: dict[str, str]
) -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```graphql\n{EXAMPLE_QUERY}```" in readme
    headers = {"Coder-Session-Token": tokens["admin"]}
    with httpx.Client(timeout=30, headers=headers) as client:
        response = client.post(f"{gateway_url}/graphql", json={"query": EXAMPLE_QUERY})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["sessions"]["nodes"]


@contextlib.contextmanager
def busy_ports(count: int) -> Iterator[list[int]]:
    """Ports on 127.0.0.1 held by listening sockets for the duration."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            ports.append(int(sock.getsockname()[1]))
        yield ports


@contextlib.contextmanager
def demo_process(
    args: list[str], default_ports: tuple[int, int]
) -> Iterator[subprocess.Popen[str]]:
    """`aibridge-graphql demo ARGS` whose *default* ports are `default_ports` (click's
    default_map, as if 8080/8081 were those), interrupted like Ctrl-C at the end."""
    defaults = {"demo": {"gateway_port": default_ports[0], "standin_port": default_ports[1]}}
    code = (
        "import sys; from aibridge_graphql.cli import main; "
        f"main(sys.argv[1:], default_map={defaults!r})"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "AIBRIDGE_LOG_LEVEL": "INFO", "AIBRIDGE_LOG_FORMAT": "json"},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def read_until(process: subprocess.Popen[str], pattern: re.Pattern[str], seen: list[str]) -> str:
    """Lines of `process` until one matches (bounded: the process ends or matches)."""
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line.rstrip("\n"))
        if pattern.search(line):
            return line.rstrip("\n")
    output = "\n".join(seen)
    raise AssertionError(f"no line matching {pattern.pattern!r} in:\n{output}")


def test_demo_falls_back_to_free_ports_and_logs_json_access_lines(tmp_path: Path) -> None:
    args = ["--db", str(tmp_path / "demo.db"), "--seed", "30"]
    with busy_ports(2) as busy, demo_process(args, (busy[0], busy[1])) as process:
        seen: list[str] = []
        headers_line = read_until(process, HEADERS_LINE, seen)
        text = "\n".join(seen)
        assert f"Port {busy[0]} is busy: the gateway listens on" in text
        assert f"Port {busy[1]} is busy: the stand-in listens on" in text
        graphiql = GRAPHIQL_LINE.search(text)
        assert graphiql is not None, text
        assert int(graphiql.group(2)) != busy[0]
        headers_json = headers_line.strip()
        token = json.loads(headers_json)["Coder-Session-Token"]
        with httpx.Client(timeout=30, headers={"Coder-Session-Token": token}) as client:
            page = client.get(graphiql.group(1), headers={"Accept": "text/html"})
            answer = client.post(graphiql.group(1), json={"query": "{ models }"})
        assert answer.status_code == 200
        assert answer.json()["data"]["models"]
        # GraphiQL opens with the admin token in its Headers pane, as the banner prints it.
        assert f"const DEFAULT_HEADERS = {json.dumps(headers_json)};" in page.text
        access = read_until(process, re.compile(r'"logger": "aibridge_graphql.access"'), seen)
        record = json.loads(access)
        assert record["level"] == "INFO"
        assert record["method"] in {"GET", "POST"}
        assert record["path"] == "/graphql"
        # No log line carries the token.
        assert all(token not in line for line in seen if line.startswith('{"time"'))


def test_demo_on_an_explicit_busy_port_says_how_to_pick_another(tmp_path: Path) -> None:
    db_args = ["--db", str(tmp_path / "demo.db"), "--seed", "10"]
    with busy_ports(1) as (busy,):
        result = subprocess.run(
            [CLI, "demo", "--gateway-port", str(busy), "--standin-port", "0", *db_args],
            capture_output=True,
            text=True,
            timeout=DEADLINE * 2,
            check=False,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"port {busy} for the gateway is busy" in result.stderr
    assert "--gateway-port" in result.stderr
    assert "GATEWAY_PORT=" in result.stderr
