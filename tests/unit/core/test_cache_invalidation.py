"""Invalidation by generation (core/cache.py): a write replaces the caller's generation of a
family, so that caller's cached spend reads are fetched again; other callers and other
endpoints keep their entries."""

from __future__ import annotations

from aibridge_graphql.core.cache import SPEND, Bypass, CacheView, build_cache
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.requests import (
    UpstreamRequest,
    groups_ai_spend_request,
    user_ai_spend_request,
)

SETTINGS = Settings(
    upstream_url="http://coder.example",
    cache_enabled=True,
    cache_secret="s3cret-for-tests",
    cache_ttl_spend=60.0,
    cache_ttl_models=60.0,
)
GROUP = "00000000-0000-4000-8000-000000000001"


class Fetches:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, request: UpstreamRequest) -> bytes:
        self.paths.append(request.path)
        return f"{request.path}#{len(self.paths)}".encode()


async def _read(view: CacheView | None, request: UpstreamRequest, fetch: Fetches) -> bytes:
    assert view is not None
    return await view.fetch(request, fetch, lambda content: content)


async def test_a_write_makes_the_callers_spend_reads_fresh_and_nothing_else() -> None:
    shared = build_cache(SETTINGS)
    assert shared is not None
    async with UpstreamClient(SETTINGS) as client:
        mine = shared.view(client, Credentials("writer-token"), Bypass.NONE)
        theirs = shared.view(client, Credentials("reader-token"), Bypass.NONE)
        assert mine is not None
        assert theirs is not None
        fetch = Fetches()
        requests = [
            user_ai_spend_request("me"),
            groups_ai_spend_request("coder", [GROUP]),
            UpstreamRequest.make("/models"),
        ]
        first = [await _read(mine, request, fetch) for request in requests]
        other = await _read(theirs, requests[0], fetch)
        assert [await _read(mine, request, fetch) for request in requests] == first
        assert len(fetch.paths) == 4  # cached: nothing fetched again
        await mine.invalidate(SPEND)
        again = [await _read(mine, request, fetch) for request in requests]
        assert again[:2] != first[:2]  # both spend reads fetched again
        assert again[2] == first[2]  # `/models` is no spend read: still cached
        assert await _read(theirs, requests[0], fetch) == other  # another caller's is kept
        assert len(fetch.paths) == 6
        # The new generation holds: the fresh answers are cached under it.
        assert [await _read(mine, request, fetch) for request in requests] == again


async def test_spend_reads_are_not_cached_unless_their_ttl_is_set() -> None:
    shared = build_cache(SETTINGS.model_copy(update={"cache_ttl_spend": 0.0}))
    assert shared is not None
    async with UpstreamClient(SETTINGS) as client:
        view = shared.view(client, Credentials("t"), Bypass.NONE)
        fetch = Fetches()
        await _read(view, user_ai_spend_request("me"), fetch)
        await _read(view, user_ai_spend_request("me"), fetch)
    assert len(fetch.paths) == 2
