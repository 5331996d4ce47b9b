"""A small in-memory AI Bridge upstream (httpx transport) for the gateway's unit tests.

It speaks the contract's shapes and cursor rules (including the `before_id` quirk) for data the
test builds, counts every request, and can be told to fail a path with a status or an exception.
The real stand-in is used by the integration tests; this fake makes edge cases cheap (sessions
with hundreds of threads, 403/5xx/timeouts, exact call counts).

`era` switches the API it speaks (docs/upstream.md): `sessions` serves only
`/api/v2/aibridge` with `GET /interceptions`; `ai-gateway` serves both prefixes, `GET /providers`
and no `/interceptions`. Whatever is not a management route falls through to a data-plane
stand-in answering as Coder's LLM proxy does (a plain-text 400 without an API key).
`unlicensed` answers Coder's licence 403 on every route, before authentication. Capability
probes (their User-Agent) are recorded in `probes`, not `calls`, and never fail on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, unquote

import httpx
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.capabilities import PROBE_USER_AGENT
from aibridge_graphql.upstream.client import UpstreamClient

BASE = "/api/v2/aibridge"
GATEWAY_BASE = "/api/v2/ai-gateway"
Era = Literal["sessions", "ai-gateway"]
PREMIUM = {
    "sessions": "AI Bridge is a Premium feature. Contact sales!",
    "ai-gateway": "AI Gateway is a Premium feature. Contact sales!",
}
_MANAGEMENT = {
    "sessions": ("/sessions", "/interceptions", "/models", "/clients"),
    "ai-gateway": ("/sessions", "/models", "/clients", "/providers"),
}
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
TOKENS = {"admin-token": "admin", "member-token": "member", "other-token": "other"}
_Q_TERM = re.compile(r'(\w+):(?:"((?:[^"\\]|\\.)*)"|(\S+))')


def chi_param(raw: str) -> str:
    """A path parameter as Coder's router sees it: Go keeps `RawPath` (and chi routes on it,
    undecoded) only when the raw path differs from Go's default encoding of the decoded one."""
    decoded = unquote(raw)
    return decoded if quote(decoded, safe="$&+,/:;=@") == raw else raw


def ts(seconds: float) -> str:
    """An RFC 3339 time `seconds` after the fake's epoch."""
    return (EPOCH + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def user(name: str) -> dict[str, Any]:
    """A MinimalUser with a stable UUID derived from the name."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
        "username": name,
        "name": name.title(),
        "avatar_url": f"https://avatars.example/{name}.png",
    }


def usage(n: int) -> dict[str, Any]:
    return {
        "input_tokens": n,
        "output_tokens": 2 * n,
        "cache_read_input_tokens": 3 * n,
        "cache_write_input_tokens": 4 * n,
        "metadata": {"cache_read_input": n},
    }


def thread(session_id: str, index: int) -> dict[str, Any]:
    """A thread with one agentic action."""
    thread_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{session_id}/{index}"))
    call = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{thread_id}/call")),
        "interception_id": thread_id,
        "provider_response_id": f"resp-{index}",
        "server_url": "",
        "tool": "read_file",
        "injected": False,
        "input": '{"path": "a.py"}',
        "metadata": {},
        "created_at": ts(index + 0.5),
    }
    return {
        "id": thread_id,
        "prompt": f"prompt {index}",
        "model": "claude-sonnet-4",
        "provider": "anthropic",
        "credential_kind": "centralized",
        "credential_hint": "sk-a...efgh",
        "started_at": ts(index),
        "ended_at": ts(index + 1),
        "token_usage": usage(index),
        "agentic_actions": [
            {
                "model": "claude-sonnet-4",
                "token_usage": usage(index),
                "thinking": [{"text": f"thinking {index}"}],
                "tool_calls": [call],
            }
        ],
    }


def interception(owner: dict[str, Any], index: int) -> dict[str, Any]:
    interception_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{owner['username']}/i/{index}"))
    return {
        "id": interception_id,
        "api_key_id": "key-1",
        "initiator": owner,
        "provider": "openai",
        "provider_name": "openai",
        "model": "gpt-4.1",
        "client": "Codex",
        "metadata": {"n": index},
        "started_at": ts(10_000 - index),
        "ended_at": ts(10_000 - index + 1),
        "token_usages": [],
        "user_prompts": [],
        "tool_usages": [],
    }


@dataclass
class FakeSession:
    """One session of the fake: its list item and its threads."""

    session_id: str
    owner: dict[str, Any]
    threads: list[dict[str, Any]]
    last_active: float
    # AI Gateway era: the agent firewall's logs (None: not in use, fields omitted).
    network: list[dict[str, Any]] | None = None

    def network_fields(self, *, detail: bool) -> dict[str, Any]:
        """The session's network fields as Coder sends them (none without the firewall)."""
        if self.network is None:
            return {}
        blocked = sum(1 for call in self.network if not call["allowed"])
        out: dict[str, Any] = {"network_calls": {"total": len(self.network), "blocked": blocked}}
        if detail:
            domains = sorted({call["detail"].split("/")[2] for call in self.network})
            out["network_call_logs"] = self.network[:1000]
            out["network_top_domains"] = [{"domain": domains[0], "count": len(self.network)}]
            out["network_domain_count"] = len(domains)
        return out

    def item(self) -> dict[str, Any]:
        return {
            "id": self.session_id,
            "initiator": self.owner,
            "providers": ["anthropic"],
            "models": ["claude-sonnet-4"],
            "client": "Claude Code",
            "metadata": {"repo": self.session_id},
            "started_at": ts(0),
            "ended_at": ts(len(self.threads) + 1),
            "threads": len(self.threads),
            "token_usage_summary": {
                k: v for k, v in usage(len(self.threads)).items() if k != "metadata"
            },
            "last_prompt": "last",
            "last_active_at": ts(self.last_active),
            **self.network_fields(detail=False),
        }


Failure = int | Exception


@dataclass
class FakeUpstream:
    """The fake API; `calls` lists every request path+query it served (or failed)."""

    sessions: list[FakeSession] = field(default_factory=list)
    interceptions: list[dict[str, Any]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    era: Era = "sessions"
    unlicensed: bool = False
    # `GET /providers`: objects (after coder/coder#28966) or bare names (the generated docs).
    provider_names_only: bool = False
    failures: dict[str, Failure] = field(default_factory=dict)
    delay: float = 0.0
    calls: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    tokens_seen: list[str | None] = field(default_factory=list)
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(self.handle)

    def calls_to(self, prefix: str) -> list[str]:
        return [call for call in self.calls if call.startswith(prefix)]

    def _prefix(self, path: str) -> str | None:
        for prefix in (BASE, GATEWAY_BASE):
            if path.startswith(prefix + "/"):
                return None if prefix == GATEWAY_BASE and self.era == "sessions" else prefix
        return None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        # The raw (still-encoded) path, as Coder's router matches it.
        raw_path = request.url.raw_path.decode().partition("?")[0]
        probe = request.headers.get("User-Agent") == PROBE_USER_AGENT
        if probe:
            self.probes.append(raw_path)
        prefix = self._prefix(raw_path)
        if prefix is None:
            return httpx.Response(404, json={"message": "Route not found."})
        path = raw_path.removeprefix(prefix)
        record = path + ("?" + request.url.query.decode() if request.url.query else "")
        if probe:
            return self._gate(path, request) or httpx.Response(200, json={})
        self.calls.append(record)
        token = request.headers.get("Coder-Session-Token")
        self.tokens_seen.append(token)
        self.headers_seen.append(dict(request.headers))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self._route(path, request, token)
        finally:
            self.in_flight -= 1

    def _gate(self, path: str, request: httpx.Request) -> httpx.Response | None:
        """The licence check, the data plane and authentication, in Coder's order."""
        if self.unlicensed:
            return httpx.Response(403, json={"message": PREMIUM[self.era]})
        if not path.startswith(_MANAGEMENT[self.era]):
            # The LLM proxy reads `Authorization`/`X-Api-Key` only, and answers plain text.
            if not (request.headers.get("Authorization") or request.headers.get("X-Api-Key")):
                return httpx.Response(400, text="no authentication key provided\n")
            return httpx.Response(404, text="404 page not found\n")
        if request.headers.get("Coder-Session-Token") not in TOKENS:
            return httpx.Response(401, json={"message": "You are signed out."})
        return None

    def _route(self, path: str, request: httpx.Request, token: str | None) -> httpx.Response:
        if self.unlicensed or not path.startswith(_MANAGEMENT[self.era]):
            gate = self._gate(path, request)
            assert gate is not None
            return gate
        for prefix, failure in self.failures.items():
            if path.startswith(prefix):
                if isinstance(failure, Exception):
                    raise failure
                return httpx.Response(failure, json={"message": f"fake {failure}"})
        if token not in TOKENS:
            return httpx.Response(401, json={"message": "You are signed out."})
        params = request.url.params
        visible = TOKENS[token] == "admin"
        handlers: list[tuple[str, Callable[[], httpx.Response]]] = [
            (
                "/sessions/",
                lambda: self._threads(chi_param(path.removeprefix("/sessions/")), params, visible),
            ),
            ("/sessions", lambda: self._sessions(params, visible)),
            ("/interceptions", lambda: self._interceptions(params, visible)),
            ("/models", lambda: self._strings(self.models, params, visible)),
            ("/clients", lambda: self._strings(["Claude Code", "Codex"], params, visible)),
            ("/providers", lambda: self._providers(visible)),
        ]
        for prefix, handler in handlers:
            if path.startswith(prefix):
                return handler()
        return httpx.Response(404, json={"message": "Route not found."})

    @staticmethod
    def _q(params: httpx.QueryParams) -> dict[str, str]:
        return {
            m[1]: m[2] if m[2] is not None else m[3] for m in _Q_TERM.finditer(params.get("q", ""))
        }

    def _sessions(self, params: httpx.QueryParams, visible: bool) -> httpx.Response:
        q = self._q(params)
        rows = sorted(self.sessions, key=lambda s: (s.last_active, s.session_id), reverse=True)
        rows = [s for s in rows if visible]
        if "session_id" in q:
            rows = [s for s in rows if s.session_id == q["session_id"]]
        if "initiator" in q:
            rows = [s for s in rows if q["initiator"] in (s.owner["id"], s.owner["username"])]
        count = len(rows)
        after = params.get("after_session_id")
        if after:
            ids = [s.session_id for s in rows]
            if after not in ids:
                return httpx.Response(400, json={"message": "Query parameter has invalid value."})
            rows = rows[ids.index(after) + 1 :]
        limit = int(params.get("limit") or 100)
        return httpx.Response(
            200, json={"count": count, "sessions": [s.item() for s in rows[:limit]]}
        )

    def _providers(self, visible: bool) -> httpx.Response:
        if not visible:
            return httpx.Response(
                404,
                json={"message": "Resource not found or you do not have access to this resource"},
            )
        objects = [
            {
                "name": "anthropic",
                "type": "anthropic",
                "display_name": "Anthropic",
                "icon": "/icon/claude.svg",
            },
            {"name": "bedrock", "type": "anthropic", "display_name": "AWS Bedrock", "icon": ""},
            {
                "name": "openai",
                "type": "openai",
                "display_name": "OpenAI",
                "icon": "/icon/openai.svg",
            },
        ]
        if self.provider_names_only:
            return httpx.Response(200, json=[p["name"] for p in objects])
        return httpx.Response(200, json=objects)

    def _threads(self, session_id: str, params: httpx.QueryParams, visible: bool) -> httpx.Response:
        found = [s for s in self.sessions if s.session_id == session_id and visible]
        if not found:
            return httpx.Response(404, json={"message": "Session not found."})
        session = found[0]
        threads = session.threads
        ids = [t["id"] for t in threads]
        limit = int(params.get("limit") or 50)
        if not 1 <= limit <= 200:
            return httpx.Response(400, json={"message": "Invalid limit query parameter."})
        if after := params.get("after_id"):
            threads = threads[ids.index(after) + 1 :]
        if before := params.get("before_id"):
            # The upstream quirk: the first N threads before the cursor, from the session start.
            threads = threads[: ids.index(before)]
        body = {k: v for k, v in session.item().items() if k not in ("threads", "last_prompt")}
        body["token_usage_summary"] = usage(len(session.threads))
        body["threads"] = threads[:limit]
        body.update(session.network_fields(detail=True))
        return httpx.Response(200, json=body)

    def _interceptions(self, params: httpx.QueryParams, visible: bool) -> httpx.Response:
        q = self._q(params)
        rows = [i for i in self.interceptions if visible]
        if "initiator" in q:
            rows = [
                i
                for i in rows
                if q["initiator"] in (i["initiator"]["id"], i["initiator"]["username"])
            ]
        if "started_after" in q:
            rows = [i for i in rows if _when(i["started_at"]) >= _when(q["started_after"])]
        if "started_before" in q:
            rows = [i for i in rows if _when(i["started_at"]) <= _when(q["started_before"])]
        count = len(rows)
        if after := params.get("after_id"):
            ids = [i["id"] for i in rows]
            rows = rows[ids.index(after) + 1 :]
        limit = int(params.get("limit") or 100)
        return httpx.Response(200, json={"count": count, "results": rows[:limit]})

    @staticmethod
    def _strings(values: list[str], params: httpx.QueryParams, visible: bool) -> httpx.Response:
        raw = params.get("q", "")
        terms = FakeUpstream._q(params)
        prefix = next(iter(terms.values())) if terms else raw.strip('"')
        rows = [v for v in values if v.startswith(prefix) and visible]
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        return httpx.Response(200, json=rows[offset : offset + limit])


def network_calls(session_id: str, count: int) -> list[dict[str, Any]]:
    """`count` agent-firewall logs; every third one blocked."""
    firewall_session = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{session_id}/firewall"))
    return [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{session_id}/net/{n}")),
            "session_id": firewall_session,
            "sequence_number": n,
            "captured_at": ts(n),
            "created_at": ts(n + 0.1),
            "proto": "https",
            "method": "GET",
            "detail": f"https://{'pypi.org' if n % 2 else 'github.com'}/path/{n}",
            "allowed": n % 3 != 2,
            "matched_rule": None if n % 3 != 2 else "deny-all",
        }
        for n in range(count)
    ]


def populated(
    sessions: int = 25, threads: int = 5, interceptions: int = 30, *, era: Era = "sessions"
) -> FakeUpstream:
    """A fake with `sessions` sessions of `threads` threads each, by two users.

    In the `ai-gateway` era even sessions have firewall network calls and every second thread
    of a session ended with an error; the sessions era has neither (nor interceptions there).
    """
    alice, bob = user("alice"), user("bob")
    fake = FakeUpstream(models=[f"model-{i:04d}" for i in range(3)], era=era)
    for index in range(sessions):
        session_id = f"session-{index:03d}"
        rows = [thread(session_id, t) for t in range(threads)]
        network = None
        if era == "ai-gateway":
            network = network_calls(session_id, 3 + index) if index % 2 == 0 else None
            for t, row in enumerate(rows):
                if network is not None:
                    row["agent_firewall_session_id"] = network[0]["session_id"]
                    row["agent_firewall_sequence_number"] = t
                if t % 2 == 1:
                    row["error_type"] = "upstream_error"
                    row["error_message"] = f"overloaded {t}"
        fake.sessions.append(
            FakeSession(
                session_id=session_id,
                owner=alice if index % 2 == 0 else bob,
                threads=rows,
                last_active=float(index),
                network=network,
            )
        )
    if era == "sessions":
        fake.interceptions = [
            interception(alice if i % 2 else bob, i) for i in range(interceptions)
        ]
    return fake


@contextlib.asynccontextmanager
async def gateway(fake: FakeUpstream, settings: Settings | None = None) -> AsyncIterator[Gateway]:
    """The real gateway app on an ephemeral loopback port, in front of `fake`."""
    settings = settings or Settings(upstream_url="http://upstream.invalid", retries=0)
    client = UpstreamClient(settings, transport=fake.transport())
    app = create_app(settings, client=client)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as http:
            yield Gateway(http)
    finally:
        await client.aclose()


@dataclass
class Gateway:
    """A test client of the gateway that posts GraphQL."""

    http: TestClient[web.Request, web.Application]

    async def query(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = "admin-token",  # noqa: S107 (a fake token of the fake upstream)
    ) -> dict[str, Any]:
        headers = {"Coder-Session-Token": token} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body
