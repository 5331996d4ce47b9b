"""Apollo Client's own persisted-queries link against the real gateway.

Automatic persisted queries over GET and over POST, and persisted query lists: the manifest that
Apollo's `generate-persisted-query-manifest` writes from the app's sources is the gateway's
allow-list (`AIBRIDGE_APQ_PERSISTED_ONLY`). The gateway runs on loopback in front of a small
capturing upstream (real HTTP); a recording middleware shows what the link sent.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from multidict import CIMultiDict

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from tests.support.node_tools import ensure_node_modules, require_executable, run_node_bin
from tests.support.servers import run_app_in_thread

HERE = Path(__file__).parent
TOKEN = "apollo-token"
MODELS = ["model-0001", "model-0002"]
NODE_TIMEOUT_S = 60.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def upstream_app(seen: list[CIMultiDict[str]]) -> web.Application:
    """`GET /api/v2/aibridge/models`: the models, for the one token it knows."""

    async def models(request: web.Request) -> web.Response:
        seen.append(CIMultiDict(request.headers))
        if request.headers.get("Coder-Session-Token") != TOKEN:
            return web.json_response({"message": "You are signed out."}, status=401)
        return web.json_response(MODELS)

    app = web.Application()
    app.router.add_get("/api/v2/aibridge/models", models)
    return app


def recorder(sent: list[tuple[str, bool, bool]]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware noting, per GraphQL request: method, has a query, has a persisted hash."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/graphql":
            if request.method == "GET":
                data = dict(request.query)
                extensions = json.loads(data.get("extensions", "{}"))
            else:
                data = json.loads(await request.read())  # aiohttp caches it for the view
                extensions = data.get("extensions") or {}
            sent.append((request.method, bool(data.get("query")), "persistedQuery" in extensions))
        return await handler(request)

    return record


@pytest.fixture(scope="module")
def node_modules() -> Path:
    require_executable("node", "install Node.js 20+ (Apollo Client runs in Node)")
    return ensure_node_modules(HERE)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, list[CIMultiDict[str]]]]:
    seen: list[CIMultiDict[str]] = []
    with run_app_in_thread(lambda: upstream_app(seen)) as url:
        yield url, seen


def run_client(url: str, mode: str) -> list[Any]:
    """Run apq_client.mjs in `mode` against the gateway at `url`; its two results."""
    result = subprocess.run(
        [require_executable("node", "install Node.js 20+"), "apq_client.mjs", url, TOKEN, mode],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    results: list[Any] = json.loads(result.stdout)["results"]
    return results


@pytest.mark.parametrize("method", ["get", "post"])
def test_apollo_clients_persisted_queries_link_works(
    node_modules: Path, upstream: tuple[str, list[CIMultiDict[str]]], method: str
) -> None:
    upstream_url, seen = upstream
    sent: list[tuple[str, bool, bool]] = []
    settings = Settings(upstream_url=upstream_url, api_base_path="/api/v2/aibridge", retries=0)
    seen.clear()
    with run_app_in_thread(lambda: create_app(settings, middlewares=[recorder(sent)])) as url:
        results = run_client(f"{url}/graphql", method)
    assert results == [{"models": MODELS}, {"models": MODELS}]
    hashed = "GET" if method == "get" else "POST"
    # Miss, registration with the full query (Apollo always sends that by POST), then a hit.
    assert sent == [(hashed, False, True), ("POST", True, True), (hashed, False, True)]
    # Two upstream calls, each tagged with the request id: the miss never reached the upstream.
    assert len(seen) == 2
    assert all(len(headers["X-Request-Id"]) == 32 for headers in seen)


def test_a_manifest_from_apollos_tools_is_the_allow_list(
    node_modules: Path, upstream: tuple[str, list[CIMultiDict[str]]], tmp_path: Path
) -> None:
    manifest = tmp_path / "persisted-query-manifest.json"
    config = tmp_path / "persisted-query-manifest.config.json"
    config.write_text(json.dumps({"documents": ["app/**/*.js"], "output": str(manifest)}))
    generated = run_node_bin(
        node_modules, "generate-persisted-query-manifest", "--config", str(config), cwd=HERE
    )
    assert generated.returncode == 0, generated.stderr
    operations = json.loads(manifest.read_text())["operations"]
    assert [operation["name"] for operation in operations] == ["ModelsByPrefix"]

    upstream_url, _ = upstream
    sent: list[tuple[str, bool, bool]] = []
    settings = Settings(
        upstream_url=upstream_url,
        api_base_path="/api/v2/aibridge",  # the capturing upstream serves only /models there
        retries=0,
        apq_manifest=str(manifest),
        apq_persisted_only=True,
    )
    with run_app_in_thread(lambda: create_app(settings, middlewares=[recorder(sent)])) as url:
        results = run_client(f"{url}/graphql", f"manifest={manifest}")
        free_form = httpx.post(
            f"{url}/graphql",
            json={"query": operations[0]["body"], "variables": {"prefix": "model-000"}},
            headers={"Coder-Session-Token": TOKEN},
        ).json()
    assert results == [{"models": MODELS}, {"models": MODELS}]
    # The client sent ids only, never the query text; text without an id is refused.
    assert sent[:2] == [("POST", False, True), ("POST", False, True)]
    assert free_form["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
