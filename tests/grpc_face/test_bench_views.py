"""`make bench`'s gRPC views (bench/grpc_face.py) against its GraphQL views: for each view the gRPC
calls send the upstream exactly the requests the GraphQL query sends, and answer the same data."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web
from bench.gateway import graphql, pick_views
from bench.grpc_face import GrpcClient, graphql_digest, grpc_view

from aibridge_graphql.server.serving import build_gateway
from aibridge_graphql.upstream.client import UpstreamClient
from grpc_face.grpc_support import RecordingTransport, RunningGrpc, UpstreamCall, face_settings
from support.servers import run_app_in_thread

# The digest entry that must not be empty, so an equality of two empty answers cannot pass.
NONEMPTY = {
    "sessions dashboard": "sessions",
    "session detail": "threads",
    "interceptions table": "interceptions",
    "single resource (models)": "models",
}


@pytest.fixture(scope="module")
def graphql_face(standin_url: str) -> Iterator[tuple[str, list[UpstreamCall]]]:
    """The GraphQL face before the stand-in, recording its upstream requests."""
    calls: list[UpstreamCall] = []
    settings = face_settings(standin_url)

    def factory() -> web.Application:
        client = UpstreamClient(settings, transport=RecordingTransport(calls))
        app = build_gateway(settings, client=client)

        async def close(_: web.Application) -> None:
            await client.aclose()

        app.on_cleanup.append(close)
        return app

    with run_app_in_thread(factory) as url:
        yield url, calls


def test_bench_grpc_views_cost_and_answer_what_graphql_does(
    standin_url: str,
    tokens: dict[str, str],
    face: RunningGrpc,
    graphql_face: tuple[str, list[UpstreamCall]],
) -> None:
    graphql_url, graphql_calls = graphql_face
    token = tokens["admin"]
    auth = {"Coder-Session-Token": token}
    with (
        httpx.Client(base_url=standin_url, headers=auth, timeout=30) as rest,
        httpx.Client(base_url=graphql_url, headers=auth, timeout=30) as gateway,
        GrpcClient(face.address, token) as grpc_client,
    ):
        views = pick_views(rest)
        assert [v.name for v in views] == list(NONEMPTY)
        for view in views:
            twin = grpc_view(view.name, view.variables)
            before = len(graphql_calls)
            body = graphql(gateway, view)
            by_graphql = sorted(c.target for c in graphql_calls[before:])
            before = len(face.calls)
            digest = grpc_client.answer(twin)
            by_grpc = sorted(c.target for c in face.calls[before:])
            assert by_grpc == by_graphql, view.name
            assert digest == graphql_digest(view.name, body), view.name
            assert digest[NONEMPTY[view.name]], view.name
