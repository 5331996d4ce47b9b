"""GraphiQL offline: the page's CDN URLs are rewritten and an allow-list of files is served; the
page runs subscriptions with graphql-sse's client, whose pinned hash is npm's file's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from strawberry.http.ides import get_graphql_ide_html

from aibridge_graphql.server.graphiql import (
    ASSETS,
    CACHE_CONTROL,
    CDN_PREFIX,
    SSE_CLIENT,
    SSE_CLIENT_INTEGRITY,
    add_graphiql_asset_routes,
    find_assets_dir,
    offline_graphiql,
    page_integrity,
    rewrite_graphiql_html,
    sri_hash,
    with_sse_subscriptions,
)
from aibridge_graphql.settings import Settings
from tests.support.node_tools import REPO_ROOT, ensure_node_modules


def fake_node_modules(root: Path) -> Path:
    """A node_modules folder with each asset's file (its own name as content)."""
    node_modules = root / "node_modules"
    for asset in ASSETS:
        path = asset.file(node_modules)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"/* {asset.name} */", encoding="utf-8")
    return node_modules


def integrity_of(node_modules: Path) -> dict[str, str]:
    """What a page pinning exactly these files would carry as SRI hashes."""
    return {asset.name: sri_hash(asset.file(node_modules)) for asset in ASSETS}


def test_the_page_pins_exactly_the_allow_listed_assets() -> None:
    # If Strawberry changes its GraphiQL page, this says so (the assets would silently be unused).
    pinned = page_integrity()
    assert set(pinned) == {asset.name for asset in ASSETS}
    assert all(value.startswith("sha384-") for value in pinned.values())


def test_rewrite_points_every_asset_at_the_local_route_and_keeps_sri() -> None:
    html = with_sse_subscriptions(get_graphql_ide_html("graphiql"))
    integrity_before = html.count('integrity="sha384-')
    rewritten = rewrite_graphiql_html(html, "/graphiql-assets")
    assert CDN_PREFIX not in rewritten
    for asset in ASSETS:
        assert f'"/graphiql-assets/{asset.name}"' in rewritten
    assert integrity_before == len(ASSETS)
    assert rewritten.count('integrity="sha384-') == integrity_before


def test_the_page_sends_subscriptions_over_sse_with_the_pinned_client() -> None:
    html = get_graphql_ide_html("graphiql")
    page = with_sse_subscriptions(html)
    assert page_integrity(page)[SSE_CLIENT.name] == SSE_CLIENT_INTEGRITY
    # The client loads before the page's script uses it.
    assert page.index(SSE_CLIENT.name) < page.index("graphqlSse.createClient")
    # GraphiQL's own fetcher keeps queries; it is no longer told of a WebSocket URL.
    assert "subscriptionUrl," in html
    assert "subscriptionUrl," not in page
    assert "GraphiQL.createFetcher({ url: fetchURL, headers: defaultHeaders })" in page
    # A page of another shape is left as it is (and GraphiQL still opens).
    assert with_sse_subscriptions("<html><head></head></html>") == "<html><head></head></html>"


def test_the_pinned_sse_client_is_the_locked_npm_file() -> None:
    lock = json.loads((REPO_ROOT / "web" / "package-lock.json").read_text())
    assert lock["packages"][f"node_modules/{SSE_CLIENT.package}"]["version"] == SSE_CLIENT.version
    node_modules = ensure_node_modules(REPO_ROOT / "web")
    assert sri_hash(SSE_CLIENT.file(node_modules)) == SSE_CLIENT_INTEGRITY


def test_find_assets_dir_uses_the_setting_and_checks_hashes(tmp_path: Path) -> None:
    good = fake_node_modules(tmp_path / "good")
    expected = integrity_of(good)
    assert find_assets_dir(Settings(graphiql_assets_dir=str(good)), expected) == good.resolve()
    # The folder holding node_modules (like `web`) works too.
    in_web = Settings(graphiql_assets_dir=str(good.parent))
    assert find_assets_dir(in_web, expected) == good.resolve()
    # Another version of one file (its bytes differ from the pinned hash): use the CDN.
    stale = fake_node_modules(tmp_path / "stale")
    ASSETS[5].file(stale).write_text("/* graphiql 3.8.2 */", encoding="utf-8")
    assert find_assets_dir(Settings(graphiql_assets_dir=str(stale)), expected) is None
    ASSETS[0].file(good).unlink()
    assert find_assets_dir(Settings(graphiql_assets_dir=str(good)), expected) is None
    assert find_assets_dir(Settings(graphiql_assets_dir=str(tmp_path / "absent")), expected) is None


def test_no_assets_means_no_route_and_an_unchanged_page(tmp_path: Path) -> None:
    app = web.Application()
    assert add_graphiql_asset_routes(app, tmp_path) is False
    assert add_graphiql_asset_routes(app, None) is False
    hooks = offline_graphiql(Settings(graphiql_assets_dir=str(tmp_path)))
    assert not hooks.enabled
    assert (
        hooks.ide_html("<script src='https://unpkg.com/x'>") == "<script src='https://unpkg.com/x'>"
    )


@pytest.fixture
async def assets_client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    node_modules = fake_node_modules(tmp_path)
    # A file that exists but is not allow-listed must stay unreachable.
    (node_modules / "graphiql" / "secret.txt").write_text("no")
    (tmp_path / "outside.txt").write_text("no")
    app = web.Application()
    assert add_graphiql_asset_routes(app, node_modules, expected=integrity_of(node_modules))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_asset_route_serves_allow_listed_files(
    assets_client: TestClient[web.Request, web.Application],
) -> None:
    for asset in ASSETS:
        response = await assets_client.get(f"/graphiql-assets/{asset.name}")
        assert response.status == 200, asset.name
        assert await response.text() == f"/* {asset.name} */"
        expected = "text/css" if asset.path.endswith(".css") else "application/javascript"
        assert response.headers["Content-Type"].startswith(expected)
        assert response.headers["Cache-Control"] == CACHE_CONTROL


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql-assets/graphiql@3.8.3/secret.txt",
        "/graphiql-assets/graphiql@3.8.3/../../outside.txt",
        "/graphiql-assets/graphiql@3.8.3/%2e%2e/%2e%2e/outside.txt",
        "/graphiql-assets/..%2F..%2Foutside.txt",
        "/graphiql-assets/graphiql/graphiql.min.js",
        "/graphiql-assets/graphiql@3.8.2/graphiql.min.js",
        "/graphiql-assets/",
    ],
)
async def test_asset_route_refuses_anything_else(
    assets_client: TestClient[web.Request, web.Application], path: str
) -> None:
    response = await assets_client.get(path)
    assert response.status == 404
