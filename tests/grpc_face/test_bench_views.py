"""`make bench`'s gRPC views (bench/grpc_face.py) against its GraphQL views: for each view the gRPC
calls send the upstream exactly the requests the GraphQL query sends, and answer the same data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from aiohttp import web
from google.protobuf.field_mask_pb2 import FieldMask

from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2 as catalog_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2_grpc as catalog_grpc
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from aibridge_graphql.server.serving import build_gateway
from aibridge_graphql.standin.eras import ApiEra
from aibridge_graphql.upstream.client import UpstreamClient
from bench.gateway import graphql, pick_views
from bench.grpc_face import GrpcClient, graphql_digest, grpc_view
from tests.support.grpc_face import RecordingTransport, RunningGrpc, UpstreamCall, face_settings
from tests.support.servers import run_app_in_thread

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
        client = UpstreamClient(settings, transport=RecordingTransport(settings, calls))
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
    api_era: ApiEra,
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
        # Today's Coder has no interceptions: the view is left out (ListInterceptions is
        # UNIMPLEMENTED there with no upstream call, see test_grpc_face.py).
        assert [v.name for v in views] == [
            name for name in NONEMPTY if api_era == "sessions" or name != "interceptions table"
        ]
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


ERA_QUESTION = """
query EraFields($id: String!) {
  session(sessionId: $id) {
    sessionId
    networkCalls { total blocked }
    networkCallLogs(first: 100) {
      totalCount
      nodes { networkCallId firewallSessionId sequenceNumber allowed detail matchedRule }
    }
    networkTopDomains { domain count }
    networkDomainCount
    threads(first: 20) {
      nodes {
        threadId errorType errorMessage agentFirewallSessionId agentFirewallSequenceNumber
      }
    }
  }
}"""
PROVIDERS_QUESTION = "{ providers { name type displayName icon } }"


def _opt(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def test_era_fields_and_providers_equal_graphql(
    standin_url: str,
    tokens: dict[str, str],
    face: RunningGrpc,
    graphql_face: tuple[str, list[UpstreamCall]],
    api_era: ApiEra,
) -> None:
    """The AI Gateway era's fields asked of both faces: the same data, the same upstream calls
    (and in the sessions era the same absence: unset fields, providers UPSTREAM_UNSUPPORTED)."""
    graphql_url, graphql_calls = graphql_face
    token = tokens["admin"]
    auth = {"Coder-Session-Token": token}
    metadata = (("coder-session-token", token),)
    with (
        httpx.Client(base_url=standin_url + "/api/v2/aibridge", headers=auth, timeout=30) as rest,
        httpx.Client(base_url=graphql_url, headers=auth, timeout=30) as gateway,
        grpc.insecure_channel(face.address) as channel,
    ):
        sessions = rest.get("/sessions", params={"limit": 30}).json()["sessions"]
        # A session with firewall activity when the era has any (the seeded AI Gateway data does).
        target = next(
            (
                s["id"]
                for s in sessions
                if rest.get(f"/sessions/{s['id']}", params={"limit": 1})
                .json()
                .get("network_call_logs")
            ),
            sessions[0]["id"],
        )
        before = len(graphql_calls)
        body = gateway.post(
            "/graphql", json={"query": ERA_QUESTION, "variables": {"id": target}}
        ).json()
        assert "errors" not in body, body
        by_graphql = sorted(c.target for c in graphql_calls[before:])
        want = body["data"]["session"]
        before = len(face.calls)
        got = (
            session_grpc.SessionServiceStub(channel)
            .GetSession(
                session_pb.GetSessionRequest(
                    session_id=target,
                    thread_page_size=20,
                    read_mask=FieldMask(
                        paths=[
                            "session_id",
                            "network_calls",
                            "network_call_logs",
                            "network_top_domains",
                            "network_domain_count",
                            "threads",
                        ]
                    ),
                ),
                metadata=metadata,
            )
            .session
        )
        assert sorted(c.target for c in face.calls[before:]) == by_graphql
        counts = want["networkCalls"]
        assert (
            None
            if not got.HasField("network_calls")
            else {"total": got.network_calls.total, "blocked": got.network_calls.blocked}
        ) == counts
        logs = want["networkCallLogs"]
        if logs is None:
            assert not got.network_call_logs
        else:
            assert len(got.network_call_logs) == logs["totalCount"]
            assert [
                {
                    "networkCallId": log.id,
                    "firewallSessionId": log.firewall_session_id,
                    "sequenceNumber": log.sequence_number,
                    "allowed": log.allowed,
                    "detail": log.detail,
                    "matchedRule": _opt(log, "matched_rule"),
                }
                for log in got.network_call_logs[: len(logs["nodes"])]
            ] == logs["nodes"]
        assert [{"domain": d.domain, "count": d.count} for d in got.network_top_domains] == (
            want["networkTopDomains"] or []
        )
        assert _opt(got, "network_domain_count") == want["networkDomainCount"]
        assert [
            {
                "threadId": t.thread_id,
                "errorType": _opt(t, "error_type"),
                "errorMessage": _opt(t, "error_message"),
                "agentFirewallSessionId": _opt(t, "agent_firewall_session_id"),
                "agentFirewallSequenceNumber": _opt(t, "agent_firewall_sequence_number"),
            }
            for t in got.threads
        ] == want["threads"]["nodes"]
        if api_era == "ai-gateway":
            assert logs is not None
            assert logs["nodes"], "the era's seeded data has firewall logs to compare"

        before = len(graphql_calls)
        body = gateway.post("/graphql", json={"query": PROVIDERS_QUESTION}).json()
        by_graphql = sorted(c.target for c in graphql_calls[before:])
        before = len(face.calls)
        catalog = catalog_grpc.CatalogServiceStub(channel)
        if api_era == "sessions":
            assert body["data"]["providers"] is None
            assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNSUPPORTED"
            with pytest.raises(grpc.RpcError) as unsupported:
                catalog.ListProviders(catalog_pb.ListProvidersRequest(), metadata=metadata)
            assert unsupported.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert by_graphql == sorted(c.target for c in face.calls[before:]) == []
            return
        assert "errors" not in body, body
        providers = catalog.ListProviders(
            catalog_pb.ListProvidersRequest(page_size=100), metadata=metadata
        ).providers
        assert sorted(c.target for c in face.calls[before:]) == by_graphql
        assert [
            {"name": p.name, "type": p.type, "displayName": p.display_name, "icon": p.icon}
            for p in providers
        ] == body["data"]["providers"]
        assert providers
