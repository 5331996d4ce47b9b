"""`aibridge-graphql serve` and `demo` as real processes on loopback, before the real stand-in."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aibridge_graphql.server.graphiql import ASSETS, find_assets_dir, page_integrity, sri_hash
from aibridge_graphql.settings import Settings
from tests.support.serve_process import CLI, ProcessOutput

DEADLINE = 30.0
# The dashboard origin `serve --cors-origins` allows in the module's gateway (docs/cors.md).
DASHBOARD = "http://127.0.0.1:5173"
LISTENING = re.compile(r"Gateway listening on (http://127\.0\.0\.1:\d+)/graphql")


@dataclass
class Running:
    """A started command, its output reader and (once known) its base URL."""

    process: subprocess.Popen[str]
    output: ProcessOutput


@contextlib.contextmanager
def start(args: list[str], env: dict[str, str] | None = None) -> Iterator[Running]:
    """Run `aibridge-graphql ARGS`; on exit interrupt it (as Ctrl-C) and wait for it."""
    process = subprocess.Popen(
        [CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        yield Running(process, ProcessOutput(process))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ok(client: httpx.Client, url: str, within: float = DEADLINE) -> httpx.Response:
    """Poll `url` until it answers 200 (bounded)."""
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = client.get(url)
        except httpx.TransportError as error:
            last = error
        else:
            if response.status_code == 200:
                return response
            last = response.status_code
        time.sleep(0.05)  # between polls only; the loop is bounded by the deadline
    raise AssertionError(f"{url} not ready: {last}")


@pytest.fixture(scope="module")
def gateway_url(standin_url: str) -> Iterator[str]:
    """`aibridge-graphql serve` on a free port in front of the stand-in."""
    env = {"AIBRIDGE_LOG_LEVEL": "WARNING"}
    args = ["serve", "--upstream", standin_url, "--port", "0", "--grpc-port", "0"]
    with start([*args, "--cors-origins", DASHBOARD], env) as running:
        yield running.output.wait_for(LISTENING).group(1)


def require_local_assets() -> None:
    """Skip the local-asset assertions only when the assets are absent outside CI."""
    if find_assets_dir(Settings()) is not None:
        return
    if os.environ.get("CI"):
        raise AssertionError("web/node_modules is missing in CI: `make install` must run npm ci")
    pytest.skip("GraphiQL assets not installed (web/node_modules absent; run make install)")


def test_health_and_readiness(gateway_url: str) -> None:
    with httpx.Client(timeout=5) as client:
        assert wait_ok(client, f"{gateway_url}/healthz").json()["status"] == "ok"
        assert wait_ok(client, f"{gateway_url}/readyz").status_code == 200


def test_graphql_query_matches_rest(
    gateway_url: str, standin_url: str, tokens: dict[str, str]
) -> None:
    # The conftest's `tokens` maps a user (or role) to its token; the owner is `admin`.
    admin = tokens.get("admin") or tokens["owner"]
    headers = {"Coder-Session-Token": admin}
    with httpx.Client(timeout=10, headers=headers) as client:
        rest = client.get(f"{standin_url}/api/v2/aibridge/models")
        response = client.post(f"{gateway_url}/graphql", json={"query": "{ models }"})
    assert rest.status_code == 200
    assert response.status_code == 200
    assert response.json() == {"data": {"models": rest.json()}}


def test_cors_origins_flag_lets_the_dashboard_preflight(gateway_url: str) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    with httpx.Client(timeout=10) as client:
        wait_ok(client, f"{gateway_url}/healthz")
        allowed = client.options(
            f"{gateway_url}/graphql", headers={**preflight, "Origin": DASHBOARD}
        )
        other = client.options(
            f"{gateway_url}/graphql", headers={**preflight, "Origin": "http://127.0.0.1:5174"}
        )
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert allowed.headers["Access-Control-Max-Age"] == "600"
    assert other.status_code == 405
    assert "Access-Control-Allow-Origin" not in other.headers


def test_graphiql_page_uses_local_assets(gateway_url: str) -> None:
    with httpx.Client(timeout=10) as client:
        page = client.get(f"{gateway_url}/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/html")
        require_local_assets()
        assert "https://unpkg.com/" not in page.text
        pinned = page_integrity()
        for asset in ASSETS:
            url = f"/graphiql-assets/{asset.name}"
            assert f'"{url}"' in page.text
            served = client.get(gateway_url + url)
            assert served.status_code == 200, url
            expected_type = "text/css" if asset.path.endswith(".css") else "application/javascript"
            assert served.headers["Content-Type"].startswith(expected_type)
            assert "max-age=" in served.headers["Cache-Control"]
            # What the browser will check: the bytes match the page's SRI hash.
            assets_dir = find_assets_dir(Settings())
            assert assets_dir is not None
            assert served.content == asset.file(assets_dir).read_bytes()
            assert sri_hash(asset.file(assets_dir)) == pinned[asset.name]


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql-assets/../pyproject.toml",
        "/graphiql-assets/%2e%2e/%2e%2e/pyproject.toml",
        "/graphiql-assets/graphiql@3.8.3/package.json",
        "/graphiql-assets/graphiql@3.8.3/..%2f..%2f..%2fpackage.json",
        "/graphiql-assets//etc/passwd",
    ],
)
def test_asset_route_refuses_traversal(gateway_url: str, path: str) -> None:
    require_local_assets()
    with httpx.Client(timeout=5) as client:
        response = client.get(gateway_url + path)
    assert response.status_code == 404


def test_invalid_settings_are_one_line_and_exit_2() -> None:
    result = subprocess.run(
        [CLI, "serve", "--upstream", "not a url"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "AIBRIDGE_MAX_PAGE_SIZE": "0"},
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "upstream_url" in lines[0]
    assert "AIBRIDGE_MAX_PAGE_SIZE" in lines[0]


def test_demo_prints_urls_and_token(tmp_path: Path) -> None:
    args = ["demo", "--gateway-port", "0", "--standin-port", "0", "--grpc-port", "0"]
    args += ["--db", str(tmp_path / "demo.db"), "--seed", "30"]
    with start(args) as running:
        token_line = running.output.wait_for(re.compile(r'^\s+(\{"Coder-Session-Token": ".+"\})$'))
        text = "\n".join(running.output.lines)
        graphiql = re.search(r"GraphiQL:\s+(http://127\.0\.0\.1:\d+/graphql)", text)
        # The default era's prefix: the AI Gateway API's.
        standin = re.search(r"Stand-in:\s+(http://127\.0\.0\.1:\d+/api/v2/ai-gateway)", text)
        assert graphiql is not None, text
        assert standin is not None, text
        headers = json.loads(token_line.group(1))
        with httpx.Client(timeout=10, headers=headers) as client:
            response = client.post(graphiql.group(1), json={"query": "{ models }"})
            rest = client.get(f"{standin.group(1)}/models")
        assert response.status_code == 200
        assert response.json() == {"data": {"models": rest.json()}}
        assert rest.json(), "the demo database is seeded"
        running.output.wait_for(re.compile(r"member, sees nothing"))
        running.output.wait_for(re.compile(r"sessions\(first: 20\)"))
        running.process.send_signal(signal.SIGINT)
        assert running.process.wait(timeout=15) == 0
