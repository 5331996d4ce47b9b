"""The server interceptor of the gRPC face: request id, deadline, metrics, tracing, status mapping.

For every unary call, and every server-streaming call of the face's own services (the live
watches), it:
- takes the caller's `x-request-id` metadata when safe (else a new id) and sends it back in the
  initial metadata; the id goes upstream as `X-Request-Id`, as for GraphQL requests;
- sets the same `RequestScope` the HTTP middleware sets, so upstream calls are counted in the
  shared `/metrics` registry and traced as children of the RPC's span;
- bounds the handler by the caller's deadline (the call's loaders cancel their upstream work
  when the call's task ends: answered, timed out or cancelled);
- maps exceptions to `google.rpc.Status` (grpc/status.py) and counts the call per method and code.
A stream is one call from its start to its status: its latency is how long it stayed open, and
the deadline bounds the whole stream. Other streaming methods (the health service's Watch,
reflection) pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Final, cast

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry, Counter, Histogram

from aibridge_graphql.core.metrics import GatewayMetrics
from aibridge_graphql.core.scope import CURRENT_SCOPE, RequestScope, accept_request_id
from aibridge_graphql.grpc.status import code_name, deadline_status, status_for
from aibridge_graphql.upstream.observe import CURRENT_OBSERVER

if TYPE_CHECKING:
    # Only imported when tracing is on (the optional `[otel]` extra).
    from aibridge_graphql.core.tracing import Tracing

logger = logging.getLogger("aibridge_graphql.grpc")
access_logger = logging.getLogger("aibridge_graphql.access")

REQUEST_ID_METADATA: Final = "x-request-id"
_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_QUIET_SERVICES: Final = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
# A server-streaming handler of the face: an async generator of responses.
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncGenerator[Any, None]]


class GrpcMetrics:
    """gRPC series in the app's registry (served by the aiohttp app's `/metrics`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter(
            "aibridge_grpc_server_handled",
            "gRPC calls by full method name and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "aibridge_grpc_server_handling_seconds",
            "gRPC call latency by full method name and status code.",
            ["method", "code"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Record one finished call (method names come from the server's own table)."""
        self.handled.labels(method, code).inc()
        self.duration.labels(method, code).observe(seconds)


def _metadata(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    return {
        key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)
    }


class ObservingInterceptor(grpc.aio.ServerInterceptor):
    """See the module docstring."""

    def __init__(
        self, metrics: GatewayMetrics, tracing: Tracing | None, known_methods: frozenset[str]
    ) -> None:
        self._metrics = metrics
        self._grpc_metrics = GrpcMetrics(metrics.registry)
        self._tracing = tracing
        self._known = known_methods

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_stream is not None and method in self._known:
            written = _writing(cast(StreamBehavior, handler.unary_stream))

            async def observed_stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> None:
                await self._call(written, request, context, method, method)

            return grpc.unary_stream_rpc_method_handler(
                observed_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_unary is None:
            return handler
        # A label is never a client-chosen string: unknown methods have no handler at all.
        label = method if method in self._known else "other"
        # grpc.aio handlers are coroutine functions; the stubs type them as the sync API's.
        behavior = cast(Behavior, handler.unary_unary)

        async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await self._call(behavior, request, context, method, label)

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _call(
        self,
        behavior: Behavior,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method: str,
        label: str,
    ) -> Any:
        metadata = _metadata(context)
        request_id = accept_request_id(metadata.get(REQUEST_ID_METADATA))
        await context.send_initial_metadata(((REQUEST_ID_METADATA, request_id),))
        scope = RequestScope(
            request_id=request_id,
            metrics=self._metrics,
            tracing=self._tracing,
            trace_headers={k: metadata[k] for k in ("traceparent", "tracestate") if k in metadata},
        )
        scope_token = CURRENT_SCOPE.set(scope)
        observer_token = CURRENT_OBSERVER.set(scope)
        started = time.perf_counter()
        code = "UNKNOWN"
        finished = False

        def finish() -> None:
            # Before an abort: grpc.aio sends the status at once, and the caller (a test, a
            # scraper) may look at /metrics before this task resumes.
            nonlocal finished
            finished = True
            self._finish(method, label, code, time.perf_counter() - started)

        span_context = (
            self._tracing.operation(scope.trace_headers, request_id)
            if self._tracing is not None
            else nullcontext()
        )
        try:
            with span_context as span:
                if span is not None:
                    _name_span(span, method)
                status: status_pb2.Status | None = None
                try:
                    async with asyncio.timeout(context.time_remaining()) as bound:
                        response = await behavior(request, context)
                    code = "OK"
                except asyncio.CancelledError:
                    # The caller cancelled (or its deadline passed first on grpc's side).
                    code = "CANCELLED"
                    raise
                except TimeoutError:
                    if not bound.expired():
                        status = status_for(TimeoutError(), request_id, method)
                    else:
                        status = deadline_status()
                except Exception as exc:
                    if isinstance(exc, grpc.aio.AbortError):
                        code = _context_code(context)
                        raise
                    status = status_for(exc, request_id, method)
                if status is not None:
                    code = code_name(status)
                    if span is not None:
                        _fail_span(span, code)
                    finish()
                    await context.abort_with_status(rpc_status.to_status(status))
                return response
        finally:
            if not finished:
                finish()
            CURRENT_OBSERVER.reset(observer_token)
            CURRENT_SCOPE.reset(scope_token)

    def _finish(self, method: str, label: str, code: str, seconds: float) -> None:
        self._grpc_metrics.observe(label, code, seconds)
        level = logging.DEBUG if method.startswith(_QUIET_SERVICES) else logging.INFO
        access_logger.log(
            level,
            "grpc %s %s",
            method,
            code,
            extra={
                "rpc_method": method,
                "grpc_code": code,
                "duration_ms": round(seconds * 1000, 3),
            },
        )


def _writing(behavior: StreamBehavior) -> Behavior:
    """A server-streaming handler as one coroutine writing each response itself, so that the
    deadline, the status mapping and the metrics of a unary call cover the whole stream. The
    generator is closed however the call ends (a cancelled write included): its stream of the
    live hub is left at once, not when the generator is collected."""

    async def write_all(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        async with contextlib.aclosing(behavior(request, context)) as responses:
            async for response in responses:
                await context.write(response)

    return write_all


def _context_code(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def _name_span(span: Any, method: str) -> None:
    # OpenTelemetry's RPC conventions: name `package.Service/Method`, rpc.* attributes.
    service, _, name = method.lstrip("/").partition("/")
    span.update_name(method.lstrip("/"))
    span.set_attribute("rpc.system", "grpc")
    span.set_attribute("rpc.service", service)
    span.set_attribute("rpc.method", name)


def _fail_span(span: Any, code: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("rpc.grpc.status_code", code)
    span.set_status(Status(StatusCode.ERROR, code))
