"""GraphiQL in a real browser: the stand-in and the gateway on loopback, GraphiQL opened in headless
Debian Chromium (driven by playwright-core from tests/frontend, no browser download), the token
set in the Headers pane, a query run and its result read from the page and compared with the REST
API. Every request not to 127.0.0.1 is blocked, and the test asserts none was even attempted: the
page loads fully offline from the gateway's local GraphiQL assets (web/node_modules).

The screenshot is kept as an artifact (path printed; `artifacts/` is ignored by git).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aibridge_graphql.server.graphiql import (
    ASSETS,
    ASSETS_PREFIX,
    EXAMPLE_QUERY,
    offline_graphiql,
)
from aibridge_graphql.server.serving import build_gateway
from aibridge_graphql.settings import Settings
from tests.support.chromium import require_chromium, run_driver
from tests.support.node_tools import REPO_ROOT, ensure_node_modules
from tests.support.servers import run_app_in_thread

DRIVER = Path(__file__).with_name("graphiql_driver.cjs")
SCREENSHOT = REPO_ROOT / "artifacts" / "graphiql-e2e.png"
OPENED_SCREENSHOT = REPO_ROOT / "artifacts" / "graphiql-e2e-opened.png"
# Fetched by the page after the query: it must be blocked (so `blocked == []` means something).
PROBE_URL = "https://unpkg.com/graphiql@3.8.3/graphiql.min.css"
PAGE = 3
QUERY = f"""query GraphiQLEndToEnd {{
  sessions(first: {PAGE}) {{
    totalCount
    nodes {{
      sessionId
      threadCount
      initiator {{
        username
      }}
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    return require_chromium()


@pytest.fixture(scope="module")
def gateway_url(standin_url: str) -> Iterator[str]:
    ensure_node_modules(REPO_ROOT / "web")  # what `make web-assets` installs
    settings = Settings(upstream_url=standin_url)
    graphiql = offline_graphiql(settings)
    assert graphiql.enabled, "web/node_modules lacks GraphiQL's assets: the page would use the CDN"
    with run_app_in_thread(lambda: build_gateway(settings, graphiql)) as url:
        yield url


@pytest.fixture(scope="module")
def demo_gateway_url(standin_url: str, tokens: dict[str, str]) -> Iterator[str]:
    """A gateway whose GraphiQL has the admin token in its Headers pane, as the demo builds it."""
    settings = Settings(upstream_url=standin_url)
    headers = json.dumps({"Coder-Session-Token": tokens["admin"]})
    graphiql = offline_graphiql(settings, default_headers=headers)
    with run_app_in_thread(lambda: build_gateway(settings, graphiql)) as url:
        yield url


@pytest.fixture(scope="module")
def admin_token(tokens: dict[str, str]) -> str:
    """The stand-in owner's token: it sees every user's sessions."""
    return tokens["admin"]


def drive_graphiql(
    chromium: Path,
    url: str,
    token: str,
    home: Path,
    *,
    keep_defaults: bool = False,
    screenshot: Path = SCREENSHOT,
) -> dict[str, Any]:
    """Run the browser driver; its JSON report (see graphiql_driver.cjs)."""
    options = {
        "url": url,
        "chromium": str(chromium),
        "headers": {"Coder-Session-Token": token},
        "query": QUERY,
        "screenshot": str(screenshot),
        "probe": PROBE_URL,
        "keepDefaults": keep_defaults,
    }
    return run_driver(DRIVER, options, home)


def rest_sessions(standin_url: str, token: str) -> dict[str, Any]:
    """The first page of `GET /sessions` straight from the REST API (the ground truth)."""
    response = httpx.get(
        f"{standin_url.rstrip('/')}/api/v2/aibridge/sessions",
        params={"limit": PAGE},
        headers={"Coder-Session-Token": token},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_graphiql_runs_a_query_offline_in_headless_chromium(
    chromium: Path, gateway_url: str, standin_url: str, admin_token: str, tmp_path: Path
) -> None:
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)

    report = drive_graphiql(chromium, f"{gateway_url}/graphql", admin_token, tmp_path)
    print(f"GraphiQL screenshot: {SCREENSHOT}")

    assert report["blocked"] == [], "the page tried to leave loopback"
    assert report["probe"] == {"outcome": "failed", "blocked": [PROBE_URL]}
    assert report["requests"], "the driver saw no request"
    urls = {request.split(" ", 1)[1] for request in report["requests"]}
    assert all(url.startswith(gateway_url) for url in urls), sorted(urls)
    # GraphiQL's seven files came from the gateway, not the CDN.
    assert {f"{gateway_url}{ASSETS_PREFIX}/{asset.name}" for asset in ASSETS} <= urls
    assert report["consoleErrors"] == []
    # The query's POST carried the token typed into the Headers pane.
    assert "coder-session-token" in report["headersSent"][-1]

    result = report["result"]
    assert "errors" not in result, result
    expected = rest_sessions(standin_url, admin_token)
    sessions = result["data"]["sessions"]
    assert sessions["totalCount"] == expected["count"]
    assert expected["count"] > PAGE, "the stand-in should hold more sessions than one page"
    assert [
        (node["sessionId"], node["threadCount"], node["initiator"]["username"])
        for node in sessions["nodes"]
    ] == [(raw["id"], raw["threads"], raw["initiator"]["username"]) for raw in expected["sessions"]]
    # Shown on screen, not only held by the editor.
    assert f'"totalCount": {expected["count"]}' in report["resultText"]
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG")


def test_graphiql_opens_on_the_dashboard_with_the_token_and_runs_it_as_is(
    chromium: Path, demo_gateway_url: str, standin_url: str, admin_token: str, tmp_path: Path
) -> None:
    OPENED_SCREENSHOT.parent.mkdir(exist_ok=True)
    report = drive_graphiql(
        chromium,
        f"{demo_gateway_url}/graphql",
        admin_token,
        tmp_path,
        keep_defaults=True,
        screenshot=OPENED_SCREENSHOT,
    )
    assert report["opened"]["query"] == EXAMPLE_QUERY
    assert json.loads(report["opened"]["headers"]) == {"Coder-Session-Token": admin_token}
    assert report["blocked"] == []
    assert report["consoleErrors"] == []
    assert "coder-session-token" in report["headersSent"][-1]
    result = report["result"]
    assert "errors" not in result, result
    expected = rest_sessions(standin_url, admin_token)
    assert result["data"]["sessions"]["totalCount"] == expected["count"]
    assert len(result["data"]["sessions"]["nodes"]) == 20
