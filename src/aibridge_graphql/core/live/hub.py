"""One poll loop per (caller, view), shared by every stream of it (docs/live.md).

`LiveHub.watch` gives a stream (`Subscription`) of a view's changes. Streams of the same caller
(an HMAC of the token: never the token itself) and the same upstream request share one `Poller`,
which polls with that caller's token only, each poll with fresh loaders (its own deadline and call
budget, the response cache refreshed, not read). An unchanged answer resolves nothing. Upstream
errors back off exponentially and reach the streams as error items while they stay open; an
answer that cannot change by waiting (401, 403, 404, 400, unsupported) ends them. The last stream
leaving stops the poller.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from aibridge_graphql.core.errors import GatewayError, RateLimited, Unauthenticated, describe
from aibridge_graphql.core.live.views import Change, Tracker, View
from aibridge_graphql.core.loaders import loaders_for_request
from aibridge_graphql.core.metrics import GatewayMetrics
from aibridge_graphql.core.pricing import Pricer
from aibridge_graphql.core.scope import CURRENT_SCOPE, RequestScope
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import TOKEN_HEADER, Credentials, UpstreamClient
from aibridge_graphql.upstream.errors import (
    UpstreamBadRequest,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamUnauthorized,
)
from aibridge_graphql.upstream.observe import CURRENT_OBSERVER

logger = logging.getLogger("aibridge_graphql.live")

# Answers that waiting cannot change: they end the streams instead of being retried.
_FINAL: Final = (
    UpstreamUnauthorized,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamBadRequest,
    GatewayError,
)


class _Done(Exception):
    """A stream's end without an error (its view completed, or the hub closed)."""


class Subscription:
    """One stream of a poller's changes: `async for item in subscription`, each item a list of
    changes or an error (the stream stays open). A final error is raised; completion ends it.

    Changes wait here coalesced by key (the latest of a session wins; an `ADDED` stays one), so
    a slow reader holds at most one change per record of the view, never a backlog.
    """

    def __init__(self, view: str, metrics: GatewayMetrics | None) -> None:
        self._view = view
        self._metrics = metrics
        self._pending: dict[Hashable, Change] = {}
        self._error: Exception | None = None
        self._end: BaseException | None = None
        self._wake = asyncio.Event()

    def push(self, changes: list[Change]) -> None:
        for change in changes:
            old = self._pending.get(change.key)
            if old is not None and old.kind in ("ADDED", "EXISTING") and change.kind == "UPDATED":
                change = Change(old.kind, change.key, change.value, change.session)
            self._pending[change.key] = change
        if changes:
            self._wake.set()

    def fail(self, error: Exception) -> None:
        self._error = error
        self._wake.set()

    def end(self, error: BaseException | None) -> None:
        self._end = error if error is not None else _Done()
        self._wake.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> list[Change] | Exception:
        while not (self._pending or self._error or self._end):
            self._wake.clear()
            await self._wake.wait()
        if self._pending:
            changes = list(self._pending.values())
            self._pending.clear()
            if self._metrics is not None:
                self._metrics.live_events.labels(self._view).inc(len(changes))
            return changes
        if self._error is not None:
            error, self._error = self._error, None
            return error
        if isinstance(self._end, _Done):
            raise StopAsyncIteration
        assert self._end is not None
        raise self._end


class Watching:
    """One stream's lifetime: admitted on entry, released on exit, and also as soon as the task
    that entered it ends. A streaming transport may drop its async generators without closing
    them (Strawberry's SSE drain, on a client hang-up): the stream, and the poller when last,
    must not wait for the garbage collector."""

    def __init__(
        self, hub: LiveHub, headers: Mapping[str, str], view: View, existing: bool
    ) -> None:
        self._hub, self._headers, self._view, self._existing = hub, headers, view, existing
        self._release: Callable[[], None] | None = None
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> Subscription:
        subscription, self._release = self._hub._open(self._headers, self._view, self._existing)
        self._task = asyncio.current_task()
        if self._task is not None:
            self._task.add_done_callback(self._task_done)
        return subscription

    def _task_done(self, _: object) -> None:
        if self._release is not None:
            self._release()

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.remove_done_callback(self._task_done)
        if self._release is not None:
            self._release()


class Watch(Protocol):
    """Opens a stream of a view for one caller (`LiveHub.watch` with the caller's headers)."""

    def __call__(self, view: View, *, existing: bool = False) -> Watching: ...


class Poller:
    """The poll loop of one (caller, view); runs while it has subscribers."""

    def __init__(self, hub: LiveHub, view: View, credentials: Credentials, on_stop: Any) -> None:
        self._hub = hub
        self._view = view
        # The caller's token for the poll's upstream calls; the cache is refreshed, not read.
        self._headers = {TOKEN_HEADER.lower(): credentials.token, "cache-control": "no-cache"}
        self._tracker: Tracker = view.tracker()
        self._polled = False
        self._subscribers: dict[Subscription, bool] = {}  # -> still waiting for `existing`
        self._on_stop = on_stop
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def join(self, subscription: Subscription, *, existing: bool) -> None:
        if existing and self._polled:
            subscription.push(self._tracker.existing())
            existing = False
        self._subscribers[subscription] = existing
        if self._task is None:
            # A context of its own: the poller outlives the request that started it, and its
            # upstream calls are observed (metrics, `X-Request-Id`) as its own.
            context = contextvars.Context()
            if self._hub.metrics is not None:
                request_id = f"live-{uuid.uuid4().hex}"
                scope = RequestScope(request_id=request_id, metrics=self._hub.metrics)
                context.run(CURRENT_SCOPE.set, scope)
                context.run(CURRENT_OBSERVER.set, scope)
            self._task = asyncio.get_running_loop().create_task(self._run(), context=context)

    def leave(self, subscription: Subscription) -> None:
        self._subscribers.pop(subscription, None)
        if not self._subscribers:
            self.stop()

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._on_stop(self)

    async def _run(self) -> None:
        failures = 0
        settings = self._hub.settings
        try:
            while True:
                delay = settings.live_poll_interval
                try:
                    answer = await self._poll()
                except asyncio.CancelledError:
                    raise
                except _FINAL as exc:
                    self._count("error", exc)
                    self._finish(exc)
                    return
                except Exception as exc:  # reported to the streams, then retried
                    self._count("error", exc)
                    failures += 1
                    delay = min(delay * 2**failures, settings.live_max_backoff)
                    for subscription in self._subscribers:
                        subscription.fail(exc)
                else:
                    failures = 0
                    if self._publish(answer):
                        return
                await asyncio.sleep(delay)
        finally:
            self._on_stop(self)

    async def _poll(self) -> Any:
        hub = self._hub
        loaders = loaders_for_request(
            hub.client, hub.settings, self._headers, pricer=hub.pricer, close_with_task=False
        )
        try:
            return await self._view.fetch(loaders)
        finally:
            loaders.close()

    def _publish(self, answer: Any) -> bool:
        """Hand the answer's changes to every stream; True once the view is complete."""
        changes = self._tracker.update(answer, datetime.now(UTC))
        self._count("changed" if changes else "unchanged")
        first = not self._polled
        self._polled = True
        existing = self._tracker.existing() if first else []
        for subscription, waiting in list(self._subscribers.items()):
            if waiting:
                subscription.push(existing)
                self._subscribers[subscription] = False
            subscription.push(changes)
        if self._tracker.complete:
            self._finish(None)
            return True
        return False

    def _finish(self, error: BaseException | None) -> None:
        for subscription in self._subscribers:
            subscription.end(error)
        self._subscribers.clear()

    def _count(self, outcome: str, error: BaseException | None = None) -> None:
        metrics = self._hub.metrics
        if metrics is None:
            return
        metrics.live_polls.labels(self._view.name, outcome).inc()
        if error is not None:
            described = describe(error)
            code = described[1]["code"] if described else "INTERNAL_SERVER_ERROR"
            metrics.live_poll_errors.labels(self._view.name, code).inc()
            if described is None:
                logger.error("live %s poll failed unexpectedly", self._view.name, exc_info=error)


class LiveHub:
    """The process's pollers and stream limits (one per app)."""

    def __init__(
        self,
        client: UpstreamClient,
        settings: Settings,
        *,
        pricer: Pricer | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.pricer = pricer
        self.metrics = metrics
        secret = settings.cache_secret.get_secret_value().encode() if settings.cache_secret else b""
        # Identities only key pollers inside this process: a random secret serves.
        self._secret = secret or os.urandom(32)
        self._pollers: dict[tuple[str, Hashable], Poller] = {}
        self._streams: Counter[str] = Counter()
        self._closed = False

    @property
    def streams(self) -> int:
        """Open streams, all callers."""
        return sum(self._streams.values())

    @property
    def pollers(self) -> int:
        """Running pollers."""
        return len(self._pollers)

    def identity(self, credentials: Credentials) -> str:
        """The caller's key: an HMAC of the token, never the token."""
        return hmac.new(self._secret, b"live\0" + credentials.token.encode(), "sha256").hexdigest()

    def watch(self, headers: Mapping[str, str], view: View, *, existing: bool = False) -> Watching:
        """A stream of `view`'s changes for the caller of `headers` (`existing`: the current
        state first), as an async context manager; entering it raises `Unauthenticated` without
        a token, `RateLimited` over a stream limit."""
        return Watching(self, headers, view, existing)

    def _open(
        self, headers: Mapping[str, str], view: View, existing: bool
    ) -> tuple[Subscription, Callable[[], None]]:
        """Admit a stream; its subscription and the (idempotent) release of it."""
        credentials = Credentials.from_headers(headers)
        if credentials is None:
            raise Unauthenticated("A live view needs the caller's Coder session token.")
        identity = self.identity(credentials)
        self._admit(identity)
        key = (identity, view.key)
        poller = self._pollers.get(key)
        if poller is None:
            poller = self._pollers[key] = Poller(
                self, view, credentials, lambda stopped: self._forget(key, stopped)
            )
        subscription = Subscription(view.name, self.metrics)
        self._streams[identity] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._streams[identity] -= 1
            if not self._streams[identity]:
                del self._streams[identity]
            poller.leave(subscription)
            self._gauge()

        poller.join(subscription, existing=existing)
        self._gauge()
        return subscription, release

    def _admit(self, identity: str) -> None:
        settings = self.settings
        if self._closed:
            raise RateLimited("The gateway is shutting down: open the stream again elsewhere.")
        if self.streams >= settings.live_max_streams:
            raise RateLimited(
                f"The gateway serves at most {settings.live_max_streams} live streams; try later."
            )
        if self._streams[identity] >= settings.live_max_streams_per_caller:
            raise RateLimited(
                f"At most {settings.live_max_streams_per_caller} live streams per caller: "
                "close one first."
            )

    def _forget(self, key: tuple[str, Hashable], poller: Poller) -> None:
        if self._pollers.get(key) is poller:
            del self._pollers[key]
            self._gauge()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.live_streams.set(self.streams)
            self.metrics.live_pollers.set(self.pollers)

    def close(self) -> None:
        """End every stream (completed, so clients reconnect elsewhere) and stop the pollers."""
        self._closed = True
        for poller in list(self._pollers.values()):
            poller._finish(None)
            poller.stop()
