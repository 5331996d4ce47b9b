"""The response cache through the gRPC face: the same cache as GraphQL's (core/cache.py), and
`cache-control` metadata opting a call out."""

from __future__ import annotations

import grpc

from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from tests.support.grpc_face import face_settings, run_grpc_in_thread


def test_grpc_calls_hit_the_cache_and_metadata_bypasses_it(
    standin_url: str, tokens: dict[str, str]
) -> None:
    settings = face_settings(
        standin_url,
        cache_enabled=True,
        cache_secret="grpc-test-secret",
        cache_ttl_sessions=600.0,  # nothing expires on the wall clock during the test
    )
    token = (("coder-session-token", tokens["admin"]),)
    request = session_pb.ListSessionsRequest(page_size=5)
    with run_grpc_in_thread(settings) as face, grpc.insecure_channel(face.address) as channel:
        stub = session_grpc.SessionServiceStub(channel)
        first = stub.ListSessions(request, metadata=token)
        cold = len(face.calls)
        assert cold > 0
        assert stub.ListSessions(request, metadata=token) == first
        assert len(face.calls) == cold  # served from the cache
        bypass = (*token, ("cache-control", "no-cache"))
        assert stub.ListSessions(request, metadata=bypass) == first
        assert len(face.calls) == 2 * cold
        # Another caller's identical call is its own entry: it goes upstream with its own token.
        stub.ListSessions(request, metadata=(("coder-session-token", tokens["alice"]),))
        assert len(face.calls) == 3 * cold
        assert {call.token for call in face.calls[2 * cold :]} == {tokens["alice"]}
        hits = face.metrics.registry.get_sample_value(
            "aibridge_response_cache_requests_total", {"endpoint": "/sessions", "result": "hit"}
        )
        assert hits is not None
        assert hits >= 1
