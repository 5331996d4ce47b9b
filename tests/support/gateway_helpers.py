"""Helpers of the gateway integration tests: the real gateway on loopback in front of the real
stand-in, a counting transport, a REST client with the same token, and REST→GraphQL expectations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from aiohttp import ClientResponse, ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.capabilities import PROBE_USER_AGENT
from aibridge_graphql.upstream.client import UpstreamClient, pooled_transport

API = "/api/v2/aibridge"  # the REST ground truth's prefix (an alias in the ai-gateway era)
# What the gateway may call, by era (canonical first); call paths are recorded without it.
PREFIXES = ("/api/v2/ai-gateway", "/api/v2/aibridge")


def route(path: str) -> str:
    """An upstream path without its era's API prefix ("/sessions/x")."""
    for prefix in PREFIXES:
        if path.startswith(prefix + "/"):
            return path.removeprefix(prefix)
    return path


class CountingTransport(httpx.AsyncBaseTransport):
    """The gateway's own transport, recording the path and query of every upstream request."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.calls: list[str] = []
        self.probes: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        query = request.url.query.decode()
        if request.headers.get("User-Agent") == PROBE_USER_AGENT:
            # Capability probes (start-up, /readyz) are not the calls a query makes.
            self.probes.append(request.url.path)
            return await self._inner.handle_async_request(request)
        self.calls.append(route(request.url.path) + (f"?{query}" if query else ""))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Gateway:
    """A client of the gateway under test, and the upstream calls it made."""

    http: TestClient[web.Request, web.Application]
    transport: CountingTransport
    default_token: str | None = None
    bodies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def calls(self) -> list[str]:
        return self.transport.calls

    async def query(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        token = None if anonymous else (token or self.default_token)
        headers = {"Coder-Session-Token": token} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a query that must succeed."""
        body = await self.query(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@contextlib.asynccontextmanager
async def serve_gateway(
    upstream_url: str, token: str | None = None, **overrides: Any
) -> AsyncIterator[Gateway]:
    """The gateway app on an ephemeral 127.0.0.1 port in front of `upstream_url`."""
    settings = Settings(upstream_url=upstream_url, **overrides)
    transport = CountingTransport(pooled_transport(settings))
    client = UpstreamClient(settings, transport=transport)
    app = create_app(settings, client=client)
    try:
        # As `serve` runs it (server/serving.py): a client hanging up cancels its handler.
        server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
        async with TestClient(server) as http:
            yield Gateway(http, transport, default_token=token)
    finally:
        await client.aclose()


_SESSION = web.AppKey("faulty_proxy_session", ClientSession)


def faulty_proxy(
    upstream_url: str, faults: dict[str, tuple[int, dict[str, Any]]]
) -> web.Application:
    """A loopback hop to the stand-in that answers `faults[path]` (status, body) instead.

    It lets the real gateway meet upstream failures the stand-in never produces (403, 5xx)
    next to real answers, in one GraphQL request.
    """

    async def forward(request: web.Request) -> web.Response:
        path = route(request.path)
        if path in faults:
            status, body = faults[path]
            return web.json_response(body, status=status)
        headers = {k: v for k, v in request.headers.items() if k.lower() == "coder-session-token"}
        session = request.app[_SESSION]
        async with session.get(upstream_url + request.path_qs, headers=headers) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(), content_type=answer.content_type
            )

    async def client(app: web.Application) -> AsyncIterator[None]:
        async with ClientSession() as session:
            app[_SESSION] = session
            yield

    app = web.Application()
    app.cleanup_ctx.append(client)
    app.router.add_get("/{tail:.*}", forward)
    return app


@dataclass
class WriteFaults:
    """What `write_fault_proxy` does and saw: the first `resets` PUTs lose their connection,
    every POST is held `hold_post` seconds (past a deadline) and answered 201."""

    resets: int = 1
    hold_post: float = 3.0
    seen: list[tuple[str, str]] = field(default_factory=list)

    def count(self, method: str) -> int:
        return sum(1 for seen, _ in self.seen if seen == method)


def write_fault_proxy(upstream_url: str, faults: WriteFaults) -> web.Application:
    """A loopback hop to the stand-in for the writes' failures: a PUT whose connection drops
    before any answer (once it arrived whole), a POST whose answer comes too late; everything else
    (capability probes, reads, the PUT retried) is forwarded as it came."""

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        faults.seen.append((request.method, request.path))
        if request.method == "PUT" and faults.resets > 0:
            faults.resets -= 1
            assert request.transport is not None
            request.transport.close()  # the upstream got it all; the gateway gets no answer
            return web.Response(status=500)
        if request.method == "POST":
            await asyncio.sleep(faults.hold_post)
            return web.json_response({}, status=201)
        names = ("coder-session-token", "content-type", "accept", "user-agent")
        headers = {k: v for k, v in request.headers.items() if k.lower() in names}
        session = request.app[_SESSION]
        async with session.request(
            request.method, upstream_url + request.path_qs, headers=headers, data=body or None
        ) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(), headers=_content_type(answer)
            )

    async def client(app: web.Application) -> AsyncIterator[None]:
        async with ClientSession() as session:
            app[_SESSION] = session
            yield

    app = web.Application()
    app.cleanup_ctx.append(client)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def _content_type(answer: ClientResponse) -> dict[str, str]:
    found = answer.headers.get("Content-Type")
    return {} if found is None else {"Content-Type": found}


@contextlib.asynccontextmanager
async def rest_client(upstream_url: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A plain REST client of the stand-in with the caller's token (the ground truth)."""
    async with httpx.AsyncClient(
        base_url=upstream_url.rstrip("/") + API, headers={"Coder-Session-Token": token}
    ) as client:
        yield client


async def rest_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == 200, response.text
    return response.json()


# -- REST JSON → the GraphQL JSON the gateway must return for it ------------------------------


def when(value: str | None) -> datetime | None:
    """A time from either side, comparable (RFC 3339 with `Z` or an offset)."""
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def normalize_times(value: Any, keys: frozenset[str]) -> Any:
    """Parse the time fields (by GraphQL or REST name) anywhere in a JSON tree."""
    if isinstance(value, dict):
        return {k: when(v) if k in keys else normalize_times(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_times(item, keys) for item in value]
    return value


TIME_KEYS = frozenset({"startedAt", "endedAt", "lastActiveAt", "createdAt"})


def user(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": raw["id"],
        "username": raw["username"],
        "name": raw.get("name", ""),
        "avatarUrl": raw.get("avatar_url", ""),
    }


def summary(raw: dict[str, Any], *, with_metadata: bool) -> dict[str, Any]:
    return {
        "inputTokens": raw.get("input_tokens", 0),
        "outputTokens": raw.get("output_tokens", 0),
        "cacheReadInputTokens": raw.get("cache_read_input_tokens", 0),
        "cacheWriteInputTokens": raw.get("cache_write_input_tokens", 0),
        "metadata": raw.get("metadata", {}) if with_metadata else None,
    }


def session(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "sessionId": raw["id"],
        "client": raw.get("client"),
        "initiator": user(raw["initiator"]),
        "providers": raw["providers"],
        "models": raw["models"],
        "startedAt": raw["started_at"],
        "endedAt": raw.get("ended_at"),
        "lastActiveAt": raw.get("last_active_at"),
        "lastPrompt": raw.get("last_prompt"),
        "threadCount": raw["threads"],
        "tokenUsage": summary(raw["token_usage_summary"], with_metadata=False),
        "metadata": raw.get("metadata"),
    }


def tool_call(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "toolCallId": raw["id"],
        "interceptionId": raw["interception_id"],
        "providerResponseId": raw["provider_response_id"],
        "serverUrl": raw.get("server_url", ""),
        "tool": raw["tool"],
        "injected": raw["injected"],
        "input": raw["input"],
        "metadata": raw.get("metadata"),
        "createdAt": raw["created_at"],
    }


def thread(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "threadId": raw["id"],
        "prompt": raw.get("prompt"),
        "model": raw["model"],
        "provider": raw["provider"],
        "credentialKind": raw.get("credential_kind", ""),
        "credentialHint": raw.get("credential_hint", ""),
        "startedAt": raw["started_at"],
        "endedAt": raw.get("ended_at"),
        "tokenUsage": summary(raw["token_usage"], with_metadata=True),
        "agenticActions": [
            {
                "model": action["model"],
                "thinking": [thought["text"] for thought in action.get("thinking", [])],
                "tokenUsage": summary(action["token_usage"], with_metadata=True),
                "toolCalls": [tool_call(call) for call in action.get("tool_calls", [])],
            }
            for action in raw.get("agentic_actions", [])
        ],
    }


def interception(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "interceptionId": raw["id"],
        "apiKeyId": raw.get("api_key_id"),
        "client": raw.get("client"),
        "initiator": user(raw["initiator"]),
        "provider": raw["provider"],
        "providerName": raw.get("provider_name", ""),
        "model": raw["model"],
        "startedAt": raw["started_at"],
        "endedAt": raw.get("ended_at"),
        "metadata": raw.get("metadata"),
        "tokenUsages": [
            {
                "tokenUsageId": t["id"],
                "interceptionId": t["interception_id"],
                "providerResponseId": t["provider_response_id"],
                "inputTokens": t["input_tokens"],
                "outputTokens": t["output_tokens"],
                "cacheReadInputTokens": t.get("cache_read_input_tokens", 0),
                "cacheWriteInputTokens": t.get("cache_write_input_tokens", 0),
                "metadata": t.get("metadata"),
                "createdAt": t["created_at"],
            }
            for t in raw.get("token_usages", [])
        ],
        "userPrompts": [
            {
                "userPromptId": p["id"],
                "interceptionId": p["interception_id"],
                "providerResponseId": p["provider_response_id"],
                "prompt": p["prompt"],
                "metadata": p.get("metadata"),
                "createdAt": p["created_at"],
            }
            for p in raw.get("user_prompts", [])
        ],
        "toolUsages": [
            {
                "toolUsageId": u["id"],
                "interceptionId": u["interception_id"],
                "providerResponseId": u["provider_response_id"],
                "serverUrl": u.get("server_url", ""),
                "tool": u["tool"],
                "input": u["input"],
                "injected": u["injected"],
                "invocationError": u.get("invocation_error", ""),
                "metadata": u.get("metadata"),
                "createdAt": u["created_at"],
            }
            for u in raw.get("tool_usages", [])
        ],
    }


# Every field of every type (the expectations above name the same fields).
USER_FIELDS = "id username name avatarUrl"
SUMMARY_FIELDS = "inputTokens outputTokens cacheReadInputTokens cacheWriteInputTokens metadata"
SESSION_FIELDS = f"""sessionId client initiator {{ {USER_FIELDS} }} providers models startedAt
  endedAt lastActiveAt lastPrompt threadCount tokenUsage {{ {SUMMARY_FIELDS} }} metadata"""
THREAD_FIELDS = f"""threadId prompt model provider credentialKind credentialHint startedAt endedAt
  tokenUsage {{ {SUMMARY_FIELDS} }}
  agenticActions {{ model thinking tokenUsage {{ {SUMMARY_FIELDS} }}
    toolCalls {{ toolCallId interceptionId providerResponseId serverUrl tool injected input
      metadata createdAt }} }}"""
INTERCEPTION_FIELDS = f"""interceptionId apiKeyId client initiator {{ {USER_FIELDS} }} provider
  providerName model startedAt endedAt metadata
  tokenUsages {{ tokenUsageId interceptionId providerResponseId inputTokens outputTokens
    cacheReadInputTokens cacheWriteInputTokens metadata createdAt }}
  userPrompts {{ userPromptId interceptionId providerResponseId prompt metadata createdAt }}
  toolUsages {{ toolUsageId interceptionId providerResponseId serverUrl tool input injected
    invocationError metadata createdAt }}"""
