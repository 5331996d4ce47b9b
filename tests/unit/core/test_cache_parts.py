"""The response cache's parts (core/cache.py): LRU bounds and expiry on an injected clock, key
derivation, `Cache-Control` parsing and the settings that guard it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aibridge_graphql.core.cache import (
    Bypass,
    CacheKeys,
    MemoryCache,
    build_cache,
    bypass_from,
)
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials
from aibridge_graphql.upstream.requests import UpstreamRequest

BASE = "http://coder.example/api/v2/ai-gateway"


async def test_memory_cache_expires_on_its_clock() -> None:
    now = [0.0]
    cache = MemoryCache(10, 1024, clock=lambda: now[0])
    await cache.set("k", b"v", 5.0)
    now[0] = 4.999
    assert await cache.get("k") == b"v"
    now[0] = 5.0
    assert await cache.get("k") is None
    assert len(cache) == 0
    assert cache.size_bytes == 0


async def test_memory_cache_is_bounded_in_entries_and_bytes() -> None:
    cache = MemoryCache(3, 10, clock=lambda: 0.0)
    for key in "abc":
        await cache.set(key, b"x", 60)
    assert await cache.get("a") == b"x"  # now the most recently used
    await cache.set("d", b"x", 60)
    assert await cache.get("b") is None
    assert await cache.get("a") == b"x"
    await cache.set("big", b"y" * 9, 60)  # 9 + the others' bytes > 10: the LRU ones go
    assert cache.size_bytes <= 10
    assert await cache.get("big") == b"y" * 9
    await cache.set("huge", b"z" * 11, 60)  # over the whole bound: never stored
    assert await cache.get("huge") is None
    await cache.set("zero", b"z", 0)
    assert await cache.get("zero") is None


def test_keys_never_hold_the_token_and_separate_callers_and_requests() -> None:
    keys = CacheKeys(b"secret")
    alice, bob = Credentials("alice-token"), Credentials("bob-token")
    request = UpstreamRequest.make("/sessions", {"limit": 20, "q": "client:x"})
    same = UpstreamRequest.make("/sessions", {"q": "client:x", "limit": "20"})
    a = keys.entry(keys.identity(alice), BASE, request)
    assert a == keys.entry(keys.identity(alice), BASE, same)  # normalized: params sorted
    assert a != keys.entry(keys.identity(bob), BASE, request)
    assert a != keys.entry(keys.identity(alice), BASE + "x", request)
    assert a != keys.entry(keys.identity(alice), BASE, UpstreamRequest.make("/sessions"))
    assert a != CacheKeys(b"other").entry(CacheKeys(b"other").identity(alice), BASE, request)
    assert "alice-token" not in a
    assert "alice-token" not in keys.identity(alice)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Bypass.NONE),
        ("", Bypass.NONE),
        ("max-age=60", Bypass.NONE),
        ("no-cache", Bypass.NO_CACHE),
        ("No-Cache, max-age=0", Bypass.NO_CACHE),
        ("no-store", Bypass.NO_STORE),
        ("no-cache, no-store", Bypass.NO_STORE),
    ],
)
def test_cache_control_directives(value: str | None, expected: Bypass) -> None:
    assert bypass_from(value) is expected


def test_the_cache_needs_a_secret_and_a_redis_url() -> None:
    with pytest.raises(ValidationError, match="cache_secret"):
        Settings(cache_enabled=True)
    with pytest.raises(ValidationError, match="redis://"):
        Settings(cache_enabled=True, cache_secret="s", cache_url="http://redis:6379")
    with pytest.raises(ValidationError, match="cache_url"):
        Settings(apq_store="redis")
    assert build_cache(Settings()) is None
    on = build_cache(Settings(cache_enabled=True, cache_secret="s"))
    assert on is not None
    assert on.backend == "memory"
    # The secret never shows in the settings' repr (logged at start by some deployments).
    assert "hunter2" not in repr(Settings(cache_enabled=True, cache_secret="hunter2"))
