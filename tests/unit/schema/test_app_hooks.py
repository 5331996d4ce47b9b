"""The app's extension points: middlewares, schema extensions, GraphiQL HTML and extra routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from strawberry.extensions import SchemaExtension

from aibridge_graphql.schema.context import GatewayContext
from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient
from tests.support.gateway_fakes import populated

SETTINGS = Settings(upstream_url="http://upstream.invalid", retries=0)


class _SeesContext(SchemaExtension):
    seen: list[str] = []  # noqa: RUF012 (a test probe)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        assert isinstance(context, GatewayContext)
        _SeesContext.seen.append(context.request_id)
        yield


async def test_hooks_are_wired() -> None:
    calls: list[str] = []

    @web.middleware
    async def tag(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        calls.append(request.path)
        response = await handler(request)
        response.headers["X-Tagged"] = "yes"
        return response

    async def assets(_: web.Request) -> web.Response:
        return web.Response(text="asset")

    def add_assets(app: web.Application) -> None:
        app.router.add_get("/graphiql-assets/x.js", assets)

    fake = populated()
    client = UpstreamClient(SETTINGS, transport=fake.transport())
    app = create_app(
        SETTINGS,
        client=client,
        middlewares=[tag],
        schema_extensions=[_SeesContext],
        ide_html=lambda html: html.replace("<head>", "<head><!-- local assets -->"),
        setup=[add_assets],
    )
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as http:
            page = await http.get("/graphql", headers={"Accept": "text/html"})
            html = await page.text()
            asset = await (await http.get("/graphiql-assets/x.js")).text()
            result = await http.post(
                "/graphql",
                json={"query": "{ models }"},
                headers={"Coder-Session-Token": "admin-token"},
            )
            body = await result.json()
    finally:
        await client.aclose()
    assert "<!-- local assets -->" in html
    assert asset == "asset"
    assert body == {"data": {"models": ["model-0000", "model-0001", "model-0002"]}}
    assert result.headers["X-Tagged"] == "yes"
    assert calls == ["/graphql", "/graphiql-assets/x.js", "/graphql"]
    assert len(_SeesContext.seen) == 1
    assert len(_SeesContext.seen[0]) == 32
