"""The aiohttp application: `/graphql` (GraphiQL in a browser), `/healthz`, `/readyz`, `/metrics`.

Request ids, the access log, `/metrics`, tracing and persisted queries come from one
`Observability` (gateway/observability.py), built from the settings unless given. Extension points
for other layers, all keyword-only arguments of `create_app`: `middlewares`, `schema_extensions`,
`ide_html` (rewrites GraphiQL's HTML, e.g. CDN URLs to local assets) and `setup` (adds routes such
as the GraphiQL assets).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware
from cross_web import HTTPException
from strawberry.aiohttp.views import GraphQLView
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.base import BaseRequestProtocol
from strawberry.types import ExecutionResult

from aibridge_graphql.gateway.context import GatewayContext, build_context
from aibridge_graphql.gateway.errors import BAD_REQUEST, format_error
from aibridge_graphql.gateway.observability import Observability
from aibridge_graphql.schema import ExtensionFactory, build_schema
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient

logger = logging.getLogger("aibridge_graphql.gateway")

CLIENT_KEY = web.AppKey("aibridge_upstream_client", UpstreamClient)
SETTINGS_KEY = web.AppKey("aibridge_settings", Settings)

IdeHtmlHook = Callable[[str], str]
SetupHook = Callable[[web.Application], None]


class GatewayView(GraphQLView[GatewayContext, None]):
    """Strawberry's aiohttp view with a per-request `GatewayContext`."""

    def __init__(
        self,
        schema: ExtensionFactory | object,
        *,
        settings: Settings,
        ide_html: IdeHtmlHook | None = None,
    ) -> None:
        super().__init__(
            schema=schema,  # type: ignore[arg-type]
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
        )
        self._settings = settings
        self._ide_html = ide_html

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        # A request that is not GraphQL over HTTP at all (body not JSON, no query, a mutation
        # over GET) gets Strawberry's status with a GraphQL-shaped body, not bare text.
        try:
            return await self.run(request=request)
        except HTTPException as exc:
            error = {"message": exc.reason, "extensions": {"code": BAD_REQUEST}}
            return web.json_response({"errors": [error]}, status=exc.status_code)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET with only a persisted-query hash (APQ) has no `query` but is an operation, even
        # when it accepts */*: never answer it with GraphiQL's page.
        if "extensions" in request.query_params:
            return False
        return super().should_render_graphql_ide(request)

    @property
    def graphql_ide_html(self) -> str:
        html = super().graphql_ide_html
        return self._ide_html(html) if self._ide_html else html

    async def process_result(
        self, request: web.Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors raised outside the operation hooks (e.g. by the parser cache) bypass
        # `ErrorCodes`; `format_error` is idempotent, so format every result here too.
        if result.errors:
            result.errors = [format_error(error) for error in result.errors]
        return await super().process_result(request, result)

    async def get_context(
        self, request: web.Request, response: web.StreamResponse
    ) -> GatewayContext:
        return build_context(
            request, response, settings=self._settings, client=request.app[CLIENT_KEY]
        )


async def healthz(_: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the upstream answers, serves an AI Bridge API and is licensed for it.

    Each probe re-detects what the upstream offers (upstream/capabilities.py), so a Coder
    upgrade or a licence change shows here and in the next queries.
    """
    try:
        found = await request.app[CLIENT_KEY].capabilities.detect()
    except Exception:  # a failing probe means "not ready", whatever the reason
        logger.warning("readiness probe failed", exc_info=True)
        return web.json_response({"status": "unavailable", "upstream": "unreachable"}, status=503)
    if found.status == "ok":
        return web.json_response(
            {"status": "ready", "upstream": "reachable", "api": found.as_json()}
        )
    body: dict[str, object] = {"status": "unavailable", "upstream": found.status}
    if found.reason:
        body["reason"] = found.reason
    if found.status != "unreachable":
        body["api"] = found.as_json()
    return web.json_response(body, status=503)


async def _detect_at_start(client: UpstreamClient) -> None:
    # Learn the upstream's prefix and routes before the first query; a failure (the upstream
    # is not up yet) is not fatal: requests and readiness probes detect again.
    try:
        await client.capabilities.detect()
    except Exception:
        logger.warning("upstream capability detection failed at start", exc_info=True)


def _client_lifecycle(
    settings: Settings, client: UpstreamClient | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if client is not None:
            # The caller's client: the caller closes it.
            app[CLIENT_KEY] = client
            await _detect_at_start(client)
            yield
            return
        owned = UpstreamClient(settings)
        app[CLIENT_KEY] = owned
        try:
            await _detect_at_start(owned)
            yield
        finally:
            await owned.aclose()

    return lifecycle


def create_app(
    settings: Settings,
    *,
    client: UpstreamClient | None = None,
    middlewares: Iterable[Middleware] = (),
    schema_extensions: Sequence[ExtensionFactory] = (),
    ide_html: IdeHtmlHook | None = None,
    setup: Iterable[SetupHook] = (),
    observability: Observability | None = None,
) -> web.Application:
    """The gateway app; it creates (and closes) one pooled `UpstreamClient` unless given one.

    `observability` (request ids, JSON access log, `/metrics`, tracing, APQ) is built from the
    settings unless given (tests pass one with their own tracer provider).
    """
    observed = observability or Observability(settings)
    app = web.Application(middlewares=[observed.middleware, *middlewares])
    app[SETTINGS_KEY] = settings
    app.cleanup_ctx.append(_client_lifecycle(settings, client))
    view = GatewayView(
        build_schema(
            settings, extra_extensions=[*observed.schema_extensions(), *schema_extensions]
        ),
        settings=settings,
        ide_html=ide_html,
    )
    app.router.add_route("GET", "/graphql", view)
    app.router.add_route("POST", "/graphql", view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    observed.setup(app)
    for hook in setup:
        hook(app)
    return app
