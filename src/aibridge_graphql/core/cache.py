"""The shared response cache (opt-in): raw upstream bodies, per caller and per upstream request.

Protocol-neutral: the loaders (core/loaders/resources.py) wrap their byte fetch in
`CacheView.fetch`, so every face shares it and parsing stays the loaders' business.
- Keys: `HMAC-SHA256(secret, token)` names the caller (never the token itself), and a second HMAC
  over that identity, the API base URL, the path and the sorted params names the entry; a caller
  can only ever read entries made from its own token. Anonymous requests are never cached.
- TTLs per resource (settings `cache_ttl_*`; 0 turns one off); only 2xx bodies are stored.
- Backends: `MemoryCache` (in-process LRU, bounded in entries and bytes) or `RedisCache`
  (`cache_url`, shared by replicas); a Redis that fails degrades to no cache, never to an error.
- A request may opt out (`Cache-Control: no-cache` / gRPC `cache-control` metadata): `no-cache`
  skips the read and refreshes the entry, `no-store` neither reads nor writes.
- Invalidation: the entries a write can make stale (a family of endpoints, e.g. the spend reads)
  are keyed with the caller's current generation of that family, a random token stored in the
  cache itself (so replicas sharing Redis share it); a successful write replaces it
  (`CacheView.invalidate`), which leaves the caller's older entries unreachable until they
  expire. Writes themselves never go through the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aibridge_graphql.core.scope import CURRENT_SCOPE
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.observe import RateLimitedLog, endpoint_template
from aibridge_graphql.upstream.requests import UpstreamRequest

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)
_WARNINGS = RateLimitedLog(logger)

Clock = Callable[[], float]
KEY_PREFIX = "aibridge:resp:"
# After a Redis failure, this long without trying it again: an outage costs one timeout per
# second, not one per upstream request.
_REDIS_RETRY_AFTER = 1.0
# Connections to Redis per process: commands are sub-millisecond, so a few dozen serve bursts.
_REDIS_MAX_CONNECTIONS = 32
GENERATION_PREFIX = "aibridge:gen:"
# How long a caller's generation of a family lives without a write: past it, a fresh random one
# (entries under the old one were unreachable anyway). Far longer than any TTL of an entry.
_GENERATION_TTL = 86_400.0
SPEND = "spend"
# Endpoint templates whose entries a write can make stale, by family (one generation each).
FAMILIES: dict[str, str] = {
    "/api/v2/users/{user}/ai/spend": SPEND,
    "/api/v2/organizations/{organization}/groups/ai/spend": SPEND,
}


class ResponseCache(Protocol):
    """A byte store with per-entry TTLs; its failures are its own (get answers None)."""

    async def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when absent, expired or unreachable."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store `value` for `ttl` seconds (best effort)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryCache:
    """An in-process LRU bounded in entries and in bytes, with per-entry expiry."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Clock = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        """The live entry, marked recently used; an expired one is dropped."""
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if self._clock() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store, evicting the least recently used beyond the bounds; a body over the byte
        bound is not stored at all."""
        if ttl <= 0 or len(value) > self._max_bytes:
            return
        self._drop(key)
        self._entries[key] = (self._clock() + ttl, value)
        self._bytes += len(value)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= len(found[1])

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The bytes held."""
        return self._bytes

    async def aclose(self) -> None:
        """Nothing to release."""


def _count_error(backend: str) -> None:
    scope = CURRENT_SCOPE.get()
    if scope is not None:
        scope.metrics.cache_errors.labels(backend).inc()


class RedisCache:
    """A Redis/Valkey store (`redis.asyncio`): shared by replicas; an outage means no cache.

    Every failure (refused, timed out, any Redis error) answers as a miss, warns (rate-limited)
    and leaves Redis alone for a second, so a Redis outage costs latency once per second at most.
    """

    def __init__(self, url: str, *, timeout: float, clock: Clock = time.monotonic) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis

        # A bounded pool whose callers wait (up to the timeout) for a connection: a burst of
        # requests shares the connections instead of failing or opening one each.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=_REDIS_MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._redis: Redis = Redis(connection_pool=pool)
        self._clock = clock
        self._down_until = 0.0

    @property
    def redis(self) -> Redis:
        """The client (tests scan its keys; the APQ registry shares it)."""
        return self._redis

    def _available(self) -> bool:
        return self._clock() >= self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        self._down_until = self._clock() + _REDIS_RETRY_AFTER
        _count_error("redis")
        # The class only: a Redis error's text may quote the URL (and its password).
        _WARNINGS.warning(
            ("redis", what),
            "cache Redis %s failed (%s): serving without it",
            what,
            type(exc).__name__,
        )

    async def get(self, key: str) -> bytes | None:
        """The stored bytes, or None (absent, or Redis unavailable)."""
        if not self._available():
            return None
        try:
            value: Any = await self._redis.get(key)
        except Exception as exc:  # any failure of the cache is a miss, never the caller's error
            self._failed("read", exc)
            return None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store with an expiry in milliseconds (at least 1)."""
        if ttl <= 0 or not self._available():
            return
        try:
            await self._redis.set(key, value, px=max(1, int(ttl * 1000)))
        except Exception as exc:
            self._failed("write", exc)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


class CacheKeys:
    """Key derivation from the per-deployment secret: identities and entry keys, both HMACs."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def identity(self, credentials: Credentials) -> str:
        """The caller's cache identity: an HMAC of the token, useless without the secret."""
        return hmac.new(
            self._secret, b"identity\0" + credentials.token.encode(), "sha256"
        ).hexdigest()

    def entry(
        self, identity: str, base_url: str, request: UpstreamRequest, generation: str = ""
    ) -> str:
        """The key of one caller's answer to one normalized upstream request (under the
        caller's `generation` of the request's family, for a family that has one)."""
        parts = [identity, base_url, request.path, *(f"{k}={v}" for k, v in request.params)]
        if generation:
            parts.append(f"generation={generation}")
        digest = hmac.new(self._secret, "\0".join(parts).encode(), hashlib.sha256).hexdigest()
        return KEY_PREFIX + digest

    def generation(self, identity: str, family: str) -> str:
        """The key under which a caller's current generation of a family is stored."""
        digest = hmac.new(
            self._secret, f"generation\0{identity}\0{family}".encode(), hashlib.sha256
        ).hexdigest()
        return GENERATION_PREFIX + digest


class Bypass(Enum):
    """What a request's `Cache-Control` asks of the cache."""

    NONE = "none"
    NO_CACHE = "no-cache"  # do not read; refresh the entry with the answer
    NO_STORE = "no-store"  # do not read, do not write


def bypass_from(value: str | None) -> Bypass:
    """From a `Cache-Control` header or metadata value (directives are case-insensitive)."""
    directives = {part.strip().split("=")[0].lower() for part in (value or "").split(",")}
    if "no-store" in directives:
        return Bypass.NO_STORE
    if "no-cache" in directives:
        return Bypass.NO_CACHE
    return Bypass.NONE


def ttls(settings: Settings) -> dict[str, float]:
    """Seconds per endpoint template; endpoints not named here are never cached."""
    return {
        "/models": settings.cache_ttl_models,
        "/clients": settings.cache_ttl_clients,
        "/providers": settings.cache_ttl_providers,
        "/sessions": settings.cache_ttl_sessions,
        "/sessions/{session_id}": settings.cache_ttl_threads,
        "/interceptions": settings.cache_ttl_interceptions,
        **dict.fromkeys(FAMILIES, settings.cache_ttl_spend),
    }


@dataclass(frozen=True, slots=True)
class SharedCache:
    """The process's cache with what every request needs of it (keys, TTLs)."""

    store: ResponseCache
    keys: CacheKeys
    ttls: dict[str, float]
    backend: str

    def view(
        self, client: UpstreamClient, credentials: Credentials | None, bypass: Bypass
    ) -> CacheView | None:
        """One request's view, or None when it must not use the cache (anonymous)."""
        if credentials is None:
            return None
        return CacheView(self, client, self.keys.identity(credentials), bypass)


Fetch = Callable[[UpstreamRequest], Awaitable[bytes]]
T = TypeVar("T")


class CacheView:
    """One caller's use of the cache during one request."""

    def __init__(
        self, shared: SharedCache, client: UpstreamClient, identity: str, bypass: Bypass
    ) -> None:
        self._shared = shared
        self._client = client
        self._identity = identity
        self._bypass = bypass

    async def fetch(self, request: UpstreamRequest, fetch: Fetch, parse: Callable[[bytes], T]) -> T:
        """`parse` of this caller's cached body of `request`, else of `fetch(request)`; a body is
        stored only once it parsed, so a garbled answer is not served again for a TTL."""
        endpoint = endpoint_template(request.path)
        ttl = self._shared.ttls.get(endpoint, 0.0)
        if ttl <= 0:
            return parse(await fetch(request))
        family = FAMILIES.get(endpoint)
        generation = "" if family is None else await self._generation(family)
        # The base URL as detected now: a prefix change (a Coder upgrade) is another key.
        base_url = str(self._client.http.base_url)
        key = self._shared.keys.entry(self._identity, base_url, request, generation)
        store = self._shared.store
        if self._bypass is Bypass.NONE:
            cached = await store.get(key)
            if cached is not None:
                _count(endpoint, "hit")
                return parse(cached)
            _count(endpoint, "miss")
        else:
            _count(endpoint, "bypass")
        content = await fetch(request)
        parsed = parse(content)
        if self._bypass is not Bypass.NO_STORE:
            await store.set(key, content, ttl)
        return parsed

    async def _generation(self, family: str) -> str:
        """The caller's current generation of `family`; a fresh one when none is stored, so
        entries of a generation that expired or was evicted are never reached again."""
        key = self._shared.keys.generation(self._identity, family)
        stored = await self._shared.store.get(key)
        if stored is not None:
            return stored.decode("ascii", "replace")
        return await self._renew(key)

    async def _renew(self, key: str) -> str:
        fresh = secrets.token_hex(16)
        await self._shared.store.set(key, fresh.encode("ascii"), _GENERATION_TTL)
        return fresh

    async def invalidate(self, family: str) -> None:
        """After a successful write: this caller's cached entries of `family` are not served
        again (a new generation; the old entries expire unread). Best effort, as every cache
        operation: a Redis that is down answers no entry either."""
        await self._renew(self._shared.keys.generation(self._identity, family))


def _count(endpoint: str, result: str) -> None:
    scope = CURRENT_SCOPE.get()
    if scope is not None:
        scope.metrics.cache_requests.labels(endpoint, result).inc()


def build_cache(settings: Settings, clock: Clock = time.monotonic) -> SharedCache | None:
    """The cache the settings ask for, or None when it is off."""
    if not settings.cache_enabled or settings.cache_secret is None:
        return None
    store: ResponseCache
    if settings.cache_url:
        store = RedisCache(settings.cache_url, timeout=settings.cache_timeout, clock=clock)
        backend = "redis"
    else:
        store = MemoryCache(settings.cache_max_entries, settings.cache_max_bytes, clock)
        backend = "memory"
    keys = CacheKeys(settings.cache_secret.get_secret_value().encode())
    return SharedCache(store, keys, ttls(settings), backend)


# One cache per pooled client, i.e. per process in `serve` (both faces share the client), and
# per app in tests (each with its own client, like separate replicas).
_CACHES: weakref.WeakKeyDictionary[UpstreamClient, SharedCache | None] = weakref.WeakKeyDictionary()


def cache_for(client: UpstreamClient, settings: Settings) -> SharedCache | None:
    """The shared cache of this client's process, built on first use from the settings."""
    if client in _CACHES:
        return _CACHES[client]
    if not settings.cache_enabled:
        return None
    cache = _CACHES[client] = build_cache(settings)
    return cache


def install_cache(client: UpstreamClient, cache: SharedCache | None) -> None:
    """Use this cache for the client's requests (tests inject one with their own clock)."""
    _CACHES[client] = cache


async def close_cache(client: UpstreamClient) -> None:
    """Release the client's cache (its Redis connections), if it has one."""
    cache = _CACHES.pop(client, None)
    if cache is not None:
        await cache.store.aclose()
