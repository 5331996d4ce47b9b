"""The pooled upstream client over a mock transport: headers, retries, error mapping, ping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.client import Credentials, UpstreamClient
from aibridge_graphql.upstream.errors import (
    UpstreamBadRequest,
    UpstreamError,
    UpstreamForbidden,
    UpstreamHTTPError,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamServerError,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from aibridge_graphql.upstream.requests import UpstreamRequest, models_request, sessions_request

TOKEN = "secret-token-abc"
CREDS = Credentials(TOKEN)
SETTINGS = Settings(upstream_url="http://upstream.test:9000", retries=2, retry_backoff=0)
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A mock upstream: answers from a script of handlers and keeps every request it saw."""

    def __init__(self, *script: Handler) -> None:
        self.script = list(script)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        handler = self.script[min(len(self.seen), len(self.script)) - 1]
        return handler(request)


def client_for(recorder: Recorder, settings: Settings = SETTINGS, **kwargs: Any) -> UpstreamClient:
    return UpstreamClient(settings, transport=httpx.MockTransport(recorder), **kwargs)


def ok(body: Any) -> Handler:
    return lambda request: httpx.Response(200, json=body)


def status(code: int, body: Any = None) -> Handler:
    return lambda request: httpx.Response(code, json=body)


def fail(exc: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return handler


async def test_sends_the_token_header_and_nothing_of_the_caller_else() -> None:
    recorder = Recorder(ok(["gpt-4"]))
    async with client_for(recorder) as client:
        body = await client.get_json(models_request("gpt", limit=5), CREDS)
    assert body == ["gpt-4"]
    (sent,) = recorder.seen
    assert sent.url.host == "upstream.test"
    assert sent.url.path == "/api/v2/ai-gateway/models"
    assert dict(sent.url.params) == {"limit": "5", "q": 'model:"gpt"'}
    assert sent.headers["Coder-Session-Token"] == TOKEN
    assert sent.headers["host"] == "upstream.test:9000"
    assert "authorization" not in sent.headers
    assert "cookie" not in sent.headers


async def test_typed_helpers_parse_models() -> None:
    recorder = Recorder(ok({"count": 0, "sessions": []}), ok(["a", "b"]))
    async with client_for(recorder) as client:
        sessions = await client.get_model(
            sessions_request(None, limit=1), CREDS, m.ListSessionsResponse
        )
        strings = await client.list_strings(models_request(None, limit=1), CREDS)
    assert sessions == m.ListSessionsResponse(count=0, sessions=[])
    assert strings == ["a", "b"]


async def test_a_body_of_the_wrong_shape_is_a_protocol_error_without_the_body() -> None:
    recorder = Recorder(ok({"count": "many", "secret": "leaky"}))
    async with client_for(recorder) as client:
        with pytest.raises(UpstreamProtocolError) as info:
            await client.get_model(sessions_request(None, limit=1), CREDS, m.ListSessionsResponse)
    assert "leaky" not in str(info.value)
    assert "ListSessionsResponse" in str(info.value)


@pytest.mark.parametrize(
    "first",
    [fail(httpx.ConnectError), fail(httpx.RemoteProtocolError), status(503), status(502)],
)
async def test_transient_failure_then_success_is_retried(first: Handler) -> None:
    recorder = Recorder(first, ok([]))
    async with client_for(recorder) as client:
        assert await client.list_strings(models_request(None, limit=1), CREDS) == []
    assert len(recorder.seen) == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [(status(500, {"message": "x"}), UpstreamServerError), (status(400), UpstreamBadRequest)],
)
async def test_500_and_400_are_not_retried(answer: Handler, error: type[Exception]) -> None:
    recorder = Recorder(answer, ok([]))
    async with client_for(recorder) as client:
        with pytest.raises(error):
            await client.get_json(models_request(None, limit=1), CREDS)
    assert len(recorder.seen) == 1


@pytest.mark.parametrize("answer", [status(504), fail(httpx.ConnectError)])
async def test_exhausted_retries_are_unavailable_after_bounded_attempts(answer: Handler) -> None:
    recorder = Recorder(answer)
    observed: list[int | None] = []
    async with client_for(recorder, on_response=lambda r, s, t: observed.append(s)) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.get_json(models_request(None, limit=1), CREDS)
    assert len(recorder.seen) == SETTINGS.retries + 1
    assert len(observed) == SETTINGS.retries + 1


async def test_read_timeout_is_not_retried() -> None:
    recorder = Recorder(fail(httpx.ReadTimeout), ok([]))
    async with client_for(recorder) as client:
        with pytest.raises(UpstreamUnavailable, match="timed out"):
            await client.get_json(models_request(None, limit=1), CREDS)
    assert len(recorder.seen) == 1


async def test_no_retries_when_disabled() -> None:
    recorder = Recorder(status(503), ok([]))
    settings = Settings(upstream_url="http://upstream.test", retries=0)
    async with client_for(recorder, settings) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.get_json(models_request(None, limit=1), CREDS)
    assert len(recorder.seen) == 1


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, UpstreamBadRequest),
        (401, UpstreamUnauthorized),
        (403, UpstreamForbidden),
        (404, UpstreamNotFound),
        (409, UpstreamHTTPError),
        (500, UpstreamServerError),
    ],
)
async def test_error_statuses_map_to_types_and_keep_coder_body(
    code: int, error: type[UpstreamHTTPError]
) -> None:
    body = {
        "message": "Invalid session search query.",
        "detail": "more",
        "validations": [{"field": "q", "detail": "no search key specified"}],
    }
    recorder = Recorder(status(code, body))
    async with client_for(recorder) as client:
        with pytest.raises(error) as info:
            await client.get_json(sessions_request(None, limit=1), CREDS)
    exc = info.value
    assert type(exc) is error
    assert (exc.status, exc.message, exc.detail) == (code, body["message"], "more")
    assert exc.validations == [m.ValidationError(field="q", detail="no search key specified")]


async def test_a_non_coder_error_body_maps_by_status_with_a_generic_message() -> None:
    recorder = Recorder(lambda request: httpx.Response(403, text="<html>nope</html>"))
    async with client_for(recorder) as client:
        with pytest.raises(UpstreamForbidden) as info:
            await client.get_json(sessions_request(None, limit=1), CREDS)
    assert info.value.message == "Upstream responded with HTTP 403."
    assert info.value.validations == []


@pytest.mark.parametrize(
    "answer",
    [
        status(400, {"message": "bad"}),
        status(503),
        fail(httpx.ConnectError),
        fail(httpx.ReadTimeout),
        ok({"count": 1}),
        lambda request: httpx.Response(200, text="not json"),
    ],
)
async def test_no_error_text_mentions_url_query_or_token(answer: Handler) -> None:
    recorder = Recorder(answer)
    request = sessions_request(None, limit=1, after_session_id="cursor-xyz")
    async with client_for(recorder) as client:
        with pytest.raises(UpstreamError) as info:
            await client.get_model(request, CREDS, m.ListSessionsResponse)
    for text in (str(info.value), repr(info.value)):
        for secret in (TOKEN, "upstream.test", "cursor-xyz", "http://"):
            assert secret not in text
    assert info.value.__cause__ is None


async def test_a_redirect_is_not_followed_so_the_token_stays_home() -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://evil.test/steal"})

    recorder = Recorder(redirect, ok([]))
    async with client_for(recorder) as client:
        with pytest.raises(UpstreamHTTPError) as info:
            await client.get_json(models_request(None, limit=1), CREDS)
    assert info.value.status == 302
    assert [r.url.host for r in recorder.seen] == ["upstream.test"]


async def test_missing_credentials_send_no_token() -> None:
    recorder = Recorder(status(401, {"message": "You must be logged in."}))
    async with client_for(recorder) as client:
        with pytest.raises(UpstreamUnauthorized):
            await client.get_json(models_request(None, limit=1), None)
    assert "coder-session-token" not in recorder.seen[0].headers


@pytest.mark.parametrize(
    ("answer", "ready"),
    [
        (status(401, {"message": "You must be logged in."}), True),
        (ok([]), True),
        (status(404), True),
        (status(500), False),
        (status(503), False),
        (fail(httpx.ConnectError), False),
        (fail(httpx.ReadTimeout), False),
    ],
)
async def test_ping(answer: Handler, ready: bool) -> None:
    recorder = Recorder(answer)
    async with client_for(recorder) as client:
        assert await client.ping() is ready
    (sent,) = recorder.seen
    assert sent.url.path == "/api/v2/ai-gateway/models"
    assert "coder-session-token" not in sent.headers


async def test_on_response_reports_each_attempt() -> None:
    calls: list[tuple[UpstreamRequest, int | None]] = []
    recorder = Recorder(fail(httpx.ConnectError), status(503), ok([]))
    request = models_request(None, limit=1)
    async with client_for(recorder, on_response=lambda r, s, t: calls.append((r, s))) as client:
        await client.get_json(request, CREDS)
    assert calls == [(request, None), (request, 503), (request, 200)]


async def test_pool_uses_settings() -> None:
    settings = Settings(
        upstream_url="https://coder.example.com/",
        connect_timeout=1.5,
        read_timeout=7,
        pool_timeout=2,
    )
    async with UpstreamClient(settings) as client:
        http = client.http
        assert str(http.base_url) == "https://coder.example.com/api/v2/ai-gateway/"
        assert http.timeout == httpx.Timeout(connect=1.5, read=7, write=7, pool=2)
        assert http.follow_redirects is False
        assert http.trust_env is False


def test_credentials_hide_the_token() -> None:
    assert TOKEN not in repr(CREDS)
    assert TOKEN not in str(CREDS)
    assert TOKEN not in f"{[CREDS]}"


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"Coder-Session-Token": "a"}, "a"),
        ({"coder-session-token": "a", "Authorization": "Bearer b"}, "a"),
        ({"AUTHORIZATION": "bearer b"}, "b"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"Authorization": "Bearer"}, None),
        ({"Authorization": "Bearer a b"}, None),
        ({"Cookie": "coder_session_token=c"}, None),
        ({}, None),
    ],
)
def test_credentials_from_headers(headers: dict[str, str], token: str | None) -> None:
    creds = Credentials.from_headers(headers)
    assert (creds.token if creds else None) == token
