"""The gRPC face against the seeded stand-in, with grpcio's own client: data equal to REST's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from grpc_support import RunningGrpc


@pytest.fixture
def channel(face: RunningGrpc) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(face.address) as channel:
        yield channel


def rest(standin_url: str, token: str, path: str, **params: Any) -> Any:
    response = httpx.get(
        f"{standin_url}/api/v2/aibridge{path}",
        params=params,
        headers={"Coder-Session-Token": token},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def test_smoke(channel: grpc.Channel, tokens: dict[str, str], standin_url: str) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    md = (("coder-session-token", tokens["admin"]),)
    reply = stub.ListSessions(session_pb.ListSessionsRequest(page_size=5), metadata=md)
    expected = rest(standin_url, tokens["admin"], "/sessions", limit=5)
    assert [s.session_id for s in reply.sessions] == [s["id"] for s in expected["sessions"]]
    assert reply.total_size == expected["count"]
