"""The shared response cache (core/cache.py) through the real gateway in front of the stand-in:
isolation of two callers interleaved under concurrency (in process, and on a real Redis shared by
two app instances), per-resource TTLs on an injected clock, the `Cache-Control` opt-out,
anonymous callers, a Redis outage, APQ across replicas, and no token anywhere in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from aibridge_graphql.core import cache
from aibridge_graphql.core.cache import KEY_PREFIX, MemoryCache, install_cache
from aibridge_graphql.core.cache import build_cache as build_shared
from aibridge_graphql.server.apq import APQ_REDIS_PREFIX, sha256_hex
from aibridge_graphql.server.keys import CLIENT_KEY
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.observe import RateLimitedLog
from tests.support.gateway_helpers import Gateway, faulty_proxy, serve_gateway
from tests.support.redis_server import RedisServer, free_port, run_redis
from tests.support.servers import run_app_in_thread

SECRET = "per-deployment-secret-for-tests"
DASHBOARD = """query Dashboard {
  sessions(first: 20) {
    totalCount
    nodes { sessionId lastPrompt initiator { username }
      threads(first: 3) { nodes { threadId model prompt } } }
  }
  models
}"""
# The owner reads every session, a member (in the stand-in's seed) none: a leak of either's
# entries to the other shows in the other's dashboard.
CALLERS = ("admin", "alice")
TTL = 600.0
RESOURCES = ("models", "clients", "providers", "sessions", "threads", "interceptions")


def cache_settings(**overrides: Any) -> dict[str, Any]:
    # A generous Redis timeout: this shared machine is slow at times, and a timeout is a miss.
    # TTLs long enough that nothing expires on the wall clock during a test (the TTL test moves
    # its own clock).
    ttls = {f"cache_ttl_{name}": TTL for name in RESOURCES}
    return {
        "cache_enabled": True,
        "cache_secret": SECRET,
        "cache_timeout": 10.0,
        **ttls,
        **overrides,
    }


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with run_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server, emptied for each test."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


async def dashboard(gw: Gateway, token: str, **headers: str) -> dict[str, Any]:
    response = await gw.http.post(
        "/graphql",
        json={"query": DASHBOARD},
        headers={"Coder-Session-Token": token, **headers},
    )
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def truth(standin_url: str, tokens: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each caller's dashboard from a gateway without a cache: what they must see."""
    async with serve_gateway(standin_url) as plain:
        return {name: await dashboard(plain, tokens[name]) for name in CALLERS}


def assert_own(name: str, data: dict[str, Any]) -> None:
    initiators = {node["initiator"]["username"] for node in data["sessions"]["nodes"]}
    assert len(initiators) > 1 if name == "admin" else initiators == set()


async def interleaved(
    gateways: list[Gateway], tokens: dict[str, str], expected: dict[str, dict[str, Any]]
) -> None:
    """40 dashboards, both callers alternating across the gateways, all at once."""
    jobs = [(name, gateways[i % len(gateways)]) for i in range(20) for name in CALLERS]
    results = await asyncio.gather(*(dashboard(gw, tokens[name]) for name, gw in jobs))
    for (name, _), data in zip(jobs, results, strict=True):
        assert_own(name, data)
        assert data == expected[name]


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_in_process_isolation_under_concurrency(
    standin_url: str, tokens: dict[str, str]
) -> None:
    expected = await truth(standin_url, tokens)
    assert expected["alice"] != expected["admin"]
    async with serve_gateway(standin_url, **cache_settings()) as gw:
        # Cold and interleaved: both callers miss at once, neither may get the other's entry.
        await interleaved([gw], tokens, expected)
        warm = len(gw.calls)
        assert warm > 0
        await interleaved([gw], tokens, expected)
        assert len(gw.calls) == warm  # every view of both callers came from the cache
        text = await (await gw.http.get("/metrics")).text()
        hits = metric(text, "aibridge_response_cache_requests_total", result="hit")
        misses = metric(text, "aibridge_response_cache_requests_total", result="miss")
        assert hits > 0
        assert misses > 0
        assert metric(text, "aibridge_response_cache_requests_total", endpoint="/models") > 0


async def test_redis_isolation_across_two_replicas(
    standin_url: str, tokens: dict[str, str], redis_url: str
) -> None:
    expected = await truth(standin_url, tokens)
    settings = cache_settings(cache_url=redis_url)
    async with (
        serve_gateway(standin_url, **settings) as one,
        serve_gateway(standin_url, **settings) as two,
    ):
        await interleaved([one, two], tokens, expected)
        warm_one, warm_two = len(one.calls), len(two.calls)
        # Each replica now answers both callers from the entries either of them stored.
        await interleaved([two, one], tokens, expected)
        assert (len(one.calls), len(two.calls)) == (warm_one, warm_two)
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(count=1000))
        assert keys
        assert all(key.startswith(KEY_PREFIX.encode()) for key in keys)
        for key in keys:
            value = client.get(key)
            assert isinstance(value, bytes)  # nothing expires within TTL
            for token in tokens.values():
                assert token.encode() not in key
                assert token.encode() not in value
            assert 0 < client.pttl(key) <= TTL * 1000


async def test_ttls_per_resource_on_an_injected_clock(
    standin_url: str, tokens: dict[str, str]
) -> None:
    now = [1000.0]
    ttls = cache_settings(cache_ttl_sessions=10.0, cache_ttl_threads=10.0, cache_ttl_models=300.0)
    async with serve_gateway(standin_url, **ttls) as gw:
        settings = Settings(upstream_url=standin_url, **ttls)
        shared = build_shared(settings, clock=lambda: now[0])
        assert shared is not None
        assert isinstance(shared.store, MemoryCache)
        install_cache(gw.http.app[CLIENT_KEY], shared)
        token = tokens["admin"]
        await dashboard(gw, token)
        first = list(gw.calls)
        await dashboard(gw, token)
        assert gw.calls == first
        now[0] += settings.cache_ttl_sessions + 0.001  # sessions and threads expired, models not
        await dashboard(gw, token)
        again = gw.calls[len(first) :]
        assert again
        assert not any(call.startswith("/models") for call in again)
        assert sorted(again) == sorted(c for c in first if not c.startswith("/models"))
        now[0] += settings.cache_ttl_models
        await dashboard(gw, token)
        assert any(call.startswith("/models") for call in gw.calls[len(first) + len(again) :])


async def test_cache_control_no_cache_bypasses_and_refreshes(
    standin_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(standin_url, **cache_settings()) as gw:
        token = tokens["admin"]
        await dashboard(gw, token)
        cold = len(gw.calls)
        await dashboard(gw, token, **{"Cache-Control": "no-cache"})
        assert len(gw.calls) == 2 * cold  # every call went upstream again
        await dashboard(gw, token)
        assert len(gw.calls) == 2 * cold  # and refreshed the entries
        await dashboard(gw, token, **{"Cache-Control": "max-age=0, No-Store"})
        assert len(gw.calls) == 3 * cold
        text = await (await gw.http.get("/metrics")).text()
        assert metric(text, "aibridge_response_cache_requests_total", result="bypass") > 0


async def usage_csv(gw: Gateway, token: str, **headers: str) -> str:
    response = await gw.http.get(
        "/usage.csv",
        params={"groupBy": "USER,MODEL"},
        headers={"Coder-Session-Token": token, **headers},
    )
    assert response.status == 200, await response.text()
    # A whole scan reads the same pages every time (a partial one may stop elsewhere).
    assert response.headers["X-Usage-Complete"] == "true"
    return await response.text()


async def test_usage_csv_honours_cache_control(standin_url: str, tokens: dict[str, str]) -> None:
    """`/usage.csv` reads through the response cache like `/graphql`, and its `Cache-Control`
    opts out the same way."""
    async with serve_gateway(standin_url, **cache_settings()) as gw:
        token = tokens["admin"]
        rows = await usage_csv(gw, token)
        cold = len(gw.calls)
        assert cold > 0
        assert await usage_csv(gw, token) == rows
        assert len(gw.calls) == cold  # every page from the cache
        assert await usage_csv(gw, token, **{"Cache-Control": "no-cache"}) == rows
        assert len(gw.calls) == 2 * cold  # every page upstream again
        assert await usage_csv(gw, token) == rows
        assert len(gw.calls) == 2 * cold  # and the entries refreshed
        assert await usage_csv(gw, token, **{"Cache-Control": "no-store"}) == rows
        assert len(gw.calls) == 3 * cold


async def test_anonymous_requests_are_never_cached(standin_url: str) -> None:
    async with serve_gateway(standin_url, **cache_settings()) as gw:
        for _ in range(2):
            body = await gw.query("{ models }", anonymous=True)
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert gw.calls == ["/models?limit=1000", "/models?limit=1000"]
        text = await (await gw.http.get("/metrics")).text()
        assert metric(text, "aibridge_response_cache_requests_total") == 0


async def test_a_redis_outage_degrades_to_no_cache(
    standin_url: str,
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fresh rate limiter: another test's line would silence this one's.
    monkeypatch.setattr(cache, "_WARNINGS", RateLimitedLog(cache.logger))
    expected = await truth(standin_url, tokens)
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="aibridge_graphql.core.cache"):
        async with serve_gateway(standin_url, **cache_settings(cache_url=dead)) as gw:
            for _ in range(3):
                assert await dashboard(gw, tokens["admin"]) == expected["admin"]
            text = await (await gw.http.get("/metrics")).text()
    assert metric(text, "aibridge_response_cache_errors_total", backend="redis") >= 1
    warnings = [r for r in caplog.records if r.name == "aibridge_graphql.core.cache"]
    # Rate-limited: one line for the reads, at most one for the writes, however many requests.
    assert 1 <= len(warnings) <= 2
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert all("127.0.0.1" not in r.getMessage() for r in warnings)


async def test_redis_stopping_mid_way_serves_from_upstream(
    standin_url: str, tokens: dict[str, str]
) -> None:
    expected = await truth(standin_url, tokens)
    with run_redis() as server:
        async with serve_gateway(standin_url, **cache_settings(cache_url=server.url)) as gw:
            assert await dashboard(gw, tokens["admin"]) == expected["admin"]
            cold = len(gw.calls)
            server.stop()
            assert await dashboard(gw, tokens["admin"]) == expected["admin"]
            assert len(gw.calls) == 2 * cold


@contextlib.asynccontextmanager
async def replicas(standin_url: str, redis_url: str) -> AsyncIterator[tuple[Gateway, Gateway]]:
    async with (
        serve_gateway(
            standin_url, apq_store="redis", cache_url=redis_url, cache_timeout=10.0
        ) as one,
        serve_gateway(
            standin_url, apq_store="redis", cache_url=redis_url, cache_timeout=10.0
        ) as two,
    ):
        yield one, two


async def apq(gw: Gateway, token: str, query: str | None, sha: str) -> dict[str, Any]:
    payload: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}}
    if query is not None:
        payload["query"] = query
    response = await gw.http.post("/graphql", json=payload, headers={"Coder-Session-Token": token})
    body: dict[str, Any] = await response.json()
    return body


async def test_apq_registered_on_one_replica_runs_on_another(
    standin_url: str, tokens: dict[str, str], redis_url: str
) -> None:
    query = "query Models { models }"
    sha = sha256_hex(query)
    token = tokens["admin"]
    async with replicas(standin_url, redis_url) as (one, two):
        missed = await apq(two, token, None, sha)
        assert missed["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        registered = await apq(one, token, query, sha)
        assert "errors" not in registered
        ran = await apq(two, token, None, sha)
        assert ran == registered
    with redis.Redis.from_url(redis_url) as client:
        assert client.get(APQ_REDIS_PREFIX + sha) == query.encode()
        for key in client.scan_iter():
            assert token.encode() not in key
            assert token.encode() not in (client.get(key) or b"")


async def test_apq_with_redis_down_falls_back_to_the_local_registry(
    standin_url: str, tokens: dict[str, str]
) -> None:
    query = "query Models { models }"
    sha = sha256_hex(query)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with serve_gateway(standin_url, apq_store="redis", cache_url=dead) as gw:
        registered = await apq(gw, tokens["admin"], query, sha)
        assert "errors" not in registered
        assert await apq(gw, tokens["admin"], None, sha) == registered


async def test_a_body_that_does_not_parse_is_not_cached(
    standin_url: str, tokens: dict[str, str]
) -> None:
    faults = {"/models": (200, {"not": "a list of models"})}
    with run_app_in_thread(lambda: faulty_proxy(standin_url, faults)) as hop:
        async with serve_gateway(hop, **cache_settings()) as gw:
            for _ in range(2):
                body = await gw.query("{ models }", token=tokens["admin"])
                assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
            assert gw.calls == ["/models?limit=1000", "/models?limit=1000"]
