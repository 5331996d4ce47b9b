"""The gateway with its observability on a loopback port, over the fake upstream (OBS tests)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.parser import text_string_to_metric_families

from aibridge_graphql.server.app import SetupHook, create_app
from aibridge_graphql.server.observability import Observability
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient
from tests.support.gateway_fakes import FakeUpstream, populated

TOKEN = "admin-token"
DASHBOARD = (
    "query Dashboard($first: Int!) { sessions(first: $first) "
    "{ edges { node { id threads(first: 2) { edges { node { id } } } } } } }"
)


def settings(**overrides: Any) -> Settings:
    """Settings for a gateway in front of the fake upstream, without retries."""
    return Settings(upstream_url="http://upstream.invalid", retries=0, **overrides)


@dataclass
class ObservedGateway:
    """A test client of the gateway, the fake behind it and the app's observability."""

    http: TestClient[web.Request, web.Application]
    fake: FakeUpstream
    observability: Observability

    async def post(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], CIMultiDict[str]]:
        """POST a GraphQL request with the admin token; (status, JSON body, headers)."""
        response = await self.http.post(
            "/graphql", json=body, headers={"Coder-Session-Token": TOKEN, **(headers or {})}
        )
        return response.status, await response.json(), CIMultiDict(response.headers)

    async def get(
        self, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], CIMultiDict[str]]:
        """GET a GraphQL request the way Apollo Client does (JSON-encoded params, Accept */*)."""
        encoded = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in params.items()
        }
        response = await self.http.get(
            "/graphql",
            params=encoded,
            headers={"Coder-Session-Token": TOKEN, "Accept": "*/*", **(headers or {})},
        )
        return response.status, await response.json(), CIMultiDict(response.headers)

    async def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """GET /metrics over HTTP and parse it: {(sample name, sorted labels): value}."""
        response = await self.http.get("/metrics")
        assert response.status == 200
        return parse_metrics(await response.text())


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a Prometheus text exposition, keyed by name and sorted labels."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    """One sample's value, or None when absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


@contextlib.asynccontextmanager
async def observed_gateway(
    *,
    fake: FakeUpstream | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    tracer_provider: TracerProvider | None = None,
    setup: Sequence[SetupHook] = (),
    **overrides: Any,
) -> AsyncIterator[ObservedGateway]:
    """The real gateway app on an ephemeral loopback port, with its own `Observability`."""
    fake = fake or populated()
    config = settings(**overrides)
    client = UpstreamClient(config, transport=transport or fake.transport())
    observability = Observability(config, tracer_provider=tracer_provider)
    app = create_app(config, client=client, observability=observability, setup=setup)
    try:
        server = TestServer(app, host="127.0.0.1")
        # No aiohttp access log, as `serve` runs it (it would log GET query strings).
        await server.start_server(access_log=None)
        async with TestClient(server) as http:
            yield ObservedGateway(http, fake, observability)
    finally:
        await client.aclose()
