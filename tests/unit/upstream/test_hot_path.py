"""The client's hot path: the request it builds itself, and the process-wide concurrency cap."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.requests import (
    UpstreamRequest,
    interceptions_request,
    models_request,
    session_threads_request,
)
from aibridge_graphql.upstream.search_query import InterceptionFilter

REQUESTS = [
    models_request(None, limit=5),
    models_request("gpt 5/ü&x=1", limit=1000, offset=1000),
    interceptions_request(InterceptionFilter(model="a b", initiator="me"), limit=25),
    session_threads_request("a:b@c+d=e/f?g#h%i j~ü", limit=3, after_id=None, before_id=None),
    UpstreamRequest.make("/sessions", {"q": 'client:"Claude Code"', "after_session_id": "x;y"}),
]


def _unused(request: httpx.Request) -> httpx.Response:  # pragma: no cover - nothing is sent
    raise AssertionError("no request is sent")


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r.url_path)
@pytest.mark.parametrize("base", ["http://upstream.test:9000", "https://h.test/prefix/"])
def test_the_request_is_the_one_the_client_would_build(
    request_: UpstreamRequest, base: str
) -> None:
    client = UpstreamClient(Settings(upstream_url=base), transport=httpx.MockTransport(_unused))
    headers = {"Accept": "application/json", "Coder-Session-Token": "t", "X-Request-Id": "r"}
    ours = client._request(request_, headers)
    theirs = client.http.build_request(
        "GET", request_.path, params=request_.params, headers=headers
    )
    assert ours.url == theirs.url
    assert str(ours.url) == str(theirs.url)
    assert ours.headers.multi_items() == theirs.headers.multi_items()
    assert ours.extensions == theirs.extensions
    assert "cookie" not in ours.headers


async def test_the_process_wide_cap_bounds_attempts_across_clients_requests() -> None:
    cap, calls = 3, 12
    in_flight = peak = 0
    full = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight >= cap:
            full.set()
        await full.wait()  # the first `cap` calls wait for each other: the cap is reached
        in_flight -= 1
        return httpx.Response(200, json=["m"])

    settings = Settings(upstream_url="http://upstream.test", upstream_global_concurrency=cap)
    async with UpstreamClient(settings, transport=httpx.MockTransport(handler)) as client:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    client.list_strings(models_request(str(n), limit=5), Credentials(f"t{n}"))
                    for n in range(calls)
                )
            ),
            timeout=30,
        )
    assert results == [["m"]] * calls
    assert peak == cap
