"""`/metrics`: scraped over HTTP after real queries through the gateway."""

from __future__ import annotations

import asyncio

import httpx

from aibridge_graphql.core.metrics import OTHER, GatewayMetrics
from aibridge_graphql.upstream.capabilities import PROBE_USER_AGENT
from aibridge_graphql.upstream.observe import endpoint_template
from tests.support.gateway_fakes import populated
from tests.support.observability import DASHBOARD, observed_gateway, sample

OPS = "aibridge_graphql_operation_duration_seconds_count"
UPSTREAM = "aibridge_upstream_request_duration_seconds_count"


async def test_operations_upstream_calls_and_batches_are_counted() -> None:
    async with observed_gateway() as gw:
        await gw.post({"query": DASHBOARD, "variables": {"first": 3}})
        await gw.post({"query": "{ models }"})
        signed_out = await gw.http.post(
            "/graphql", json={"query": "query Who { models }"}, headers={"Coder-Session-Token": "x"}
        )
        assert signed_out.status == 200
        samples = await gw.scrape()

    assert sample(samples, OPS, operation="Dashboard", outcome="ok") == 1
    assert sample(samples, OPS, operation="anonymous", outcome="ok") == 1
    assert sample(samples, OPS, operation="Who", outcome="UNAUTHENTICATED") == 1
    errors = "aibridge_graphql_errors_total"
    assert sample(samples, errors, operation="Who", code="UNAUTHENTICATED") == 1
    # One sessions page, then the three sessions' threads in one batch of three keys.
    assert sample(samples, UPSTREAM, endpoint="/sessions", status="200") == 1
    assert sample(samples, UPSTREAM, endpoint="/sessions/{session_id}", status="200") == 3
    assert sample(samples, UPSTREAM, endpoint="/models", status="200") == 1
    assert sample(samples, UPSTREAM, endpoint="/models", status="401") == 1
    batches = "aibridge_loader_batch_size"
    assert sample(samples, f"{batches}_count", loader="session_threads") == 1
    assert sample(samples, f"{batches}_sum", loader="session_threads") == 3
    assert sample(samples, f"{batches}_bucket", loader="session_threads", le="2.0") == 0
    assert sample(samples, f"{batches}_bucket", loader="session_threads", le="4.0") == 1
    assert sample(samples, "aibridge_http_requests_in_flight") == 0
    # No raw id ever becomes a label value.
    assert not any("session-0" in value for _, labels in samples for _, value in labels)


async def test_an_unreachable_upstream_is_labelled_error() -> None:
    fake = populated()
    fake.failures["/models"] = httpx.ConnectError("refused")
    async with observed_gateway(fake=fake) as gw:
        _, body, _ = await gw.post({"query": "query M { models }"})
        samples = await gw.scrape()
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert sample(samples, UPSTREAM, endpoint="/models", status="error") == 1
    assert sample(samples, OPS, operation="M", outcome="UPSTREAM_UNAVAILABLE") == 1


async def test_requests_in_flight_are_gauged() -> None:
    fake = populated()
    entered, release = asyncio.Event(), asyncio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        if request.headers.get("User-Agent") == PROBE_USER_AGENT:
            return await fake.handle(request)  # the start-up probes are not what is held
        entered.set()
        await release.wait()
        return await fake.handle(request)

    async with observed_gateway(fake=fake, transport=httpx.MockTransport(held)) as gw:
        pending = asyncio.create_task(gw.post({"query": "{ models }"}))
        await asyncio.wait_for(entered.wait(), timeout=10)
        during = await gw.scrape()
        release.set()
        status, _, _ = await pending
        after = await gw.scrape()
    assert status == 200
    assert sample(during, "aibridge_http_requests_in_flight") == 1
    assert sample(after, "aibridge_http_requests_in_flight") == 0


async def test_two_apps_never_share_counters() -> None:
    async with observed_gateway() as first, observed_gateway() as second:
        await first.post({"query": "query Only { models }"})
        one, other = await first.scrape(), await second.scrape()
    assert sample(one, OPS, operation="Only", outcome="ok") == 1
    assert sample(other, OPS, operation="Only", outcome="ok") is None


async def test_openmetrics_is_served_when_the_scraper_asks_for_it() -> None:
    async with observed_gateway() as gw:
        response = await gw.http.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        text = await response.text()
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")


def test_operation_names_are_capped_and_must_be_graphql_names() -> None:
    metrics = GatewayMetrics(max_operation_names=2)
    names = ["A", "not a name", "x" * 129, "B", "C", "A", None]
    labels = [metrics.operation_label(name) for name in names]
    assert labels == ["A", OTHER, OTHER, "B", OTHER, "A", OTHER]


def test_endpoint_templates_never_carry_ids() -> None:
    assert endpoint_template("/sessions") == "/sessions"
    assert endpoint_template("/sessions/abc%2F123") == "/sessions/{session_id}"
    assert endpoint_template("/interceptions") == "/interceptions"
    assert endpoint_template("/sessions/a/b") == OTHER
