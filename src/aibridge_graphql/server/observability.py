"""One app's observability: request ids, access logs, `/metrics`, tracing and persisted queries.

`Observability(settings)` is built once per app by `create_app` (tests pass their own, e.g. with
an in-memory span exporter). Its middleware gives every request an id (the caller's
`X-Request-Id` when it is safe, else a new one), returns it in the response header, sends it
upstream, counts requests in flight and writes one access-log line. Its schema extensions run
the APQ protocol and observe each GraphQL operation (metrics, span, name for the log).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from strawberry.extensions import SchemaExtension

from aibridge_graphql.core.cache import RedisCache
from aibridge_graphql.core.metrics import GatewayMetrics, multiprocess_dir
from aibridge_graphql.core.scope import (
    CURRENT_SCOPE,
    REQUEST_ID_HEADER,
    RequestScope,
    accept_request_id,
)
from aibridge_graphql.schema.errors import format_error
from aibridge_graphql.server.apq import (
    PersistedQueries,
    PersistedQueryStore,
    QueryStore,
    SharedQueryStore,
    load_manifest,
)
from aibridge_graphql.server.context import REQUEST_ID_KEY
from aibridge_graphql.server.keys import STREAMING_KEY
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.observe import CURRENT_OBSERVER

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from aibridge_graphql.core.tracing import Tracing
    from aibridge_graphql.schema import ExtensionFactory

logger = logging.getLogger("aibridge_graphql.gateway")
access_logger = logging.getLogger("aibridge_graphql.access")

METRICS_PATH: Final = "/metrics"
# Probes are frequent and boring: logged at DEBUG.
_QUIET_PATHS: Final = frozenset({"/healthz", "/readyz"})
# The W3C trace context of the caller: the only request headers tracing reads.
TRACE_HEADERS: Final = ("traceparent", "tracestate")
_BAD_REQUEST: Final = "BAD_REQUEST"
# nginx's status for a request whose client closed the connection before the answer: the
# client's doing, so never a 5xx in the access log (issue 20). No response is sent.
CLIENT_CLOSED_REQUEST: Final = 499
# The outcome of an operation cut short by a cancellation (a client hang-up, a shutdown).
_CANCELLED: Final = "CANCELLED"
# Methods are a label: anything but the standard ones counts as `other`.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_tracing(settings: Settings, provider: TracerProvider | None) -> Tracing | None:
    """Tracing when the setting is on and the `[otel]` extra is installed; None otherwise."""
    if not settings.tracing:
        return None
    try:
        from aibridge_graphql.core.tracing import Tracing, default_provider

        # The SDK and exporter are imported only when no provider is given.
        return Tracing(provider or default_provider())
    except ImportError:
        logger.warning(
            "AIBRIDGE_TRACING is on but OpenTelemetry is not installed; "
            "install 'aibridge-graphql[otel]'. Tracing is off."
        )
        return None


class OperationObserver(SchemaExtension):
    """Times each GraphQL operation, wraps it in a span and records its name and outcome."""

    def on_operation(self) -> Iterator[None]:
        scope = CURRENT_SCOPE.get()
        if scope is None:  # executed outside the HTTP middleware (e.g. schema.execute in tests)
            yield
            return
        started = time.perf_counter()
        tracing = scope.tracing
        span_context = (
            tracing.operation(scope.trace_headers, scope.request_id) if tracing else nullcontext()
        )
        codes = [_BAD_REQUEST]  # what remains when the operation is refused by an exception
        with span_context as span:
            try:
                yield
                codes = self._codes()
            except (asyncio.CancelledError, GeneratorExit):
                # Not the request's fault nor the gateway's: the client left (or we stop).
                codes = [_CANCELLED]
                raise
            finally:
                name, kind = self._name_and_type()
                scope.metrics.observe_operation(name, codes, time.perf_counter() - started)
                scope.operations.append(name or "anonymous")
                scope.outcomes.append(codes[0] if codes else "ok")
                if tracing is not None and span is not None:
                    tracing.finish_operation(span, name, kind, codes)

    def _codes(self) -> list[str]:
        errors = getattr(self.execution_context.result, "errors", None) or []
        codes = []
        for error in errors:
            extensions = format_error(error).extensions or {}
            codes.append(str(extensions.get("code", "INTERNAL_SERVER_ERROR")))
        return codes

    def _name_and_type(self) -> tuple[str | None, str | None]:
        context = self.execution_context
        try:
            name = context.operation_name
            kind = context.operation_type.value if context.graphql_document else None
        except RuntimeError:  # no operation of that name in the document
            return context.operation_name, None
        return name, kind


async def serve_metrics(metrics: GatewayMetrics, request: web.Request) -> web.Response:
    """`GET /metrics`: the text format (or OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encoder(metrics.exposed), headers={"Content-Type": content_type})


class Observability:
    """Metrics registry, optional tracing and APQ store of one app, with their hooks."""

    def __init__(
        self, settings: Settings, *, tracer_provider: TracerProvider | None = None
    ) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics(shared_dir=multiprocess_dir())
        self.tracing = load_tracing(settings, tracer_provider)
        pinned = load_manifest(settings.apq_manifest) if settings.apq_manifest else {}
        self.persisted_queries = PersistedQueryStore(settings.apq_cache_size, pinned)
        # With `apq_store=redis`, registrations are shared with the other replicas.
        self._apq_redis: RedisCache | None = None
        self.query_store: QueryStore = self.persisted_queries
        if settings.apq_store == "redis" and settings.cache_url:
            self._apq_redis = RedisCache(settings.cache_url, timeout=settings.cache_timeout)
            self.query_store = SharedQueryStore(self.persisted_queries, self._apq_redis)

    def schema_extensions(self) -> list[ExtensionFactory]:
        """APQ first (it may refuse the operation before the others start), then the observer."""
        apq = functools.partial(
            PersistedQueries,
            store=self.query_store,
            enabled=self.settings.apq_enabled,
            persisted_only=self.settings.apq_persisted_only,
        )
        return [apq, OperationObserver]

    def setup(self, app: web.Application) -> None:
        """Add `GET /metrics`."""
        app.router.add_get(METRICS_PATH, functools.partial(serve_metrics, self.metrics))
        app.on_cleanup.append(self._close)

    async def _close(self, _: web.Application) -> None:
        if self._apq_redis is not None:
            await self._apq_redis.aclose()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Request id in and out, the scope for everything below, in-flight gauge, access log."""
        if request.path == METRICS_PATH:
            return await handler(request)
        request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
        request[REQUEST_ID_KEY] = request_id
        scope = RequestScope(
            request_id=request_id,
            metrics=self.metrics,
            tracing=self.tracing,
            trace_headers=_trace_headers(request.headers),
        )
        scope_token = CURRENT_SCOPE.set(scope)
        observer_token = CURRENT_OBSERVER.set(scope)
        self.metrics.in_flight.inc()
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the client hangs up (`handler_cancellation`):
            # the normal end of a stream (already answered 200), else a request cut short.
            if request.get(STREAMING_KEY):
                status = 200
            elif _client_gone(request):
                status = CLIENT_CLOSED_REQUEST
                method = request.method if request.method in _METHODS else "other"
                self.metrics.client_closed.labels(method).inc()
            raise
        except Exception:
            # A bug: logged here with the request id (the scope is still set), masked for clients.
            logger.exception("unhandled error serving %s %s", request.method, request.path)
            response = web.json_response(
                {"message": "Internal server error", "request_id": request_id}, status=500
            )
        finally:
            self.metrics.in_flight.dec()
            _access_log(request, scope, status, time.perf_counter() - started)
            CURRENT_OBSERVER.reset(observer_token)
            CURRENT_SCOPE.reset(scope_token)
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response


def _client_gone(request: web.Request) -> bool:
    """Whether the client's connection is closed (as opposed to a cancellation of our own)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _trace_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in TRACE_HEADERS if name in headers}


def _access_log(request: web.Request, scope: RequestScope, status: int, seconds: float) -> None:
    fields: dict[str, Any] = {
        "method": request.method,
        "path": request.path,  # never the query string: GET variables may be sensitive
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
    }
    if scope.operations:
        fields["operation"] = ",".join(scope.operations)
    if scope.outcomes:
        fields["outcome"] = ",".join(scope.outcomes)
    if scope.apq:
        fields["apq"] = scope.apq
    level = logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO
    access_logger.log(level, "%s %s %s", request.method, request.path, status, extra=fields)
