"""Fixtures of the federation tests: our gateway and a teams subgraph on loopback, the supergraph
`@apollo/composition` builds from them, and Apollo Gateway and Hive Gateway serving it.

Everything is module-scoped: one composition, each gateway started once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import TOKEN_HEADER, UpstreamClient
from tests.support.federation import compose, install_node_modules, run_apollo_gateway
from tests.support.federation import run_hive_gateway as start_hive_gateway
from tests.support.servers import run_app_in_thread
from tests.support.teams_subgraph import Roster, TeamSpec
from tests.support.teams_subgraph import create_app as create_teams_app

GATEWAYS = ("apollo", "hive")


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One HTTP request our gateway sent upstream: its path and query, and the token it carried."""

    target: str
    token: str | None


class RecordingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that records every upstream request (for call and token checks)."""

    def __init__(self, calls: list[UpstreamCall]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._calls = calls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        self._calls.append(UpstreamCall(target, request.headers.get(TOKEN_HEADER)))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class GraphQLServer:
    """A GraphQL endpoint under test (a subgraph or a gateway)."""

    url: str
    # Of our gateway only: the requests it sent upstream, and the headers (lower-cased names) of
    # the GraphQL requests it received.
    calls: list[UpstreamCall] = field(default_factory=list)
    received: list[dict[str, str]] = field(default_factory=list)

    def post(
        self,
        query: str,
        token: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **variables: Any,
    ) -> dict[str, Any]:
        """POST a query (with the token as `Coder-Session-Token`, if any); the JSON body."""
        sent = {**({TOKEN_HEADER: token} if token else {}), **(headers or {})}
        response = httpx.post(
            self.url, json={"query": query, "variables": variables}, headers=sent, timeout=30
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(self, query: str, token: str, **variables: Any) -> dict[str, Any]:
        """The `data` of a query that must succeed."""
        body = self.post(query, token, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """tests/federation/node_modules, installed from the lock file when missing or stale."""
    return install_node_modules()


@pytest.fixture(scope="module")
def token(tokens: dict[str, str]) -> str:
    """The owner's token: it sees every user's AI Bridge data."""
    return tokens["admin"]


@pytest.fixture(scope="module")
def ours(standin_url: str) -> Iterator[GraphQLServer]:
    """Our gateway in front of the stand-in, recording what it receives and sends upstream."""
    server = GraphQLServer(url="")

    @web.middleware
    async def record_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        server.received.append({name.lower(): value for name, value in request.headers.items()})
        return await handler(request)

    def factory() -> web.Application:
        settings = Settings(upstream_url=standin_url)
        client = UpstreamClient(settings, transport=RecordingTransport(server.calls))
        app = create_app(settings, client=client, middlewares=[record_headers])

        async def close_client(_: web.Application) -> None:
            await client.aclose()

        app.on_cleanup.append(close_client)
        return app

    with run_app_in_thread(factory) as base:
        server.url = f"{base}/graphql"
        yield server


_ROSTER_DATA = """
query RosterData {
  sessions(first: 6) { nodes { id initiator { id } } }
  interceptions(first: 2) { nodes { id } }
}
"""


@pytest.fixture(scope="module")
def roster(ours: GraphQLServer, token: str) -> Roster:
    """Two teams of the stand-in's users, with pins, taken from what our gateway lists."""
    data = ours.data(_ROSTER_DATA, token)
    sessions = data["sessions"]["nodes"]
    users = list(dict.fromkeys(node["initiator"]["id"] for node in sessions))
    assert len(users) >= 2, "the seeded stand-in should have sessions of several users"
    return Roster(
        [
            TeamSpec(
                "platform",
                users[:1],
                pinned_session_ids=[sessions[0]["id"]],
                pinned_interception_ids=[node["id"] for node in data["interceptions"]["nodes"]],
            ),
            TeamSpec("research", users[1:], pinned_session_ids=[s["id"] for s in sessions[1:3]]),
        ]
    )


@pytest.fixture(scope="module")
def teams(roster: Roster) -> Iterator[GraphQLServer]:
    """The second subgraph, serving the roster."""
    with run_app_in_thread(lambda: create_teams_app(roster)) as base:
        yield GraphQLServer(url=f"{base}/graphql")


@pytest.fixture(scope="module")
def subgraphs(ours: GraphQLServer, teams: GraphQLServer) -> dict[str, str]:
    """The subgraphs to compose: name → routing URL."""
    return {"aibridge": ours.url, "teams": teams.url}


@pytest.fixture(scope="module")
def supergraph(node_modules: Path, subgraphs: dict[str, str], tmp_path_factory: Any) -> Path:
    """The supergraph composed from both running subgraphs' `_service { sdl }`."""
    path: Path = tmp_path_factory.mktemp("federation") / "supergraph.graphql"
    compose(subgraphs, path)
    return path


@pytest.fixture(scope="module")
def apollo_gateway(supergraph: Path) -> Iterator[GraphQLServer]:
    """Apollo Gateway + Apollo Server serving the supergraph."""
    with run_apollo_gateway(supergraph, supergraph.with_name("apollo.log")) as url:
        yield GraphQLServer(url=url)


@pytest.fixture(scope="module")
def hive_gateway(supergraph: Path) -> Iterator[GraphQLServer]:
    """Hive Gateway serving the supergraph."""
    with start_hive_gateway(supergraph, supergraph.with_name("hive.log")) as url:
        yield GraphQLServer(url=url)


@pytest.fixture(scope="module", params=GATEWAYS)
def gateway(request: pytest.FixtureRequest) -> GraphQLServer:
    """Each federation gateway in turn (each started once per module)."""
    server: GraphQLServer = request.getfixturevalue(f"{request.param}_gateway")
    return server
