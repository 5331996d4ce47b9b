"""CORS (server/cors.py): the exact headers of preflights and actual requests, per origin.

The real gateway app in front of the fake upstream. Each row sends one request and compares the
response's status and every `Access-Control-*` and `Vary` header with what it must be: an allowed
origin gets its CORS headers, any other origin (`null`, malformed, none) none at all and a
normal answer, and every answer of a browser route says `Vary: Origin`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import pytest
from aiohttp import hdrs, web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from aibridge_graphql.server import cli
from aibridge_graphql.server.app import BROWSER_ROUTES, create_app
from aibridge_graphql.server.cors import Cors, CorsPolicy
from aibridge_graphql.server.index import endpoints
from aibridge_graphql.settings import Settings
from tests.support.gateway_fakes import FakeUpstream, gateway, populated

ALLOWED = "http://127.0.0.1:5173"
OTHER = "https://dash.example.com"
# Listed beside ALLOWED, so that matching is shown to pick the request's origin out of a list.
ALSO_LISTED = "https://other.example.com"
ALLOW_HEADERS = (
    "accept, authorization, cache-control, coder-session-token, content-type, "
    "traceparent, tracestate, x-request-id"
)
EXPOSE_HEADERS = (
    "X-Request-Id, X-Usage-Complete, X-Usage-Incomplete-Reason, X-Usage-Upstream-Calls, "
    "X-Usage-Source"
)
QUERY = '{"query": "{ models }"}'
# The operators' routes: never shared with browser pages on other origins.
OPERATOR_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def preflight(origin: str | None, method: str = "POST") -> dict[str, str]:
    headers = {
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "coder-session-token,content-type",
    }
    return headers | ({"Origin": origin} if origin is not None else {})


def actual(origin: str | None) -> dict[str, str]:
    headers = {"Coder-Session-Token": "admin-token", "Content-Type": "application/json"}
    return headers | ({"Origin": origin} if origin is not None else {})


def preflight_answer(origin: str, methods: str = "GET, POST", vary: bool = True) -> dict[str, str]:
    answer = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": "600",
    }
    return answer | ({"Vary": "Origin"} if vary else {})


def shared(origin: str, vary: bool = True) -> dict[str, str]:
    answer = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
    }
    return answer | ({"Vary": "Origin"} if vary else {})


NOT_SHARED = {"Vary": "Origin"}


@dataclass(frozen=True)
class Row:
    """One request and the status and CORS headers its answer must have."""

    id: str
    method: str
    path: str
    headers: Mapping[str, str]
    status: int
    cors: Mapping[str, str]
    body: bool = False  # POST the GraphQL query


EXACT_ROWS = [
    Row(
        "preflight-allowed",
        "OPTIONS",
        "/graphql",
        preflight(ALLOWED),
        204,
        preflight_answer(ALLOWED),
    ),
    Row(
        "preflight-allowed-get",
        "OPTIONS",
        "/graphql",
        preflight(ALLOWED, "GET"),
        204,
        preflight_answer(ALLOWED),
    ),
    Row(
        "preflight-allowed-usage-csv",
        "OPTIONS",
        "/usage.csv",
        preflight(ALLOWED, "GET"),
        204,
        preflight_answer(ALLOWED, "GET"),
    ),
    # Whatever is asked, the same answer: the browser compares it with the lists.
    Row(
        "preflight-allowed-asks-put",
        "OPTIONS",
        "/graphql",
        preflight(ALLOWED, "PUT"),
        204,
        preflight_answer(ALLOWED),
    ),
    Row("preflight-disallowed", "OPTIONS", "/graphql", preflight(OTHER), 405, NOT_SHARED),
    Row("preflight-null", "OPTIONS", "/graphql", preflight("null"), 405, NOT_SHARED),
    Row("preflight-malformed", "OPTIONS", "/graphql", preflight("not an origin"), 405, NOT_SHARED),
    Row("preflight-uppercase", "OPTIONS", "/graphql", preflight(ALLOWED.upper()), 405, NOT_SHARED),
    Row("preflight-with-path", "OPTIONS", "/graphql", preflight(ALLOWED + "/"), 405, NOT_SHARED),
    Row("preflight-no-origin", "OPTIONS", "/graphql", preflight(None), 405, NOT_SHARED),
    # Not a preflight (no Access-Control-Request-Method): the router's 405, shared.
    Row("options-not-preflight", "OPTIONS", "/graphql", {"Origin": ALLOWED}, 405, shared(ALLOWED)),
    Row("post-allowed", "POST", "/graphql", actual(ALLOWED), 200, shared(ALLOWED), body=True),
    Row("post-disallowed", "POST", "/graphql", actual(OTHER), 200, NOT_SHARED, body=True),
    Row("post-null", "POST", "/graphql", actual("null"), 200, NOT_SHARED, body=True),
    Row("post-malformed", "POST", "/graphql", actual("http://"), 200, NOT_SHARED, body=True),
    Row("post-no-origin", "POST", "/graphql", actual(None), 200, NOT_SHARED, body=True),
    Row("get-allowed", "GET", "/graphql?query=%7Bmodels%7D", actual(ALLOWED), 200, shared(ALLOWED)),
    # A request the view refuses (415) is shared too: the page can read why.
    Row(
        "post-refused-allowed",
        "POST",
        "/graphql",
        {"Origin": ALLOWED, "Content-Type": "text/plain"},
        415,
        shared(ALLOWED),
        body=True,
    ),
    Row("usage-csv-allowed", "GET", "/usage.csv", actual(ALLOWED), 200, shared(ALLOWED)),
    Row("usage-csv-disallowed", "GET", "/usage.csv", actual(OTHER), 200, NOT_SHARED),
    # The operators' routes: no CORS at all, whoever asks.
    Row("metrics-allowed", "GET", "/metrics", actual(ALLOWED), 200, {}),
    Row("metrics-preflight", "OPTIONS", "/metrics", preflight(ALLOWED, "GET"), 405, {}),
    Row("healthz-allowed", "GET", "/healthz", actual(ALLOWED), 200, {}),
    Row("readyz-allowed", "GET", "/readyz", actual(ALLOWED), 200, {}),
]

ANY_ROWS = [
    Row(
        "any-preflight",
        "OPTIONS",
        "/graphql",
        preflight(OTHER),
        204,
        preflight_answer("*", vary=False),
    ),
    Row(
        "any-preflight-null",
        "OPTIONS",
        "/graphql",
        preflight("null"),
        204,
        preflight_answer("*", vary=False),
    ),
    Row("any-preflight-no-origin", "OPTIONS", "/graphql", preflight(None), 405, shared("*", False)),
    Row("any-post", "POST", "/graphql", actual(OTHER), 200, shared("*", vary=False), body=True),
    Row("any-post-no-origin", "POST", "/graphql", actual(None), 200, shared("*", False), body=True),
    Row("any-usage-csv", "GET", "/usage.csv", actual("null"), 200, shared("*", vary=False)),
    Row("any-metrics", "GET", "/metrics", actual(OTHER), 200, {}),
]

# CORS off (the default): what the gateway always answered, no CORS header, no Vary.
OFF_ROWS = [
    Row("off-preflight", "OPTIONS", "/graphql", preflight(ALLOWED), 405, {}),
    Row("off-post", "POST", "/graphql", actual(ALLOWED), 200, {}, body=True),
    Row("off-usage-csv", "GET", "/usage.csv", actual(ALLOWED), 200, {}),
]


def cors_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The response's CORS and Vary headers, by lowercase name (each must be sent once)."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith("access-control-") or lowered == "vary":
            assert lowered not in found, f"{name} sent twice"
            found[lowered] = value
    return found


def lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def fake() -> FakeUpstream:
    return populated(sessions=3, threads=2, interceptions=3)


async def check(settings: Settings, row: Row, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with gateway(fake(), settings) as gw:
        response = await gw.http.request(
            row.method, row.path, headers=dict(row.headers), data=QUERY if row.body else None
        )
        body = await response.read()
    assert response.status == row.status, body
    assert cors_headers(response.headers) == lowered(row.cors)
    if row.status == 405:
        assert response.headers[hdrs.ALLOW] in ("GET,POST", "GET,HEAD")
    if row.status == 204:
        assert body == b""
    loud = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno > logging.INFO]
    assert loud == []


def settings_with(origins: str | None) -> Settings:
    return Settings(upstream_url="http://upstream.invalid", retries=0, cors_origins=origins)


@pytest.mark.parametrize("row", EXACT_ROWS, ids=lambda row: row.id)
async def test_exact_origins(row: Row, caplog: pytest.LogCaptureFixture) -> None:
    await check(settings_with(f"{ALSO_LISTED},{ALLOWED}"), row, caplog)


@pytest.mark.parametrize("row", ANY_ROWS, ids=lambda row: row.id)
async def test_any_origin(row: Row, caplog: pytest.LogCaptureFixture) -> None:
    await check(settings_with("*"), row, caplog)


@pytest.mark.parametrize("row", OFF_ROWS, ids=lambda row: row.id)
async def test_off_by_default(row: Row, caplog: pytest.LogCaptureFixture) -> None:
    assert Settings().cors_origins is None
    await check(settings_with(None), row, caplog)


async def test_the_allowed_origin_reads_the_exposed_headers() -> None:
    """What the exposed list is for: `/usage.csv`'s scan headers and the request id exist."""
    async with gateway(fake(), settings_with(ALLOWED)) as gw:
        response = await gw.http.get("/usage.csv", headers=actual(ALLOWED))
        assert response.status == 200, await response.text()
        assert (await response.text()).startswith("sessions,threads,")
    exposed = response.headers["Access-Control-Expose-Headers"].split(", ")
    present = {name for name in exposed if name in response.headers}
    assert present >= {"X-Request-Id", "X-Usage-Complete", "X-Usage-Upstream-Calls"}


async def test_max_age_is_the_setting() -> None:
    settings = Settings(
        upstream_url="http://upstream.invalid", cors_origins=ALLOWED, cors_max_age=0
    )
    async with gateway(fake(), settings) as gw:
        response = await gw.http.options("/graphql", headers=preflight(ALLOWED))
    assert response.status == 204
    assert response.headers["Access-Control-Max-Age"] == "0"


async def streamed(_: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Vary": "Accept"})
    await response.prepare(_)
    for n in range(3):
        await response.write(f"data: {n}\n\n".encode())
    await response.write_eof()
    return response


@pytest.fixture
async def streaming_client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A bare app with one streamed browser route, under the gateway's CORS."""
    policy = CorsPolicy(frozenset({ALLOWED}), False, 600, {"/stream": ("GET",)})
    cors = Cors(policy)
    app = web.Application(middlewares=[cors.middleware])
    cors.install(app)
    app.router.add_get("/stream", streamed)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def test_a_streamed_answer_is_shared_before_its_first_byte(
    streaming_client: TestClient[web.Request, web.Application],
) -> None:
    response = await streaming_client.get("/stream", headers={"Origin": ALLOWED})
    assert await response.text() == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert cors_headers(response.headers) == lowered(shared(ALLOWED) | {"Vary": "Accept, Origin"})
    other = await streaming_client.get("/stream", headers={"Origin": OTHER})
    await other.read()
    assert cors_headers(other.headers) == {"vary": "Accept, Origin"}


def test_every_endpoint_is_a_browser_route_or_an_operators_one() -> None:
    """A new endpoint must choose: shared with browser pages (BROWSER_ROUTES), or not."""
    listed = set(endpoints(graphiql=True))
    assert listed == set(BROWSER_ROUTES) | OPERATOR_PATHS
    assert not set(BROWSER_ROUTES) & OPERATOR_PATHS


def test_browser_routes_name_the_methods_the_router_serves() -> None:
    app = create_app(settings_with(ALLOWED))
    served: dict[str, set[str]] = {}
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        served.setdefault(path, set()).add(route.method)
    for path, methods in BROWSER_ROUTES.items():
        # HEAD comes with every GET route, and is a CORS-safelisted method anyway.
        assert served[path] - {"HEAD"} == set(methods), path


def test_serve_takes_the_origins_as_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []

    async def run_gateway(settings: Settings, _: object) -> None:
        seen.append(settings)

    monkeypatch.setattr("aibridge_graphql.server.serving.run_gateway", run_gateway)
    monkeypatch.delenv("AIBRIDGE_CORS_ORIGINS", raising=False)
    result = CliRunner().invoke(
        cli.serve, ["--cors-origins", f"{ALLOWED}, HTTPS://Dash.Example.com:443/"]
    )
    assert result.exit_code == 0, result.output
    assert seen[0].cors_origins == (ALLOWED, OTHER)


def test_serve_refuses_a_bad_origin_in_one_line() -> None:
    result = CliRunner().invoke(cli.serve, ["--cors-origins", f"{ALLOWED},null"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "cors_origins (AIBRIDGE_CORS_ORIGINS)" in lines[0]
    assert "entry 2" in lines[0]
