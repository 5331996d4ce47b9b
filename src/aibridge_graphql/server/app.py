"""The aiohttp application: `/graphql` (GraphiQL in a browser), `/usage.csv`, `/healthz`,
`/readyz`, `/metrics`; CORS for the browser routes when `AIBRIDGE_CORS_ORIGINS` is set
(server/cors.py).

Request ids, the access log, `/metrics`, tracing and persisted queries come from one
`Observability` (server/observability.py), built from the settings unless given. Extension points
for other layers, all keyword-only arguments of `create_app`: `middlewares`, `schema_extensions`,
`ide_html` (rewrites GraphiQL's HTML, e.g. CDN URLs to local assets) and `setup` (adds routes such
as the GraphiQL assets).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Final, TypeGuard, cast

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.streaming import (
    HTTPStreamTransport,
    MultipartSubscriptionTransport,
    SSETransport,
)
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.graphql import OperationType

from aibridge_graphql.core.cache import close_cache
from aibridge_graphql.core.live import LiveHub
from aibridge_graphql.core.pricing import Pricer, pricer_from_settings
from aibridge_graphql.schema import ExtensionFactory, build_schema
from aibridge_graphql.schema.context import GatewayContext
from aibridge_graphql.schema.errors import format_error
from aibridge_graphql.server.apq import PERSISTED_QUERY_NOT_FOUND, PERSISTED_QUERY_NOT_SUPPORTED
from aibridge_graphql.server.context import build_context
from aibridge_graphql.server.cors import Cors, CorsPolicy
from aibridge_graphql.server.http_protocol import (
    APPLICATION_JSON,
    GRAPHQL_RESPONSE_JSON,
    RequestRejected,
    http_error_code,
    negotiate,
    parse_get,
    parse_post,
)
from aibridge_graphql.server.index import index_handler
from aibridge_graphql.server.keys import (
    CLIENT_KEY,
    DRAINING_KEY,
    LIVE_KEY,
    PRICER_KEY,
    SETTINGS_KEY,
    STREAMING_KEY,
)
from aibridge_graphql.server.observability import Observability
from aibridge_graphql.server.shutdown import Draining
from aibridge_graphql.server.usage_csv import usage_csv
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient

logger = logging.getLogger("aibridge_graphql.gateway")

# The response media type chosen from `Accept`, and whether the result was a request error.
MEDIA_TYPE_KEY = web.RequestKey("aibridge_media_type", str)
REQUEST_ERROR_KEY = web.RequestKey("aibridge_request_error", bool)
# The streaming protocol `Accept` asked for (graphql-sse, multipart subscriptions), if any.
STREAM_PROTOCOL_KEY = web.RequestKey("aibridge_stream_protocol", str)
SUBSCRIPTION_NEEDS_STREAM = (
    "A subscription answers with a stream: send it with `Accept: text/event-stream` "
    "(graphql-sse) or `Accept: multipart/mixed;subscriptionSpec=1.0` (multipart subscriptions)."
)
_APQ_RETRY_CODES = frozenset({PERSISTED_QUERY_NOT_FOUND, PERSISTED_QUERY_NOT_SUPPORTED})
# What a browser page on another origin may call (server/cors.py), with the methods each route
# serves: GraphQL and the exports; never the probes or `/metrics`, which are for operators.
BROWSER_ROUTES: Final[Mapping[str, tuple[str, ...]]] = {
    "/graphql": ("GET", "POST"),
    "/usage.csv": ("GET",),
}

IdeHtmlHook = Callable[[str], str]
SetupHook = Callable[[web.Application], None]


def _stream_transports(heartbeat: float) -> dict[str, type[HTTPStreamTransport]]:
    """Strawberry's two HTTP streaming transports, SSE with the settings' keep-alive interval."""

    class HeartbeatSSE(SSETransport):
        def __init__(self) -> None:
            super().__init__(heartbeat_interval=heartbeat)

    return {
        GRAPHQL_SSE_PROTOCOL: HeartbeatSSE,
        MULTIPART_SUBSCRIPTION_PROTOCOL: MultipartSubscriptionTransport,
    }


class GatewayView(GraphQLView[GatewayContext, None]):
    """Strawberry's aiohttp view with a per-request `GatewayContext`, speaking GraphQL over HTTP.

    `Accept` picks `application/json` (the default: every well-formed request answers 200, errors
    included) or `application/graphql-response+json` (a request error, i.e. one raised before
    execution, answers 400 with no `data`). A request that is not GraphQL over HTTP at all gets
    a 4xx with a GraphQL-shaped body (`{"errors": [{"message", "extensions": {"code"}}]}`).
    """

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
            # Subscriptions stream over HTTP, one request each (its own context, loaders,
            # deadline and budget per event). Not over a WebSocket: there every operation of a
            # connection would share one context (docs/live.md).
            subscription_protocols=(GRAPHQL_SSE_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL),
        )
        self.stream_transport_classes_by_protocol = _stream_transports(
            settings.live_heartbeat_interval
        )
        self._streams = [cls() for cls in self.stream_transport_classes_by_protocol.values()]
        self._settings = settings
        self._ide_html = ide_html

    def _stream_protocol(self, accept: str | None) -> str | None:
        # Most requests ask for JSON: not worth parsing `Accept` for a stream.
        if not accept or ("event-stream" not in accept and "multipart" not in accept):
            return None
        return next((t.protocol for t in self._streams if t.accepts(accept)), None)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        accept = request.headers.get(hdrs.ACCEPT)
        accepted = negotiate(accept)
        media = accepted or APPLICATION_JSON
        request[MEDIA_TYPE_KEY] = media
        stream = self._stream_protocol(accept)
        if stream is not None:
            request[STREAM_PROTOCOL_KEY] = stream
        try:
            if (
                accepted is None
                and stream is None
                and not self.should_render_graphql_ide(self.request_adapter_class(request))
            ):
                raise RequestRejected(
                    406, f"Accept must allow {GRAPHQL_RESPONSE_JSON} or {APPLICATION_JSON}."
                )
            response = await self.run(request=request)
        except RequestRejected as exc:
            return _error_response(exc.status, exc.message, media, exc.headers)
        except HTTPException as exc:
            return _error_response(exc.status_code, exc.reason, media)
        if isinstance(response, web.Response) and response.content_type == APPLICATION_JSON:
            response.content_type = media
            if media == GRAPHQL_RESPONSE_JSON and request.get(REQUEST_ERROR_KEY):
                response.set_status(400)
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        # Strawberry's parser lets non-objects, non-UTF-8 bodies and non-string operation names
        # through to places that crash; ours type-checks everything first.
        protocol = request.request.get(STREAM_PROTOCOL_KEY)  # type: ignore[attr-defined]
        if request.method == "GET":
            data = parse_get(request.query_params)  # type: ignore[arg-type]
        else:
            data = parse_post(request.content_type, await self._body(request))
        if protocol is not None:
            data.protocol = protocol
        return data

    async def _body(self, request: AsyncHTTPRequestAdapter) -> bytes:
        try:
            body = await request.get_body()
        except web.HTTPRequestEntityTooLarge:
            limit = request.request.client_max_size  # type: ignore[attr-defined]
            raise RequestRejected(413, f"The request body exceeds {limit} bytes.") from None
        except web.RequestPayloadError:
            # aiohttp could not decode the body as sent: not gzip (or deflate, br) although
            # `Content-Encoding` says so, or a broken chunked encoding. The client's mistake.
            raise RequestRejected(
                400, "The request body could not be decoded (check `Content-Encoding`)."
            ) from None
        return body

    async def execute_operation(
        self,
        request: web.Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: GatewayContext,
        root_value: None,
        sub_response: web.Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        result = await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )
        # Only a streaming request streams (the protocol check is cheaper than the isinstance).
        streaming = not isinstance(request_data, list) and request_data.protocol != "http"
        if streaming and isinstance(result, SubscriptionExecutionResult):
            return cast(SubscriptionExecutionResult, _request_errors_as_results(result))
        return result

    async def execute_single(
        self,
        request: web.Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: web.Response,
        context: GatewayContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # Strawberry's, with subscriptions left to the streaming transports: answered as one
        # JSON body, a subscription is refused (406) instead of failing inside.
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type == OperationType.SUBSCRIPTION:
                raise RequestRejected(406, SUBSCRIPTION_NEEDS_STREAM) from None
            # The spec's answer to a mutation over GET: 405, and say which method works.
            message = exc.as_http_error_reason(request_adapter.method)
            raise RequestRejected(405, message, headers={hdrs.ALLOW: "POST"}) from None
        except CannotGetOperationTypeError as exc:
            raise RequestRejected(400, exc.as_http_error_reason()) from None
        except MissingQueryError:
            raise RequestRejected(400, "No GraphQL query found in the request") from None

    def is_websocket_request(self, request: web.Request) -> TypeGuard[web.Request]:
        # Strawberry asks by building a WebSocketResponse, for every request: only an upgrade
        # request can be one.
        if request.headers.get(hdrs.UPGRADE, "").lower() != "websocket":
            return False
        return super().is_websocket_request(request)

    def encode_json(self, data: object) -> bytes:
        return encode_json(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: web.Response,
    ) -> web.Response:
        # Strawberry's decodes the bytes to text for aiohttp to encode them again.
        sub_response.body = self.encode_json(response_data)
        sub_response.content_type = APPLICATION_JSON
        sub_response.charset = "utf-8"
        return sub_response

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
        response = await super().process_result(request, result)
        if _is_request_error(result):
            request[REQUEST_ERROR_KEY] = True
            if request.get(MEDIA_TYPE_KEY) == GRAPHQL_RESPONSE_JSON:
                # The spec: a request error (nothing executed) has no `data` entry.
                response.pop("data", None)
        return response

    async def create_streaming_response(
        self,
        request: web.Request,
        stream: Callable[[], AsyncGenerator[str, None]],
        sub_response: web.Response,
        headers: Mapping[str, str],
    ) -> web.StreamResponse:
        # Strawberry's, except that its client closing it (a write then finds the connection
        # gone) is how a stream ends: not an error, and not a request cut short (499).
        request[STREAMING_KEY] = True
        response = web.StreamResponse(
            status=sub_response.status, headers={**sub_response.headers, **headers}
        )
        await response.prepare(request)
        chunks = stream()
        try:
            async for data in chunks:
                await response.write(data.encode())
            await response.write_eof()
        except ConnectionResetError:
            logger.debug("stream client went away")
        except Exception:
            # A bug: the answer has begun, so no 500 can follow; end it rather than leave the
            # client waiting for more.
            logger.exception("stream failed serving %s %s", request.method, request.path)
            with contextlib.suppress(ConnectionResetError):
                await response.write_eof()
        finally:
            await chunks.aclose()
        return response

    async def get_context(
        self, request: web.Request, response: web.StreamResponse
    ) -> GatewayContext:
        return build_context(
            request,
            response,
            settings=self._settings,
            client=request.app[CLIENT_KEY],
            pricer=request.app[PRICER_KEY],
            live=request.app[LIVE_KEY],
        )


async def _request_errors_as_results(
    results: SubscriptionExecutionResult,
) -> AsyncGenerator[ExecutionResult, None]:
    """A stream's results, with a request error (a document that does not parse: Strawberry's
    streaming path lets the parser cache's error escape) as the one result it is over JSON."""
    try:
        async for result in results:
            yield result
    except GraphQLError as error:
        yield ExecutionResult(data=None, errors=[error])
    finally:
        await results.aclose()  # type: ignore[attr-defined]


def encode_json(data: object) -> bytes:
    """A response body: orjson (several times faster), or json where orjson refuses the value
    (integers beyond 64 bits, lone surrogates in upstream strings)."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()


def _is_request_error(result: ExecutionResult) -> bool:
    """True when the operation never ran (parse, validation, variables): no data, no paths.

    Persisted-query misses stay 200: Apollo's link reads them from a successful response.
    """
    if result.data is not None or not result.errors:
        return False
    for error in result.errors:
        code = (error.extensions or {}).get("code")
        if error.path is not None or code in _APQ_RETRY_CODES:
            return False
    return True


def _error_response(
    status: int, message: str, media: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A GraphQL-shaped error body for a request refused before GraphQL handled it."""
    error = {"message": message, "extensions": {"code": http_error_code(status)}}
    return web.json_response(
        {"errors": [error]}, status=status, content_type=media, headers=headers
    )


class _ClientHTTPErrorsAtInfo(logging.Filter):
    """aiohttp logs a request it cannot parse (a URL over 8 KB, a bad header) as ERROR with a
    traceback, before any handler runs: a client's mistake. This turns such a record into one
    INFO line naming only the error class (the raw line may hold a query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "malformed HTTP request refused (%s)", (type(exc).__name__,)
            record.exc_info = record.exc_text = None
        return True


def _demote_client_http_errors() -> None:
    server_logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _ClientHTTPErrorsAtInfo) for f in server_logger.filters):
        server_logger.addFilter(_ClientHTTPErrorsAtInfo())


async def healthz(_: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the upstream answers, serves an AI Bridge API and is licensed for it.

    Each probe re-detects what the upstream offers (upstream/capabilities.py), so a Coder
    upgrade or a licence change shows here and in the next queries. Once a shutdown began it
    answers 503 without asking the upstream (server/shutdown.py).
    """
    if request.app[DRAINING_KEY].started:
        return web.json_response({"status": "shutting down"}, status=503)
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


def _live_lifecycle(
    live: LiveHub | None, observed: Observability
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        hub = live or LiveHub(
            app[CLIENT_KEY], app[SETTINGS_KEY], pricer=app[PRICER_KEY], metrics=observed.metrics
        )
        app[LIVE_KEY] = hub
        try:
            yield
        finally:
            if live is None:
                hub.close()

    return lifecycle


def _client_lifecycle(
    settings: Settings, client: UpstreamClient | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if client is not None:
            # The caller's client: the caller closes it; its cache (Redis connections) goes with
            # the app (a face still using it would reconnect).
            app[CLIENT_KEY] = client
            await _detect_at_start(client)
            try:
                yield
            finally:
                await close_cache(client)
            return
        owned = UpstreamClient(settings)
        app[CLIENT_KEY] = owned
        try:
            await _detect_at_start(owned)
            yield
        finally:
            await close_cache(owned)
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
    pricer: Pricer | None = None,
    live: LiveHub | None = None,
) -> web.Application:
    """The gateway app; it creates (and closes) one pooled `UpstreamClient` unless given one,
    and a `LiveHub` for its subscriptions unless given the process's one.

    `pricer` is the process's one `Pricer`; without it one is built from the settings here (a bad
    prices file raises `PricesFileError`).

    `observability` (request ids, JSON access log, `/metrics`, tracing, APQ) is built from the
    settings unless given (tests pass one with their own tracer provider).
    """
    _demote_client_http_errors()
    observed = observability or Observability(settings)
    draining = Draining()
    policy = CorsPolicy.from_settings(settings, BROWSER_ROUTES)
    cors = Cors(policy) if policy is not None else None
    # Inside the observability middleware: a request answered 503 at shutdown is logged as such;
    # preflights are logged too, and answered before any other layer's middleware (they carry no
    # credentials by design).
    app = web.Application(
        middlewares=[
            observed.middleware,
            draining.middleware,
            *([cors.middleware] if cors is not None else []),
            *middlewares,
        ]
    )
    if cors is not None:
        cors.install(app)
    app[DRAINING_KEY] = draining
    app[SETTINGS_KEY] = settings
    app[PRICER_KEY] = pricer or pricer_from_settings(settings)
    app.cleanup_ctx.append(_client_lifecycle(settings, client))
    app.cleanup_ctx.append(_live_lifecycle(live, observed))
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
    app.router.add_get("/", index_handler(settings.graphiql))
    app.router.add_get("/usage.csv", usage_csv)
    observed.setup(app)
    for hook in setup:
        hook(app)
    return app
