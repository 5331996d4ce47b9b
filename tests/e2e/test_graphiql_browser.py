"""GraphiQL in a real browser: the stand-in and the gateway on loopback, GraphiQL opened in headless
Debian Chromium (driven by playwright-core from tests/frontend, no browser download), the token
set in the Headers pane, a query run and its result read from the page and compared with the REST
API. Every request not to 127.0.0.1 is blocked, and the test asserts none was even attempted: the
page loads fully offline from the gateway's local GraphiQL assets (web/node_modules). A
subscription runs too (over SSE, graphql-sse's client): its events show in the result window as
the test appends a session to the stand-in while the page watches.

The screenshot is kept as an artifact (path printed; `artifacts/` is ignored by git).
"""

from __future__ import annotations

import json
import time
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
from aibridge_graphql.standin.traffic import Appended
from tests.support.chromium import Answer, require_chromium, run_driver
from tests.support.live import metric
from tests.support.live_standin import LiveStandin
from tests.support.node_tools import REPO_ROOT, ensure_node_modules
from tests.support.servers import run_app_in_thread

DRIVER = Path(__file__).with_name("graphiql_driver.cjs")
SCREENSHOT = REPO_ROOT / "artifacts" / "graphiql-e2e.png"
OPENED_SCREENSHOT = REPO_ROOT / "artifacts" / "graphiql-e2e-opened.png"
LIVE_SCREENSHOT = REPO_ROOT / "artifacts" / "graphiql-e2e-live.png"
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
SUBSCRIPTION = f"""subscription GraphiQLLive {{
  sessions(first: {PAGE}, includeExisting: true) {{
    kind
    session {{
      sessionId
    }}
  }}
}}
"""
STREAMS_WAIT_S = 10.0


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


@pytest.fixture
def live_gateway_url(live_standin: LiveStandin) -> Iterator[str]:
    """A gateway over the test's own stand-in copy, polling live views at the shortest interval."""
    ensure_node_modules(REPO_ROOT / "web")
    settings = Settings(upstream_url=live_standin.url, live_poll_interval=1.0)
    graphiql = offline_graphiql(settings)
    assert graphiql.enabled, "web/node_modules lacks GraphiQL's assets: the page would use the CDN"
    # As `serve` runs it: a client that hangs up stops its request, and so frees its stream.
    with run_app_in_thread(
        lambda: build_gateway(settings, graphiql), handler_cancellation=True
    ) as url:
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
    live: Answer | None = None,
) -> dict[str, Any]:
    """Run the browser driver; its JSON report (see graphiql_driver.cjs). With `live`, it runs
    `SUBSCRIPTION` and `live` answers what the driver asks meanwhile."""
    options = {
        "url": url,
        "chromium": str(chromium),
        "headers": {"Coder-Session-Token": token},
        "query": QUERY if live is None else SUBSCRIPTION,
        "screenshot": str(screenshot),
        "probe": PROBE_URL,
        "keepDefaults": keep_defaults,
        "live": live is not None,
    }
    if live is None:
        return run_driver(DRIVER, options, home)
    return run_driver(DRIVER, options, home, live)


def open_streams(gateway_url: str) -> float:
    """The gateway's `aibridge_live_streams` gauge."""
    response = httpx.get(f"{gateway_url}/metrics")
    assert response.status_code == 200, response.text
    return metric(response.text, "aibridge_live_streams")


def wait_for_streams(gateway_url: str, count: float) -> None:
    """Until the gateway has `count` live streams open (bounded)."""
    deadline = time.monotonic() + STREAMS_WAIT_S
    while (streams := open_streams(gateway_url)) != count:
        assert time.monotonic() < deadline, f"{streams} live streams open, not {count}"
        time.sleep(0.05)


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


def test_graphiql_runs_a_subscription_and_shows_its_events_arriving(
    chromium: Path,
    live_gateway_url: str,
    live_standin: LiveStandin,
    admin_token: str,
    tmp_path: Path,
) -> None:
    existing = {raw["id"] for raw in rest_sessions(live_standin.url, admin_token)["sessions"]}
    appended: list[Appended] = []

    def answer(question: Any) -> Any:
        if question == {"shown": "EXISTING"}:
            # The page shows the view's current sessions: a session starts while it watches.
            assert open_streams(live_gateway_url) == 1
            appended.append(live_standin.traffic.start_session("alice"))
            return {"appended": appended[-1].session_id}
        assert question == {"stopped": True}, question
        # GraphiQL's stop button hangs up the stream, and the gateway frees it.
        wait_for_streams(live_gateway_url, 0)
        return {"streams": 0}

    report = drive_graphiql(
        chromium,
        f"{live_gateway_url}/graphql",
        admin_token,
        tmp_path,
        screenshot=LIVE_SCREENSHOT,
        live=answer,
    )
    print(f"GraphiQL screenshot: {LIVE_SCREENSHOT}")

    assert report["blocked"] == [], "the page tried to leave loopback"
    assert report["consoleErrors"] == []
    # One subscription over SSE, with the token typed into the Headers pane; no WebSocket.
    assert len(report["eventStreams"]) == 1
    assert "coder-session-token" in report["eventStreams"][0]
    assert not [r for r in report["requests"] if r.split(" ", 1)[1].startswith("ws")]
    live = report["live"]
    assert live["runningBeforeStop"], "the subscription ended before the test stopped it"
    # What the result window showed, in order: current sessions first, then the one started.
    shown = live["shown"]
    assert all("errors" not in result for result in shown), shown
    events = [result["data"]["sessions"] for result in shown]
    kinds = [event["kind"] for event in events]
    assert kinds == ["EXISTING"] * (len(kinds) - 1) + ["ADDED"], kinds
    assert 1 <= kinds.count("EXISTING") <= PAGE
    assert {event["session"]["sessionId"] for event in events[:-1]} <= existing
    assert [started.session_id for started in appended] == [events[-1]["session"]["sessionId"]]
    assert events[-1]["session"]["sessionId"] not in existing
    assert LIVE_SCREENSHOT.read_bytes().startswith(b"\x89PNG")
