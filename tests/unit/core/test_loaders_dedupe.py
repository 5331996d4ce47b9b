"""The per-request `Loaders`: de-duplication, failure isolation, priming, paging of strings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest

from aibridge_graphql.core.errors import NotFound
from aibridge_graphql.core.loaders import Loaders, loaders_for_request
from aibridge_graphql.core.refs import SessionRef
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.errors import UpstreamError
from aibridge_graphql.upstream.search_query import SessionFilter
from tests.support.gateway_fakes import FakeUpstream, populated

SETTINGS = Settings(upstream_url="http://upstream.invalid", retries=0)


@pytest.fixture
def fake() -> FakeUpstream:
    return populated(sessions=6, threads=2)


@pytest.fixture
async def loaders(fake: FakeUpstream) -> AsyncIterator[Loaders]:
    client = UpstreamClient(SETTINGS, transport=fake.transport())
    try:
        yield Loaders(client, Credentials("admin-token"), concurrency=4)
    finally:
        await client.aclose()


async def test_the_same_request_is_made_once(loaders: Loaders, fake: FakeUpstream) -> None:
    pages = await asyncio.gather(
        *(loaders.sessions_page(SessionFilter(), limit=3) for _ in range(10))
    )
    assert all(page == pages[0] for page in pages)
    assert len(fake.calls) == 1
    await loaders.sessions_page(SessionFilter(), limit=3)
    assert len(fake.calls) == 1


async def test_a_failing_key_fails_alone(loaders: Loaders, fake: FakeUpstream) -> None:
    fake.failures["/sessions/session-001"] = 500
    good, bad = await asyncio.gather(
        loaders.threads_page("session-000", limit=5),
        loaders.threads_page("session-001", limit=5),
        return_exceptions=True,
    )
    assert not isinstance(good, BaseException)
    assert good.id == "session-000"
    assert isinstance(bad, UpstreamError)


async def test_lists_prime_users_and_whole_sessions(loaders: Loaders, fake: FakeUpstream) -> None:
    page = await loaders.sessions_page(SessionFilter(), limit=6, whole_sessions=True)
    first = page.sessions[0]
    user = await loaders.user.load(first.initiator.id)
    session = await loaders.session.load(SessionRef(first.id, first.initiator.id))
    assert user == first.initiator
    assert session == first
    assert len(fake.calls) == 1


async def test_filtered_lists_do_not_prime_sessions(loaders: Loaders, fake: FakeUpstream) -> None:
    page = await loaders.sessions_page(SessionFilter(model="claude-sonnet-4"), limit=6)
    first = page.sessions[0]
    await loaders.session.load(SessionRef(first.id, first.initiator.id))
    assert len(fake.calls) == 2


async def test_a_lookup_waits_for_a_list_in_flight(loaders: Loaders, fake: FakeUpstream) -> None:
    owner = fake.sessions[5].owner
    ref = SessionRef("session-005", UUID(owner["id"]))
    page, session = await asyncio.gather(
        loaders.sessions_page(SessionFilter(), limit=6, whole_sessions=True),
        loaders.session.load(ref),
    )
    assert session in page.sessions
    assert len(fake.calls) == 1


async def test_unknown_entities_are_not_found(loaders: Loaders) -> None:
    with pytest.raises(NotFound):
        await loaders.session.load(SessionRef("nope", UUID(int=1)))
    with pytest.raises(NotFound):
        await loaders.user.load(UUID(int=2))


async def test_strings_page_until_exhausted(loaders: Loaders, fake: FakeUpstream) -> None:
    fake.models = [f"model-{i:04d}" for i in range(2345)]
    assert await loaders.strings("models", None) == fake.models
    assert len(fake.calls_to("/models")) == 3
    assert await loaders.strings("models", "model-23") == fake.models[2300:]


async def test_a_dashboards_thread_calls_go_out_in_one_wave() -> None:
    """With the default per-request concurrency, 20 distinct thread pages are all in flight at
    once (each call waits until all 20 have arrived: a smaller cap would never get there)."""
    wave = 20
    arrived = 0
    everyone = asyncio.Event()
    fake = populated(sessions=wave, threads=1)

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal arrived
        if "coder-session-token" in request.headers:  # not the capability probes
            arrived += 1
            if arrived == wave:
                everyone.set()
            await everyone.wait()
        return await fake.handle(request)

    settings = Settings(upstream_url="http://upstream.invalid", retries=0)
    client = UpstreamClient(settings, transport=httpx.MockTransport(handler))
    try:
        loaders = loaders_for_request(client, settings, {"coder-session-token": "admin-token"})
        pages = await asyncio.wait_for(
            asyncio.gather(
                *(loaders.threads_page(f"session-{n:03d}", limit=3) for n in range(wave))
            ),
            timeout=30,
        )
    finally:
        await client.aclose()
    assert [page.id for page in pages] == [f"session-{n:03d}" for n in range(wave)]


async def test_loaders_for_a_request_parse_pages_without_the_unread_records(
    fake: FakeUpstream,
) -> None:
    client = UpstreamClient(SETTINGS, transport=fake.transport())
    headers = {"coder-session-token": "admin-token"}
    try:
        full = loaders_for_request(client, SETTINGS, headers)
        lean = loaders_for_request(
            client, SETTINGS, headers, skip_records=frozenset({"agentic_actions"})
        )
        read = await full.threads_page("session-000", limit=5)
        skipped = await lean.threads_page("session-000", limit=5)
    finally:
        await client.aclose()
    assert all(thread.agentic_actions for thread in read.threads)
    # Left out of the parse altogether: a field reading it would fail loudly, not read [].
    assert not any(hasattr(thread, "agentic_actions") for thread in skipped.threads)
    assert [thread.id for thread in skipped.threads] == [thread.id for thread in read.threads]
