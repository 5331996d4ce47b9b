"""The hub: one poller per (caller, view), shared, bounded, and gone with its last stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from aibridge_graphql.core.errors import RateLimited, Unauthenticated
from aibridge_graphql.core.live import Change, LiveHub, Subscription
from aibridge_graphql.core.loaders import Loaders
from aibridge_graphql.core.metrics import GatewayMetrics
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.errors import UpstreamServerError, UpstreamUnauthorized

WAIT_S = 5.0


def token(name: str) -> dict[str, str]:
    return {"Coder-Session-Token": f"{name}-token"}


@dataclass
class Script:
    """Answers (or exceptions) handed out one per poll; the last one repeats."""

    answers: list[Any]
    polls: int = 0
    polled: asyncio.Event = field(default_factory=asyncio.Event)

    def next(self) -> Any:
        answer = self.answers[min(self.polls, len(self.answers) - 1)]
        self.polls += 1
        self.polled.set()
        if isinstance(answer, Exception):
            raise answer
        return answer


class ListTracker:
    """Items of a list answer: each new one is a change."""

    def __init__(self) -> None:
        self.complete = False
        self.seen: list[Any] | None = None

    def update(self, answer: list[Any], now: datetime) -> list[Change]:
        previous, self.seen = self.seen, answer
        if previous is None:
            return []
        if answer == ["done"]:
            self.complete = True
        return [Change("ADDED", item, item) for item in answer if item not in previous]

    def existing(self) -> list[Change]:
        return [Change("EXISTING", item, item) for item in self.seen or []]


@dataclass(frozen=True)
class ScriptedView:
    script: Script
    name: str = "scripted"
    tag: str = "one"

    @property
    def key(self) -> Hashable:
        return ("scripted", self.tag)

    async def fetch(self, loaders: Loaders) -> Any:
        return self.script.next()

    def tracker(self) -> ListTracker:
        return ListTracker()


@asynccontextmanager
async def hub(**overrides: Any) -> AsyncIterator[LiveHub]:
    settings = Settings(upstream_url="http://upstream.invalid").model_copy(
        update={"live_poll_interval": 0.01, "live_max_backoff": 0.05, **overrides}
    )
    client = UpstreamClient(settings)
    live = LiveHub(client, settings, metrics=GatewayMetrics())
    try:
        yield live
    finally:
        live.close()
        await client.aclose()


async def next_item(stream: Subscription) -> Any:
    return await asyncio.wait_for(anext(stream), WAIT_S)


async def test_streams_of_one_caller_and_view_share_one_poller() -> None:
    script = Script([["a"], ["a", "b"]])
    async with hub() as live:
        view = ScriptedView(script)
        async with live.watch(token("ana"), view) as one, live.watch(token("ana"), view) as two:
            assert (live.streams, live.pollers) == (2, 1)
            [first] = await next_item(one)
            [second] = await next_item(two)
        assert (first.kind, first.key, second.key) == ("ADDED", "b", "b")
        assert (live.streams, live.pollers) == (0, 0)


async def test_two_callers_never_share_a_poller() -> None:
    script = Script([["a"]])
    async with hub() as live:
        view = ScriptedView(script)
        async with live.watch(token("ana"), view), live.watch(token("bob"), view):
            assert live.pollers == 2
    # The key is an HMAC of the token, not the token.
    ana, bob = live.identity(Credentials("ana-token")), live.identity(Credentials("bob-token"))
    assert ana != bob
    assert "ana-token" not in ana


async def test_the_last_stream_leaving_stops_the_poller_at_once() -> None:
    script = Script([["a"]])
    async with hub() as live:
        async with live.watch(token("ana"), ScriptedView(script)):
            await asyncio.wait_for(script.polled.wait(), WAIT_S)
        polls = script.polls
        assert live.pollers == 0
        # It polls no more: a later poll would have had to start within this wait.
        await asyncio.sleep(0.1)
        assert script.polls == polls


async def test_existing_is_sent_first_when_asked() -> None:
    script = Script([["a", "b"], ["a", "b", "c"]])
    async with (
        hub() as live,
        live.watch(token("ana"), ScriptedView(script), existing=True) as stream,
    ):
        existing = await next_item(stream)
        assert [(c.kind, c.key) for c in existing] == [("EXISTING", "a"), ("EXISTING", "b")]
        [added] = await next_item(stream)
        assert (added.kind, added.key) == ("ADDED", "c")


async def test_an_upstream_error_is_an_item_and_the_stream_recovers() -> None:
    failure = UpstreamServerError(502, "bad gateway")
    script = Script([["a"], failure, failure, ["a", "b"]])
    async with hub() as live, live.watch(token("ana"), ScriptedView(script)) as stream:
        error = await next_item(stream)
        assert error is failure
        changes = await next_item(stream)
        while isinstance(changes, Exception):  # the second failure, if read before recovery
            changes = await next_item(stream)
        assert [c.key for c in changes] == ["b"]
        assert live.metrics is not None
        errors = live.metrics.live_poll_errors.labels("scripted", "UPSTREAM_UNAVAILABLE")
        assert errors._value.get() == 2


async def test_a_401_ends_every_stream_with_its_error() -> None:
    script = Script([["a"], UpstreamUnauthorized(401, "You are signed out.")])
    async with hub() as live, live.watch(token("ana"), ScriptedView(script)) as stream:
        with pytest.raises(UpstreamUnauthorized):
            await next_item(stream)
        assert live.pollers == 0


async def test_a_complete_view_delivers_its_last_changes_then_ends() -> None:
    script = Script([["a"], ["done"]])
    async with hub() as live, live.watch(token("ana"), ScriptedView(script)) as stream:
        [last] = await next_item(stream)
        assert last.key == "done"
        with pytest.raises(StopAsyncIteration):
            await next_item(stream)


async def test_no_token_is_unauthenticated_before_any_poll() -> None:
    script = Script([["a"]])
    async with hub() as live:
        with pytest.raises(Unauthenticated):
            async with live.watch({}, ScriptedView(script)):
                pass
    assert script.polls == 0


async def test_stream_limits_per_caller_and_process() -> None:
    script = Script([["a"]])
    async with hub(live_max_streams=3, live_max_streams_per_caller=2) as live:
        view = ScriptedView(script)
        async with live.watch(token("ana"), view), live.watch(token("ana"), view):
            with pytest.raises(RateLimited, match="per caller"):
                async with live.watch(token("ana"), view):
                    pass
            async with live.watch(token("bob"), view):
                with pytest.raises(RateLimited, match="at most 3"):
                    async with live.watch(token("cy"), view):
                        pass
        # Freed with their streams.
        async with live.watch(token("ana"), view), live.watch(token("ana"), view):
            assert live.streams == 2


async def test_a_slow_reader_holds_one_change_per_key() -> None:
    stream = Subscription("scripted", None)
    stream.push([Change("ADDED", "a", 1)])
    stream.push([Change("UPDATED", "a", 2), Change("UPDATED", "b", 1)])
    stream.push([Change("UPDATED", "b", 2)])
    changes = await next_item(stream)
    assert [(c.kind, c.key, c.value) for c in changes] == [("ADDED", "a", 2), ("UPDATED", "b", 2)]


async def test_closing_the_hub_completes_its_streams_and_refuses_new_ones() -> None:
    script = Script([["a"]])
    async with hub() as live:
        async with live.watch(token("ana"), ScriptedView(script)) as stream:
            live.close()
            with pytest.raises(StopAsyncIteration):
                await next_item(stream)
        with pytest.raises(RateLimited, match="shutting down"):
            async with live.watch(token("ana"), ScriptedView(script)):
                pass
