"""What one request may spend upstream, and the tasks spending it.

The caller's credentials live here and die with the request, and so does its `Deadline`: every
upstream call (and the wait for a concurrency slot) runs under it. Each call spends from the
request's `CallBudget` (core/call_budget.py); an answer the shared response cache holds
(core/cache.py, opt-in) is no call and spends nothing. `cancel()` cancels the upstream calls
still running, for a request that ended or was cancelled (its client went away).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from aibridge_graphql.core.cache import CacheView
from aibridge_graphql.core.call_budget import CallBudget
from aibridge_graphql.core.errors import UpstreamUnsupported
from aibridge_graphql.upstream.capabilities import Capabilities
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.deadline import Deadline, within
from aibridge_graphql.upstream.errors import DeadlineExceeded, UpstreamOutcomeUnknown
from aibridge_graphql.upstream.observe import endpoint_template, report_deadline
from aibridge_graphql.upstream.requests import UpstreamRequest

V = TypeVar("V")


class RequestCancelled(Exception):
    """The value of a key whose upstream call `Loaders.close()` cancelled (nobody reads it)."""


class RequestResources:
    """One request's credentials, deadline, call budget, concurrency slots and cache view."""

    __slots__ = ("_cache", "_call_budget", "_credentials", "_slots", "_tasks", "client", "deadline")

    def __init__(
        self,
        client: UpstreamClient,
        credentials: Credentials | None,
        *,
        concurrency: int,
        deadline: Deadline | None = None,
        call_budget: CallBudget | None = None,
        cache: CacheView | None = None,
    ) -> None:
        self.client = client
        # This caller's view of the shared response cache (None: off, or an anonymous caller).
        self._cache = cache
        self._credentials = credentials
        self.deadline = deadline
        # Every call the loaders send spends from it; de-duplicated loads never reach it.
        self._call_budget = call_budget or CallBudget(None)
        self._slots = asyncio.Semaphore(concurrency)
        # Every task running upstream work for this request, so that `cancel()` can cancel them.
        self._tasks: set[asyncio.Task[Any]] = set()

    async def capabilities(self) -> Capabilities:
        """What the upstream serves (detected once per process, re-checked when stale)."""
        found = await self.client.capabilities.ensure()
        if found.status == "no-api":
            raise UpstreamUnsupported(
                found.reason or "The upstream serves no AI Bridge API.", missing="the AI Bridge API"
            )
        return found

    async def require_spend_routes(
        self, method: str, request: UpstreamRequest, what: str = "AI budgets or AI spend"
    ) -> None:
        """`UpstreamUnsupported`, before any call, on a sessions-era Coder: it predates Coder's
        AI spend and budgets and its AI Gateway keys (enterprise, with the AI Gateway API), so
        there is nothing to ask. `what` names the missing feature in the message."""
        if (await self.capabilities()).interceptions is True:
            endpoint = endpoint_template(request.path)
            raise UpstreamUnsupported(
                f"This Coder release has no {what} (added with the AI Gateway API, "
                f"enterprise): `{method} {endpoint}` is missing.",
                missing=f"{method} {endpoint}",
            )

    async def load(self, request: UpstreamRequest, parse: Callable[[bytes], V]) -> V:
        """`parse` of the raw body of `request`: from the response cache when it holds it (then
        no call, no budget, no slot), else from the upstream (stored once it parsed)."""
        await self.capabilities()
        if self._cache is None:
            return parse(await self._upstream_bytes(request))
        return await self._cache.fetch(request, self._upstream_bytes, parse)

    async def settle(self, awaitables: Iterable[Coroutine[Any, Any, V]]) -> list[V | Exception]:
        """Await all; an `Exception` becomes that key's value, cancellation still propagates.

        A call that `cancel()` cancelled resolves its key with `RequestCancelled`, so that
        nothing waits for it forever.
        """
        tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
        self._tasks.update(tasks)
        for task in tasks:
            task.add_done_callback(self._tasks.discard)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        out: list[V | Exception] = []
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                out.append(RequestCancelled("the request was cancelled"))
            elif isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            else:
                out.append(result)
        return out

    def cancel(self) -> None:
        """Cancel the upstream work still running (the request is over or was cancelled)."""
        for task in list(self._tasks):
            task.cancel()

    async def _slot(self, request: UpstreamRequest) -> None:
        """Take a concurrency slot, waiting no longer than the deadline."""
        if not self._slots.locked():
            # A free slot is taken without waiting: no deadline timer to arm and cancel.
            await self._slots.acquire()
            return
        try:
            async with within(self.deadline):
                await self._slots.acquire()
        except DeadlineExceeded as exc:
            first = self.deadline.first_report() if self.deadline is not None else False
            report_deadline(request, exc.seconds, first)
            raise

    async def write(
        self, method: str, request: UpstreamRequest, body: Any, *, invalidates: str | None
    ) -> bytes:
        """A write with the caller's token under the request's deadline, budget and slots, never
        through the cache; once it succeeded (or may have), the caller's cached entries of the
        `invalidates` family (None: no cached read shows what it changes) are not served again."""
        self._call_budget.spend()
        await self._slot(request)
        try:
            content = await self.client.send_json(
                method, request, body, self._credentials, deadline=self.deadline
            )
        except UpstreamOutcomeUnknown:
            await self._invalidate(invalidates)
            raise
        finally:
            self._slots.release()
        await self._invalidate(invalidates)
        return content

    async def _invalidate(self, family: str | None) -> None:
        if self._cache is not None and family is not None:
            await self._cache.invalidate(family)

    async def _upstream_bytes(self, request: UpstreamRequest) -> bytes:
        self._call_budget.spend()
        await self._slot(request)
        try:
            return await self.client.get_bytes(request, self._credentials, deadline=self.deadline)
        finally:
            self._slots.release()
