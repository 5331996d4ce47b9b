"""The observability scope of one HTTP request, reachable from anywhere below the middleware.

`RequestScope` holds the request id, the app's metrics and (optional) tracing, and what the
request did (operation names, for the access log). The middleware sets it in `CURRENT_SCOPE` and
as the upstream `CallObserver`; loaders, schema extensions and the JSON log formatter read it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aibridge_graphql.gateway.metrics import GatewayMetrics
from aibridge_graphql.upstream.observe import Attempt, endpoint_template
from aibridge_graphql.upstream.requests import UpstreamRequest

if TYPE_CHECKING:
    from aibridge_graphql.gateway.tracing import Tracing

REQUEST_ID_HEADER = "X-Request-Id"


@dataclass(slots=True)
class RequestScope:
    """One HTTP request's observability state; also the upstream `CallObserver` for it."""

    request_id: str
    metrics: GatewayMetrics
    tracing: Tracing | None = None
    # Only the W3C trace headers of the caller, to continue its trace; nothing else is kept.
    trace_headers: Mapping[str, str] = field(default_factory=dict)
    operations: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    apq: str | None = None  # the persisted-query lookup's result, when there was one

    @contextmanager
    def observe(self, request: UpstreamRequest, attempt: Attempt) -> Iterator[None]:
        """Tag the attempt with the request id (and trace context); time it by endpoint."""
        attempt.headers[REQUEST_ID_HEADER] = self.request_id
        endpoint = endpoint_template(request.path)
        started = time.perf_counter()
        span = self.tracing.upstream_call(endpoint, attempt) if self.tracing else nullcontext()
        try:
            with span:
                yield
        finally:
            self.metrics.observe_upstream(endpoint, attempt.status, time.perf_counter() - started)

    def failed(self, endpoint: str, reason: str) -> None:
        """Count an upstream call that failed for good."""
        self.metrics.observe_upstream_failure(endpoint, reason)

    def deadline_exceeded(self) -> None:
        """Count this request as cut short by its deadline."""
        self.metrics.deadline_exceeded.inc()


CURRENT_SCOPE: ContextVar[RequestScope | None] = ContextVar("aibridge_request_scope", default=None)


def current_request_id() -> str | None:
    """The id of the HTTP request being served in this context, if any."""
    scope = CURRENT_SCOPE.get()
    return scope.request_id if scope else None


def observe_batch(loader: str, size: int) -> None:
    """Record a data-loader batch in the current request's metrics (no-op outside a request)."""
    scope = CURRENT_SCOPE.get()
    if scope is not None:
        scope.metrics.observe_batch(loader, size)
