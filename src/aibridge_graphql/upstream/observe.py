"""Observing upstream calls (metrics, tracing, request id) without the client knowing by whom.

The gateway sets a `CallObserver` in `CURRENT_OBSERVER` for the duration of one HTTP request;
every attempt the client makes runs inside `observed_attempt`, which lets that observer add
headers (`X-Request-Id`, `traceparent`) and see how the attempt ended. A context variable, not
client state, so one pooled client serves many apps and requests, each observed by its own.
Calls made with no observer set (e.g. readiness probes) are simply not observed.

Failed calls (after their retries) and deadline hits go through `report_failure` /
`report_deadline`: a WARNING for operators, rate-limited per endpoint and reason, naming only the
endpoint template (never a token, id or query string), and the observer's counters.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from aibridge_graphql.upstream.requests import UpstreamRequest

logger = logging.getLogger("aibridge_graphql.upstream")

# The API's endpoints (docs/upstream.md); anything else is labelled "other" so that a label never
# carries a raw id.
_STATIC_PATHS = frozenset({"/interceptions", "/sessions", "/models", "/clients"})
_SESSION_PATH = re.compile(r"/sessions/[^/]+")
# Coder's spend routes (outside the AI Gateway prefix; upstream/requests.py builds them).
_USER_SPEND_PATH = re.compile(r"/api/v2/users/[^/]+/ai/spend")
_GROUPS_SPEND_PATH = re.compile(r"/api/v2/organizations/[^/]+/groups/ai/spend")
_GROUP_BUDGET_PATH = re.compile(r"/api/v2/groups/[^/]+/ai/budget")
_USER_OVERRIDE_PATH = re.compile(r"/api/v2/users/[^/]+/ai/budget/override")
_GATEWAY_KEYS = "/api/v2/ai-gateway/keys"
_GATEWAY_KEY_PATH = re.compile(r"/api/v2/ai-gateway/keys/[^/]+")


@dataclass(slots=True)
class Attempt:
    """One HTTP attempt: the headers it sends (an observer may add some), its method and status."""

    headers: dict[str, str]
    status: int | None = None
    method: str = "GET"


class CallObserver(Protocol):
    """Watches upstream attempts: may add headers before sending, reads the status after."""

    def observe(
        self, request: UpstreamRequest, attempt: Attempt
    ) -> AbstractContextManager[None]: ...

    def failed(self, endpoint: str, reason: str) -> None:
        """One upstream call failed for good (`reason`: a bounded label such as `timeout`)."""

    def deadline_exceeded(self) -> None:
        """The request's deadline cut its work short (called once per request)."""


CURRENT_OBSERVER: ContextVar[CallObserver | None] = ContextVar(
    "aibridge_upstream_observer", default=None
)


@contextmanager
def observed_attempt(
    request: UpstreamRequest, headers: Mapping[str, str], method: str = "GET"
) -> Iterator[Attempt]:
    """Run one attempt under the current observer, if any; set `attempt.status` inside."""
    attempt = Attempt(dict(headers), method=method)
    observer = CURRENT_OBSERVER.get()
    if observer is None:
        yield attempt
        return
    with observer.observe(request, attempt):
        yield attempt


def endpoint_template(path: str) -> str:
    """The endpoint's path template, e.g. `/sessions/{session_id}`: bounded, never a raw id."""
    if path in _STATIC_PATHS:
        return path
    if _SESSION_PATH.fullmatch(path):
        return "/sessions/{session_id}"
    if _USER_SPEND_PATH.fullmatch(path):
        return "/api/v2/users/{user}/ai/spend"
    if _GROUPS_SPEND_PATH.fullmatch(path):
        return "/api/v2/organizations/{organization}/groups/ai/spend"
    if _GROUP_BUDGET_PATH.fullmatch(path):
        return "/api/v2/groups/{group}/ai/budget"
    if _USER_OVERRIDE_PATH.fullmatch(path):
        return "/api/v2/users/{user}/ai/budget/override"
    if path == _GATEWAY_KEYS:
        return path
    if _GATEWAY_KEY_PATH.fullmatch(path):
        return "/api/v2/ai-gateway/keys/{key}"
    return "other"


class RateLimitedLog:
    """At most one line per key per `interval` seconds; the next one says how many were dropped."""

    def __init__(
        self,
        log: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        # key -> (time of the last line written, lines suppressed since)
        self._state: dict[tuple[str, ...], tuple[float, int]] = {}

    def warning(self, key: tuple[str, ...], message: str, *args: object) -> bool:
        """Log `message % args` at WARNING unless `key` did within the interval; True if it did."""
        now = self._clock()
        with self._lock:
            last, suppressed = self._state.get(key, (None, 0))
            if last is not None and now - last < self._interval:
                self._state[key] = (last, suppressed + 1)
                return False
            if len(self._state) >= self._max_keys and key not in self._state:
                self._state.clear()  # keys are bounded labels; this only guards a bug
            self._state[key] = (now, 0)
        if suppressed:
            message += " (%d similar suppressed in the last %gs)"
            args = (*args, suppressed, self._interval)
        self._log.warning(message, *args)
        return True


UPSTREAM_WARNINGS = RateLimitedLog(logger)


def report_failure(request: UpstreamRequest, reason: str, detail: str) -> None:
    """An upstream call failed for good: warn (rate-limited) and count it.

    `detail` must be our own wording (an exception class name, an HTTP status), never upstream
    text, a URL or a header.
    """
    endpoint = endpoint_template(request.path)
    UPSTREAM_WARNINGS.warning(
        ("failure", endpoint, reason), "upstream GET %s failed: %s (%s)", endpoint, reason, detail
    )
    observer = CURRENT_OBSERVER.get()
    if observer is not None:
        observer.failed(endpoint, reason)


def report_deadline(request: UpstreamRequest, seconds: float, first_of_request: bool) -> None:
    """A call cut short by the request deadline: a failure with reason `deadline`, and the
    request counted once as over its deadline."""
    report_failure(request, "deadline", f"request deadline of {seconds:g}s passed")
    observer = CURRENT_OBSERVER.get()
    if first_of_request and observer is not None:
        observer.deadline_exceeded()
