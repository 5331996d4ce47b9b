"""CORS in a real browser: a dashboard page on one loopback origin (its own port) calls the gateway
on another, in headless Debian Chromium, the way a frontend does (`fetch` with
`Coder-Session-Token` and `Content-Type: application/json`, so Chromium preflights).

The gateway records every response it prepares (method, path, `Origin`, status, the
`Access-Control-Allow-Origin` it sent), so what Chromium sent is counted at the gateway: the
preflights themselves, which page scripts and playwright's request events never see.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import hdrs, web

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from tests.support.chromium import require_chromium, run_driver
from tests.support.servers import run_app_in_thread

DRIVER = Path(__file__).with_name("cors_driver.cjs")
PAGE = Path(__file__).with_name("cors_page.html")
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Seen:
    """One response the gateway prepared."""

    method: str
    path: str
    origin: str | None
    status: int
    allow_origin: str | None


@pytest.fixture(scope="module")
def chromium() -> Path:
    return require_chromium()


def page_app() -> web.Application:
    """The dashboard's own server: the page, nothing else."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    return app


@pytest.fixture(scope="module")
def allowed_page() -> Iterator[str]:
    """The page on the origin the gateways allow."""
    with run_app_in_thread(page_app) as url:
        yield url


@pytest.fixture(scope="module")
def other_page() -> Iterator[str]:
    """The same page on an origin no gateway allows (another port: another origin)."""
    with run_app_in_thread(page_app) as url:
        yield url


@contextmanager
def cors_gateway(
    standin_url: str, origin: str, max_age: int = 600
) -> Iterator[tuple[str, list[Seen]]]:
    """The gateway allowing `origin`, in front of the stand-in; its URL and what it answered."""
    seen: list[Seen] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        seen.append(
            Seen(
                request.method,
                request.path,
                request.headers.get(hdrs.ORIGIN),
                response.status,
                response.headers.get(hdrs.ACCESS_CONTROL_ALLOW_ORIGIN),
            )
        )

    settings = Settings(upstream_url=standin_url, cors_origins=origin, cors_max_age=max_age)
    with run_app_in_thread(
        lambda: create_app(settings, setup=[lambda app: app.on_response_prepare.append(record)])
    ) as url:
        yield url, seen


def visit(
    chromium: Path, page: str, token: str, calls: list[tuple[str, str]], home: Path
) -> dict[str, Any]:
    """Open `page` and make its calls, each `(kind, gateway URL)`; the driver's report."""
    options = {
        "chromium": str(chromium),
        "page": f"{page}/",
        "token": token,
        "calls": [{"kind": kind, "gateway": gateway} for kind, gateway in calls],
    }
    report = run_driver(DRIVER, options, home)
    urls = [request.split(" ", 1)[1] for request in report["requests"]]
    assert urls, "the driver saw no request"
    assert all(url.startswith("http://127.0.0.1:") for url in urls), urls
    return report


def total_sessions(standin_url: str, token: str) -> int:
    """`GET /sessions`'s count straight from the REST API (the ground truth)."""
    response = httpx.get(
        f"{standin_url}/api/v2/aibridge/sessions",
        params={"limit": 1},
        headers={"Coder-Session-Token": token},
    )
    assert response.status_code == 200, response.text
    count: int = response.json()["count"]
    return count


def answered(seen: list[Seen], origin: str) -> list[tuple[str, str, int, str | None]]:
    """What the gateway answered `origin`: (method, path, status, Allow-Origin), in order."""
    return [(s.method, s.path, s.status, s.allow_origin) for s in seen if s.origin == origin]


def test_a_page_on_an_allowed_origin_queries_the_gateway(
    chromium: Path, allowed_page: str, standin_url: str, tokens: dict[str, str], tmp_path: Path
) -> None:
    with cors_gateway(standin_url, allowed_page) as (gateway, seen):
        calls = [("graphql", gateway), ("graphql", gateway), ("csv", gateway)]
        report = visit(chromium, allowed_page, tokens["admin"], calls, tmp_path)

    first, second, csv = report["results"]
    expected = total_sessions(standin_url, tokens["admin"])
    for result in (first, second):
        assert result["outcome"] == "ok", result
        assert result["body"] == {"data": {"sessions": {"totalCount": expected}}}
        # Readable because the gateway exposes it.
        assert REQUEST_ID.fullmatch(result["requestId"]), result
    assert csv["outcome"] == "ok", csv
    assert csv["status"] == 200
    assert csv["body"].startswith("model,")
    assert csv["usageComplete"] == "true"
    assert report["shown"].splitlines() == [
        "graphql: HTTP 200",
        "graphql: HTTP 200",
        "csv: HTTP 200",
    ]
    assert report["consoleErrors"] == []
    # One preflight per URL: the second POST reused the first one's answer (Max-Age 600).
    assert answered(seen, allowed_page) == [
        ("OPTIONS", "/graphql", 204, allowed_page),
        ("POST", "/graphql", 200, allowed_page),
        ("POST", "/graphql", 200, allowed_page),
        ("OPTIONS", "/usage.csv", 204, allowed_page),
        ("GET", "/usage.csv", 200, allowed_page),
    ]


def test_a_page_on_another_origin_is_blocked(
    chromium: Path,
    allowed_page: str,
    other_page: str,
    standin_url: str,
    tokens: dict[str, str],
    tmp_path: Path,
) -> None:
    with cors_gateway(standin_url, allowed_page) as (gateway, seen):
        calls = [("graphql", gateway), ("csv", gateway)]
        report = visit(chromium, other_page, tokens["admin"], calls, tmp_path)

    for result in report["results"]:
        assert result["outcome"] == "failed", result
        assert result["error"].startswith("TypeError: Failed to fetch"), result
    assert report["shown"].splitlines() == [
        "graphql: failed (TypeError: Failed to fetch)",
        "csv: failed (TypeError: Failed to fetch)",
    ]
    # Chromium says why, and it is CORS (not, say, a connection refused).
    blocked = [error for error in report["consoleErrors"] if "blocked by CORS policy" in error]
    assert len(blocked) == 2, report["consoleErrors"]
    # The preflights were answered as any OPTIONS is (405, no CORS header) and Chromium sent
    # neither query: the token never reached the gateway from that origin.
    assert answered(seen, other_page) == [
        ("OPTIONS", "/graphql", 405, None),
        ("OPTIONS", "/usage.csv", 405, None),
    ]


def test_the_preflight_is_cached_for_max_age(
    chromium: Path, allowed_page: str, standin_url: str, tokens: dict[str, str], tmp_path: Path
) -> None:
    """Max-Age 600 lets two queries share one preflight (above); Max-Age 0 does not."""
    with (
        cors_gateway(standin_url, allowed_page, max_age=600) as (cached, cached_seen),
        cors_gateway(standin_url, allowed_page, max_age=0) as (uncached, uncached_seen),
    ):
        calls = [("graphql", cached), ("graphql", uncached)] * 2
        report = visit(chromium, allowed_page, tokens["admin"], calls, tmp_path)

    assert [result["outcome"] for result in report["results"]] == ["ok"] * 4, report["results"]
    methods = [[s.method for s in seen] for seen in (cached_seen, uncached_seen)]
    assert methods == [["OPTIONS", "POST", "POST"], ["OPTIONS", "POST", "OPTIONS", "POST"]]
