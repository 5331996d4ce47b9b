"""Observing upstream calls (metrics, tracing, request id) without the client knowing by whom.

The gateway sets a `CallObserver` in `CURRENT_OBSERVER` for the duration of one HTTP request;
every attempt the client makes runs inside `observed_attempt`, which lets that observer add
headers (`X-Request-Id`, `traceparent`) and see how the attempt ended. A context variable, not
client state, so one pooled client serves many apps and requests, each observed by its own.
Calls made with no observer set (e.g. readiness probes) are simply not observed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from aibridge_graphql.upstream.requests import UpstreamRequest

# The API's endpoints (CONTRACT.md §2); anything else is labelled "other" so that a label never
# carries a raw id.
_STATIC_PATHS = frozenset({"/interceptions", "/sessions", "/models", "/clients"})
_SESSION_PATH = re.compile(r"/sessions/[^/]+")


@dataclass(slots=True)
class Attempt:
    """One HTTP attempt: the headers it sends (an observer may add some) and its status."""

    headers: dict[str, str]
    status: int | None = None


class CallObserver(Protocol):
    """Watches upstream attempts: may add headers before sending, reads the status after."""

    def observe(
        self, request: UpstreamRequest, attempt: Attempt
    ) -> AbstractContextManager[None]: ...


CURRENT_OBSERVER: ContextVar[CallObserver | None] = ContextVar(
    "aibridge_upstream_observer", default=None
)


@contextmanager
def observed_attempt(request: UpstreamRequest, headers: Mapping[str, str]) -> Iterator[Attempt]:
    """Run one attempt under the current observer, if any; set `attempt.status` inside."""
    attempt = Attempt(dict(headers))
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
    return "other"
