"""Prometheus metrics of one gateway app, in its own `CollectorRegistry`, served on `/metrics`.

Series (all prefixed `aibridge_`):
- `graphql_operation_duration_seconds{operation, outcome}`: one observation per GraphQL operation;
  `outcome` is `ok` or the first error's `extensions.code` (its `_count` counts operations);
- `graphql_errors_total{operation, code}`: every error of every operation;
- `graphql_apq_requests_total{result}`: persisted-query lookups (hit, miss, registered...);
- `http_requests_in_flight`: HTTP requests being served (the scrape itself excluded);
- `http_client_closed_requests_total{method}`: requests whose client hung up before the answer
  (logged as status 499, "client closed request", at INFO: the client's doing, never a 5xx);
- `upstream_request_duration_seconds{endpoint, status}`: each upstream attempt, by path template
  (`/sessions/{session_id}`) and HTTP status (`error` when no response came);
- `upstream_failures_total{endpoint, reason}`: upstream calls that failed for good (after retries):
  `unreachable`, `timeout`, `http_5xx`, `too_large`, `bad_body`, `failed`, `deadline`;
- `request_deadline_exceeded_total`: requests whose deadline cut some upstream work short;
- `loader_batch_size{loader}`: keys per data-loader batch;
- `response_cache_requests_total{endpoint, result}`: response-cache lookups (core/cache.py):
  `hit`, `miss`, or `bypass` (the request's `Cache-Control` opted out);
- `response_cache_errors_total{backend}`: cache backend failures served as misses (Redis down);
- `live_streams`, `live_pollers`: open live streams (subscriptions, gRPC watches) and their
  shared pollers; `live_polls_total{view, outcome}` (`changed`, `unchanged`, `error`),
  `live_poll_errors_total{view, code}` and `live_events_total{view}` (changes delivered).
Operation names come from clients, so distinct names are capped and a name that is not a GraphQL
name of at most 128 characters is never a label; those count as `other`.

Under `serve --workers N` prometheus_client runs in its multiprocess mode (the master sets
`PROMETHEUS_MULTIPROC_DIR` for every worker, server/workers.py): each worker writes its values to
files there, and `exposed` reads all of them, so one scrape of any worker shows the whole group:
counters and histograms summed, the in-flight gauge summed over live workers, the maxima the
largest of any worker.
"""

from __future__ import annotations

import os
import re
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

MAX_OPERATION_NAMES: Final = 200
OTHER: Final = "other"
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,127}")
_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# prometheus_client's own switch: set before it is imported, it stores values in files there.
MULTIPROCESS_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """Where this process's metric values are shared with its siblings' (None: only here)."""
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


def exposition_registry(own: CollectorRegistry, shared_dir: str | None) -> CollectorRegistry:
    """What `/metrics` serves: `own`, or the values every process wrote to `shared_dir`."""
    if shared_dir is None:
        return own
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=shared_dir)  # type: ignore[no-untyped-call]
    return merged


class GatewayMetrics:
    """The app's collectors; two apps never share one (each has its own registry)."""

    def __init__(
        self, max_operation_names: int = MAX_OPERATION_NAMES, shared_dir: str | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        # What a scrape reads: this registry, or every worker's values (`multiprocess_dir()`).
        self.exposed = exposition_registry(self.registry, shared_dir)
        self._names: set[str] = set()
        self._max_names = max_operation_names
        self.operations = Histogram(
            "aibridge_graphql_operation_duration_seconds",
            "GraphQL operations by name and outcome (ok or the first error code), with latency.",
            ["operation", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "aibridge_graphql_errors",
            "Errors in GraphQL results by operation and extensions.code.",
            ["operation", "code"],
            registry=self.registry,
        )
        self.apq = Counter(
            "aibridge_graphql_apq_requests",
            "Automatic persisted query lookups by result.",
            ["result"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "aibridge_http_requests_in_flight",
            "HTTP requests being served (not counting /metrics).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.client_closed = Counter(
            "aibridge_http_client_closed_requests",
            "HTTP requests whose client closed the connection before the answer (status 499).",
            ["method"],
            registry=self.registry,
        )
        self.upstream = Histogram(
            "aibridge_upstream_request_duration_seconds",
            "Upstream HTTP attempts by endpoint template and status ('error': no response).",
            ["endpoint", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_failures = Counter(
            "aibridge_upstream_failures",
            "Upstream calls that failed after their retries, by endpoint template and reason.",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.deadline_exceeded = Counter(
            "aibridge_request_deadline_exceeded",
            "Requests whose deadline passed before all their upstream calls finished.",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "aibridge_loader_batch_size",
            "Keys per data-loader batch.",
            ["loader"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )

        self.cache_requests = Counter(
            "aibridge_response_cache_requests",
            "Response-cache lookups by endpoint template and result (hit, miss, bypass).",
            ["endpoint", "result"],
            registry=self.registry,
        )
        self.cache_errors = Counter(
            "aibridge_response_cache_errors",
            "Response-cache backend failures, each served as a miss (no cache), by backend.",
            ["backend"],
            registry=self.registry,
        )
        self.live_streams = Gauge(
            "aibridge_live_streams",
            "Open live streams (GraphQL subscriptions and gRPC watches).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.live_pollers = Gauge(
            "aibridge_live_pollers",
            "Running live pollers: one per caller and upstream request, shared by its streams.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.live_polls = Counter(
            "aibridge_live_polls",
            "Polls of live views by view and outcome (changed, unchanged, error).",
            ["view", "outcome"],
            registry=self.registry,
        )
        self.live_poll_errors = Counter(
            "aibridge_live_poll_errors",
            "Failed polls of live views by view and error code.",
            ["view", "code"],
            registry=self.registry,
        )
        self.live_events = Counter(
            "aibridge_live_events",
            "Changes delivered to live streams, by view.",
            ["view"],
            registry=self.registry,
        )

    def operation_label(self, name: str | None) -> str:
        """The label for an operation name: bounded in number, `anonymous` when unnamed."""
        label = name or "anonymous"
        if label in self._names:
            return label
        if len(self._names) >= self._max_names or not _NAME.fullmatch(label):
            return OTHER
        self._names.add(label)
        return label

    def observe_operation(self, name: str | None, codes: list[str], seconds: float) -> None:
        """Record one finished operation and its errors' codes (empty when it succeeded)."""
        operation = self.operation_label(name)
        outcome = codes[0] if codes else "ok"
        self.operations.labels(operation, outcome).observe(seconds)
        for code in codes:
            self.errors.labels(operation, code).inc()

    def observe_upstream(self, endpoint: str, status: int | None, seconds: float) -> None:
        """Record one upstream attempt."""
        label = "error" if status is None else str(status)
        self.upstream.labels(endpoint, label).observe(seconds)

    def observe_upstream_failure(self, endpoint: str, reason: str) -> None:
        """Record one upstream call that failed for good."""
        self.upstream_failures.labels(endpoint, reason).inc()

    def observe_batch(self, loader: str, size: int) -> None:
        """Record one data-loader batch of `size` keys."""
        self.batch_size.labels(loader).observe(size)
