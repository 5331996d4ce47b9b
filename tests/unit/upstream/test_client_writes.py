"""Writes through the upstream client: PUT/DELETE carry a JSON body and retry like reads; a POST
is sent once, and a POST whose answer is lost is "outcome unknown", distinct from "not done"."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from aibridge_graphql.core.errors import describe
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.deadline import Deadline
from aibridge_graphql.upstream.errors import (
    DeadlineExceeded,
    UpstreamBadRequest,
    UpstreamOutcomeUnknown,
    UpstreamUnavailable,
)
from aibridge_graphql.upstream.observe import endpoint_template
from aibridge_graphql.upstream.requests import (
    group_ai_budget_request,
    user_ai_budget_override_request,
)
from tests.unit.upstream.test_client import Recorder, fail, ok, status

CREDS = Credentials("secret-token-abc")
SETTINGS = Settings(upstream_url="http://upstream.test:9000/coder", retries=2, retry_backoff=0)
GROUP = "0b9b7c1e-0000-4000-8000-000000000001"
REQUEST = group_ai_budget_request(GROUP)


def _client(recorder: Recorder) -> UpstreamClient:
    return UpstreamClient(SETTINGS, transport=httpx.MockTransport(recorder))


async def test_put_sends_the_json_body_token_and_content_type_to_the_deployment() -> None:
    recorder = Recorder(ok({"group_id": GROUP, "spend_limit_micros": 5}))
    async with _client(recorder) as client:
        content = await client.send_json("PUT", REQUEST, {"spend_limit_micros": 5}, CREDS)
    assert json.loads(content)["spend_limit_micros"] == 5
    (sent,) = recorder.seen
    assert sent.method == "PUT"
    assert str(sent.url) == f"http://upstream.test:9000/coder/api/v2/groups/{GROUP}/ai/budget"
    assert json.loads(sent.content) == {"spend_limit_micros": 5}
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Coder-Session-Token"] == CREDS.token


async def test_delete_204_is_an_empty_body_and_sends_no_body() -> None:
    recorder = Recorder(lambda request: httpx.Response(204))
    async with _client(recorder) as client:
        assert await client.send_json("DELETE", REQUEST, None, CREDS) == b""
    (sent,) = recorder.seen
    assert sent.method == "DELETE"
    assert sent.content == b""
    assert "Content-Type" not in sent.headers


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_idempotent_writes_retry_like_reads(method: str) -> None:
    recorder = Recorder(fail(httpx.ReadError), status(503), lambda request: httpx.Response(204))
    async with _client(recorder) as client:
        assert await client.send_json(method, REQUEST, {"spend_limit_micros": 1}, CREDS) == b""
    assert [request.method for request in recorder.seen] == [method] * 3


@pytest.mark.parametrize(
    "answer",
    [fail(httpx.ReadError), fail(httpx.RemoteProtocolError), fail(httpx.ReadTimeout), status(504)],
)
async def test_a_post_whose_answer_is_lost_is_outcome_unknown_and_never_retried(
    answer: object,
) -> None:
    recorder = Recorder(answer, ok({}))  # type: ignore[arg-type]
    async with _client(recorder) as client:
        with pytest.raises(UpstreamOutcomeUnknown) as caught:
            await client.send_json("POST", REQUEST, {"name": "k"}, CREDS)
    assert len(recorder.seen) == 1
    message, extensions = describe(caught.value) or ("", {})
    assert extensions == {"code": "UPSTREAM_OUTCOME_UNKNOWN"}
    assert "may or may not" in message


async def test_a_post_that_could_not_connect_was_not_done() -> None:
    recorder = Recorder(fail(httpx.ConnectError), ok({}))
    async with _client(recorder) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.send_json("POST", REQUEST, {}, CREDS)
    assert len(recorder.seen) == 1


async def test_a_post_past_the_deadline_is_outcome_unknown_with_one_call() -> None:
    arrived = 0

    class Slow(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal arrived
            arrived += 1
            await asyncio.sleep(5)
            return httpx.Response(200, json={})

    async with UpstreamClient(SETTINGS, transport=Slow()) as client:
        with pytest.raises(UpstreamOutcomeUnknown):
            await client.send_json("POST", REQUEST, {}, CREDS, deadline=Deadline.after(0.05))
        # A PUT under the same conditions is a plain deadline: it is safe to send again.
        with pytest.raises(DeadlineExceeded):
            await client.send_json("PUT", REQUEST, {}, CREDS, deadline=Deadline.after(0.05))
    assert arrived == 2


async def test_coders_400_keeps_its_validations() -> None:
    body = {
        "message": "Invalid AI spend limit.",
        "validations": [{"field": "spend_limit_micros", "detail": "Must not exceed 1."}],
    }
    async with _client(Recorder(status(400, body))) as client:
        with pytest.raises(UpstreamBadRequest) as caught:
            await client.send_json("PUT", REQUEST, {"spend_limit_micros": 2}, CREDS)
    message, extensions = describe(caught.value) or ("", {})
    assert message == "Invalid AI spend limit."
    assert extensions["code"] == "BAD_USER_INPUT"
    assert extensions["validations"] == body["validations"]


async def test_only_write_methods_are_sent() -> None:
    async with _client(Recorder(ok({}))) as client:
        with pytest.raises(ValueError, match="write method"):
            await client.send_json("GET", REQUEST, None, CREDS)


def test_write_routes_are_encoded_segments_with_bounded_metric_labels() -> None:
    override = user_ai_budget_override_request("a/b")
    assert override.path == "/api/v2/users/a%2Fb/ai/budget/override"
    assert endpoint_template(override.path) == "/api/v2/users/{user}/ai/budget/override"
    assert endpoint_template(REQUEST.path) == "/api/v2/groups/{group}/ai/budget"
    with pytest.raises(ValueError, match="dot segment"):
        group_ai_budget_request("..")
