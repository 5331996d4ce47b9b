"""Live views under stress: two callers at once, hang-ups, an upstream that fails, bad input."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.support.gateway_helpers import Gateway, faulty_proxy, serve_gateway
from tests.support.live import metric, sse_subscription
from tests.support.live_standin import LiveStandin
from tests.support.servers import run_app_in_thread

LIVE: dict[str, Any] = {"live_poll_interval": 1.0, "live_session_idle": 60.0}
WATCH = """subscription Watch {
  sessions(first: 10, includeExisting: true) { kind session { sessionId initiator { username } } }
}"""
SETTLE_S = 20.0


def auth(token: str) -> dict[str, str]:
    return {"Coder-Session-Token": token}


async def live_gauges(gw: Gateway) -> tuple[float, float]:
    text = await (await gw.http.get("/metrics")).text()
    return metric(text, "aibridge_live_streams"), metric(text, "aibridge_live_pollers")


async def settle(gw: Gateway, expected: tuple[float, float]) -> None:
    """Poll /metrics (bounded) until the live gauges read `expected`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_S
    while (gauges := await live_gauges(gw)) != expected:
        assert loop.time() < deadline, f"live gauges {gauges}, expected {expected}"
        await asyncio.sleep(0.05)


def session_of(result: dict[str, Any] | None) -> dict[str, Any]:
    assert result is not None
    assert not result.get("errors"), result
    data: dict[str, Any] = result["data"]["sessions"]
    return data


async def test_two_callers_never_share_a_poller_or_an_event(
    live_standin: LiveStandin, tokens: dict[str, str]
) -> None:
    # The owner sees every session; alice, a member, none (Coder's authorize filter): whatever
    # is appended for her reaches the owner's stream and never hers.
    traffic = live_standin.traffic
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        async with (
            sse_subscription(url, WATCH, auth(tokens["admin"])) as owner,
            sse_subscription(url, WATCH, auth(tokens["alice"])) as member,
        ):
            assert session_of(await owner.next())["kind"] == "EXISTING"
            await settle(gw, (2, 2))
            first = traffic.start_session("alice")
            second = traffic.start_session("bogdan")
            seen: set[str] = set()
            while seen != {first.session_id, second.session_id}:
                event = session_of(await owner.next())
                if event["kind"] == "ADDED":
                    seen.add(event["session"]["sessionId"])
            # The member's stream has nothing: not the owner's events, not an error.
            with pytest.raises(TimeoutError):
                await member.next(within_s=2.5)


async def test_a_hang_up_frees_its_stream_and_the_last_one_the_poller(
    live_standin: LiveStandin, tokens: dict[str, str]
) -> None:
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        async with sse_subscription(url, WATCH, auth(tokens["admin"])) as one:
            await one.next()
            async with sse_subscription(url, WATCH, auth(tokens["admin"])) as two:
                await two.next()
                await settle(gw, (2, 1))  # one poller for both
            await settle(gw, (1, 1))
        await settle(gw, (0, 0))


async def test_an_upstream_outage_is_an_error_event_and_the_stream_recovers(
    live_standin: LiveStandin, tokens: dict[str, str]
) -> None:
    faults: dict[str, tuple[int, dict[str, Any]]] = {}
    with run_app_in_thread(lambda: faulty_proxy(live_standin.url, faults)) as proxy:
        async with serve_gateway(proxy, retries=0, **LIVE) as gw:
            url = str(gw.http.make_url("/graphql"))
            async with sse_subscription(url, WATCH, auth(tokens["admin"])) as stream:
                assert session_of(await stream.next())["kind"] == "EXISTING"
                faults["/sessions"] = (503, {"message": "Coder is restarting."})
                event = await stream.next()
                while event is not None and not event.get("errors"):
                    event = await stream.next()  # the rest of the EXISTING ones
                assert event is not None
                assert event["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
                del faults["/sessions"]
                started = live_standin.traffic.start_session("alice")
                while True:
                    event = await stream.next()
                    if event is not None and event.get("errors"):
                        continue  # a poll that failed before the upstream came back
                    data = session_of(event)
                    if data["kind"] == "ADDED":
                        break
                assert data["session"]["sessionId"] == started.session_id
            text = await (await gw.http.get("/metrics")).text()
            assert (
                'aibridge_live_poll_errors_total{code="UPSTREAM_UNAVAILABLE",view="sessions"}'
                in text
            )


async def test_a_401_ends_the_stream_unauthenticated(live_standin: LiveStandin) -> None:
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        async with sse_subscription(url, WATCH, auth("NotAToken0-0123456789abcdefghijkl")) as s:
            result = await s.next()
            assert await s.next() is None  # completed
        assert result is not None
        assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        await settle(gw, (0, 0))


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ('subscription { sessionTimeline(sessionId: "no-such-session") { kind } }', "NOT_FOUND"),
        ('subscription { sessionTimeline(sessionId: "") { kind } }', "BAD_USER_INPUT"),
        ("subscription { sessions(first: 0) { kind } }", "BAD_USER_INPUT"),
        ("subscription { sessions(first: 1001) { kind } }", "BAD_USER_INPUT"),
        (
            'subscription { sessions(filter: {model: "a\\"b"}) { kind } }',
            "BAD_USER_INPUT",
        ),
        ('subscription { aiSpend(user: "..") { kind } }', "BAD_USER_INPUT"),
        ("subscription { sessions { nope } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_bad_input_is_a_clear_error_event_and_the_end(
    live_standin: LiveStandin, tokens: dict[str, str], query: str, code: str
) -> None:
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        async with sse_subscription(url, query, auth(tokens["admin"])) as stream:
            result = await stream.next()
            assert await stream.next() is None
        assert result is not None
        assert [error["extensions"]["code"] for error in result["errors"]] == [code]
        await settle(gw, (0, 0))


async def test_streams_over_the_limit_are_rate_limited(
    live_standin: LiveStandin, tokens: dict[str, str]
) -> None:
    async with serve_gateway(live_standin.url, live_max_streams_per_caller=1, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        async with sse_subscription(url, WATCH, auth(tokens["admin"])) as first:
            await first.next()
            async with sse_subscription(url, WATCH, auth(tokens["admin"])) as second:
                refused = await second.next()
                assert await second.next() is None
            assert refused is not None
            assert refused["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            # Another caller is not counted against this one's limit.
            async with sse_subscription(url, WATCH, auth(tokens["auditor"])) as other:
                assert session_of(await other.next())["kind"] == "EXISTING"


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_a_subscription_sent_for_a_json_answer_is_406(
    live_standin: LiveStandin, tokens: dict[str, str], accept: str
) -> None:
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        response = await gw.http.post(
            "/graphql", json={"query": WATCH}, headers={**auth(tokens["admin"]), "Accept": accept}
        )
        body = json.loads(await response.text())
        assert response.status == 406
        assert body["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"
        assert "text/event-stream" in body["errors"][0]["message"]
        assert gw.calls == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("subscription { sessions(", "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_request_errors_over_sse_are_one_error_event(
    live_standin: LiveStandin, tokens: dict[str, str], query: str, code: str
) -> None:
    async with serve_gateway(live_standin.url, **LIVE) as gw:
        url = str(gw.http.make_url("/graphql"))
        async with sse_subscription(url, query, auth(tokens["admin"])) as stream:
            result = await stream.next()
            assert await stream.next() is None
        assert result is not None
        assert result["errors"][0]["extensions"]["code"] == code
        assert gw.calls == []
