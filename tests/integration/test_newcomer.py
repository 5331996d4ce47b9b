"""What a newcomer hit (issue 7 item 10, issue 16 item 10): `GET /`, `serve --help`, GraphiQL's
opening query and headers, and `demo`: busy ports, JSON access lines like `serve`, both faces, the
era it was asked for, and the ids its spend example needs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
ENDPOINTS = ("/graphql", "/usage.csv", "/healthz", "/readyz", "/metrics")
HEADERS_LINE = re.compile(r'^\s+(\{"Coder-Session-Token": ".+"\})$')
GRAPHIQL_LINE = re.compile(r"GraphiQL:\s+(http://127\.0\.0\.1:(\d+)/graphql)")
GRPC_LINE = re.compile(r"gRPC:\s+(127\.0\.0\.1:(\d+))\s")
STANDIN_LINE = re.compile(r"Stand-in:\s+http://127\.0\.0\.1:\d+(/\S+)\s+\((.*)\)")
ERA_LINE = re.compile(r"^\s+Era:\s+(\S+) ")
TRAFFIC_LINE = re.compile(r"^\s+Traffic:\s+(.+)$")
BANNER_END = re.compile(r"^Ctrl-C to stop\.$")


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
    assert "CSV" in body["endpoints"]["/usage.csv"]
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
    assert "usage and cost as CSV" in result.output


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
    args: list[str], default_ports: tuple[int, int, int] = (0, 0, 0)
) -> Iterator[subprocess.Popen[str]]:
    """`aibridge-graphql demo ARGS` whose *default* ports (gateway, stand-in, gRPC) are
    `default_ports` (click's default_map, as if 8080/8081/9090 were those), interrupted like
    Ctrl-C at the end."""
    gateway, standin, grpc_port = default_ports
    ports = {"gateway_port": gateway, "standin_port": standin, "grpc_port": grpc_port}
    defaults = {"demo": ports}
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
    # A demo that hangs is killed: every read of its output then ends (bounded, no sleeps).
    watchdog = threading.Timer(DEADLINE * 4, process.kill)
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
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
    with busy_ports(3) as busy, demo_process(args, (busy[0], busy[1], busy[2])) as process:
        seen: list[str] = []
        headers_line = read_until(process, HEADERS_LINE, seen)
        text = "\n".join(seen)
        assert f"Port {busy[0]} is busy: the gateway listens on" in text
        assert f"Port {busy[1]} is busy: the stand-in listens on" in text
        assert f"Port {busy[2]} is busy: the gRPC face listens on" in text
        grpc_line = GRPC_LINE.search(text)
        assert grpc_line is not None, text
        assert int(grpc_line.group(2)) != busy[2]
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


@dataclass(frozen=True)
class Banner:
    """The demo's banner, and what a user would copy from it."""

    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def match(self, pattern: re.Pattern[str]) -> re.Match[str]:
        for line in self.lines:
            if found := pattern.search(line):
                return found
        raise AssertionError(f"no {pattern.pattern!r} in the banner:\n{self.text}")

    def line_after(self, heading: str) -> str:
        index = next(i for i, line in enumerate(self.lines) if line.startswith(heading))
        return self.lines[index + 1].strip()

    def grpc_command(self) -> str:
        """The example gRPC call: from its `-c '` line to the line closing the quote."""
        start = next(i for i, line in enumerate(self.lines) if " -c 'import grpc" in line)
        end = next(i for i in range(start, len(self.lines)) if self.lines[i].endswith("'"))
        return "\n".join(self.lines[start : end + 1])

    @property
    def token(self) -> str:
        headers = next(m for line in self.lines if (m := HEADERS_LINE.match(line)))
        token: str = json.loads(headers.group(1))["Coder-Session-Token"]
        return token


def read_banner(process: subprocess.Popen[str]) -> Banner:
    """The banner's lines (log lines left out), once it is printed in full."""
    seen: list[str] = []
    read_until(process, BANNER_END, seen)
    start = max(i for i, line in enumerate(seen) if line == "aibridge-graphql demo")
    return Banner([line for line in seen[start:] if not line.startswith('{"time"')])


def stop_cleanly(process: subprocess.Popen[str]) -> str:
    """Ctrl-C the demo; it exits 0 without a traceback. Returns the rest of its output."""
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=DEADLINE)
    assert process.returncode == 0, rest
    assert "Traceback" not in rest
    return rest


def graphql(banner: Banner, query: str, variables: dict[str, Any] | None = None) -> Any:
    url = banner.match(GRAPHIQL_LINE).group(1)
    headers = {"Coder-Session-Token": banner.token}
    with httpx.Client(timeout=30, headers=headers) as client:
        response = client.post(url, json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    return response.json()


GROUP_SPEND = """query Spend($org: String!, $groups: [ID!]!) {
  aiGroupSpend(organization: $org, groupIds: $groups) { groups { groupId } }
}"""
SPEND_ORG = re.compile(r'^Spend and budgets: organization "([^"]+)"')


def test_demo_serves_grpc_beside_graphql_and_prints_the_ai_gateway_eras_spend_ids(
    tmp_path: Path,
) -> None:
    args = ["--db", str(tmp_path / "demo.db"), "--seed", "30", "--api-era", "ai-gateway"]
    ports = ["--gateway-port", "0", "--standin-port", "0", "--grpc-port", "0"]
    with demo_process([*args, *ports]) as process:
        banner = read_banner(process)
        assert banner.match(ERA_LINE).group(1) == "ai-gateway"
        standin = banner.match(STANDIN_LINE)
        assert standin.group(1) == "/api/v2/ai-gateway"
        assert "also /api/v2/aibridge" in standin.group(2)
        assert int(banner.match(GRPC_LINE).group(2)) > 0
        # The gRPC example, pasted into a shell as printed: one grpcio call, two sessions.
        called = subprocess.run(
            ["/bin/sh", "-c", banner.grpc_command()],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        assert called.returncode == 0, called.stderr
        assert called.stdout.count("sessions {") == 2, called.stdout
        assert "session_id: " in called.stdout
        # The spend example's ids, as printed, answer over GraphQL.
        organization = banner.match(SPEND_ORG).group(1)
        variables = json.loads(banner.line_after("The spend example's variables"))
        assert len(variables["groups"]) >= 2
        body = graphql(banner, GROUP_SPEND, {"org": organization, **variables})
        assert "errors" not in body, body
        answered = {group["groupId"] for group in body["data"]["aiGroupSpend"]["groups"]}
        assert answered == set(variables["groups"])
        stop_cleanly(process)


def test_demo_in_the_sessions_era_names_it_and_its_prefix(tmp_path: Path) -> None:
    args = ["--db", str(tmp_path / "demo.db"), "--seed", "30", "--api-era", "sessions"]
    ports = ["--gateway-port", "0", "--standin-port", "0", "--grpc-port", "0"]
    with demo_process([*args, *ports]) as process:
        banner = read_banner(process)
        assert banner.match(ERA_LINE).group(1) == "sessions"
        standin = banner.match(STANDIN_LINE)
        assert standin.group(1) == "/api/v2/aibridge"
        assert "also" not in standin.group(2)
        assert "none in the sessions era" in banner.text
        assert banner.match(TRAFFIC_LINE).group(1).startswith("a fixed snapshot")
        assert not any(SPEND_ORG.search(line) for line in banner.lines)
        # `providers` needs the AI Gateway API; its error points to where providers are.
        body = graphql(banner, "{ providers { name } sessions(first: 3) { nodes { providers } } }")
        [error] = body["errors"]
        assert error["path"] == ["providers"]
        assert error["extensions"]["code"] == "UPSTREAM_UNSUPPORTED"
        assert error["extensions"]["instead"] == "Session.providers"
        assert all(node["providers"] for node in body["data"]["sessions"]["nodes"])
        stop_cleanly(process)


SESSION_COUNT = "{ sessions(first: 1) { totalCount } }"


def test_demo_with_live_traffic_says_so_and_the_gateway_sees_sessions_arrive(
    tmp_path: Path,
) -> None:
    args = ["--db", str(tmp_path / "demo.db"), "--seed", "30", "--seed-value", "3"]
    args += ["--live", "--live-interval", "0.1"]
    ports = ["--gateway-port", "0", "--standin-port", "0", "--grpc-port", "0"]
    with demo_process([*args, *ports]) as process:
        banner = read_banner(process)
        traffic = banner.match(TRAFFIC_LINE).group(1)
        assert traffic.startswith("live: the stand-in appends traffic every 0.1 s (seed value 3")
        first = graphql(banner, SESSION_COUNT)["data"]["sessions"]["totalCount"]
        deadline = time.monotonic() + DEADLINE
        while (count := graphql(banner, SESSION_COUNT)["data"]["sessions"]["totalCount"]) == first:
            assert time.monotonic() < deadline, "no new session through the gateway"
            time.sleep(0.1)  # between polls only; bounded by the deadline
        assert count > first
        stop_cleanly(process)


def test_demo_help_names_the_grpc_port_and_the_era() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0, result.output
    assert "--grpc-port" in result.output
    assert "--api-era [sessions|ai-gateway]" in result.output


def test_make_demo_passes_the_era_and_the_grpc_port() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "demo", "API_ERA=sessions", "GRPC_PORT=9191"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    assert "--api-era sessions" in dry_run.stdout
    assert "--grpc-port 9191" in dry_run.stdout
    assert "--live" in dry_run.stdout.split()  # `make demo` shows live traffic
    still = subprocess.run(
        ["make", "-n", "demo", "LIVE=0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    assert "--no-live" in still.stdout.split()
    paced = subprocess.run(
        ["make", "-n", "demo", "LIVE_INTERVAL=2"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    assert "--live --live-interval 2" in paced.stdout
