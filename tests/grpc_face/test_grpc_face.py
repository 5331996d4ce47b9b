"""The gRPC face against the seeded stand-in with grpcio's own client: data equal to REST's,
upstream calls per call equal to GraphQL's for the same view, errors as google.rpc.Status."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2 as catalog_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2_grpc as catalog_grpc
from aibridge_graphql.grpc.gen.aibridge.v1 import interception_service_pb2 as interception_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import (
    interception_service_pb2_grpc as interception_grpc,
)
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from aibridge_graphql.standin.eras import AI_GATEWAY_PREFIX, LEGACY_PREFIX, ApiEra
from tests.support.grpc_face import RunningGrpc, face_settings, run_grpc_in_thread

MAX_PAGES = 200
# The prefix the gateway detects and calls in each era (today's Coder: the canonical one).
UPSTREAM_PREFIX: dict[ApiEra, str] = {"sessions": LEGACY_PREFIX, "ai-gateway": AI_GATEWAY_PREFIX}


@pytest.fixture
def channel(face: RunningGrpc) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(face.address) as channel:
        yield channel


def md(token: str, *, bearer: bool = False) -> tuple[tuple[str, str], ...]:
    if bearer:
        return (("authorization", f"Bearer {token}"),)
    return (("coder-session-token", token),)


def rest(standin_url: str, token: str, path: str, **params: Any) -> Any:
    response = httpx.get(
        f"{standin_url}/api/v2/aibridge{path}",
        params=params,
        headers={"Coder-Session-Token": token},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def details(error: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, list[tuple[str, str]]]:
    """The ErrorInfo and the BadRequest field violations of a failed call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status in the trailers"
    info = error_details_pb2.ErrorInfo()
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [(v.field, v.description) for v in bad.field_violations]
    return info, violations


def test_sessions_page_by_page_equal_rest(
    channel: grpc.Channel, tokens: dict[str, str], standin_url: str
) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    seen: list[str] = []
    token = ""
    for _ in range(MAX_PAGES):
        reply = stub.ListSessions(
            session_pb.ListSessionsRequest(page_size=40, page_token=token),
            metadata=md(tokens["admin"]),
        )
        seen += [s.session_id for s in reply.sessions]
        token = reply.next_page_token
        if not token:
            break
    expected = rest(standin_url, tokens["admin"], "/sessions", limit=1000)
    assert seen == [s["id"] for s in expected["sessions"]]
    assert reply.total_size == expected["count"] == len(seen)


def test_session_fields_equal_rest(
    channel: grpc.Channel, tokens: dict[str, str], standin_url: str
) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    reply = stub.ListSessions(
        session_pb.ListSessionsRequest(page_size=3), metadata=md(tokens["admin"])
    )
    expected = rest(standin_url, tokens["admin"], "/sessions", limit=3)["sessions"]
    for got, want in zip(reply.sessions, expected, strict=True):
        assert got.initiator.id == want["initiator"]["id"]
        assert got.initiator.username == want["initiator"]["username"]
        assert list(got.models) == want["models"]
        assert list(got.providers) == want["providers"]
        assert got.thread_count == want["threads"]
        assert got.token_usage.input_tokens == want["token_usage_summary"]["input_tokens"]
        assert got.token_usage.output_tokens == want["token_usage_summary"]["output_tokens"]
        assert (got.client if got.HasField("client") else None) == want.get("client")
        assert not got.threads, "threads are only returned when the read_mask names them"


def test_get_session_with_threads_equal_rest(
    channel: grpc.Channel, face: RunningGrpc, tokens: dict[str, str], standin_url: str
) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    sessions = rest(standin_url, tokens["admin"], "/sessions", limit=50)["sessions"]
    target = max(sessions, key=lambda s: s["threads"])
    before = len(face.calls)
    reply = stub.GetSession(
        session_pb.GetSessionRequest(
            session_id=target["id"],
            read_mask=FieldMask(paths=["session_id", "threads"]),
            thread_page_size=2,
        ),
        metadata=md(tokens["admin"], bearer=True),
    )
    # GraphQL's `session(sessionId:) { threads(first: 2) }`: the page is the lookup too, as
    # the mask names nothing only the list item has.
    assert len(face.calls) - before == 1
    detail = rest(standin_url, tokens["admin"], f"/sessions/{target['id']}", limit=200)
    assert reply.session.session_id == target["id"]
    assert not reply.session.models, "fields outside the read_mask are left out"
    assert [t.thread_id for t in reply.session.threads] == [t["id"] for t in detail["threads"][:2]]
    first = detail["threads"][0]
    assert reply.session.threads[0].model == first["model"]
    assert reply.session.threads[0].token_usage.input_tokens == first["token_usage"]["input_tokens"]
    # The rest of the threads, page by page, through ListSessionThreads.
    ids = [t.thread_id for t in reply.session.threads]
    token = reply.session.threads_next_page_token
    for _ in range(MAX_PAGES):
        if not token:
            break
        page = stub.ListSessionThreads(
            session_pb.ListSessionThreadsRequest(
                session_id=target["id"], page_size=2, page_token=token
            ),
            metadata=md(tokens["admin"]),
        )
        assert page.total_size == target["threads"]
        ids += [t.thread_id for t in page.threads]
        token = page.next_page_token
    assert ids == [t["id"] for t in detail["threads"]]


def test_dashboard_read_mask_costs_one_plus_n(
    channel: grpc.Channel,
    face: RunningGrpc,
    tokens: dict[str, str],
    standin_url: str,
    api_era: ApiEra,
) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    before = len(face.calls)
    reply = stub.ListSessions(
        session_pb.ListSessionsRequest(
            page_size=5, read_mask=FieldMask(paths=["session_id", "thread_count", "threads"])
        ),
        metadata=md(tokens["admin"]),
    )
    calls = face.calls[before:]
    assert len(calls) == 1 + len(reply.sessions)
    # The same upstream requests as GraphQL's dashboard: limit = page size + 1.
    assert calls[0].target == f"{UPSTREAM_PREFIX[api_era]}/sessions?limit=6"
    for session in reply.sessions:
        assert 0 < len(session.threads) <= min(3, session.thread_count)
        want = rest(standin_url, tokens["admin"], f"/sessions/{session.session_id}", limit=3)
        assert [t.thread_id for t in session.threads] == [t["id"] for t in want["threads"]]
    before = len(face.calls)
    stub.ListSessions(session_pb.ListSessionsRequest(page_size=5), metadata=md(tokens["admin"]))
    assert len(face.calls) - before == 1, "without `threads` in the mask no thread is fetched"


def test_interceptions_equal_rest_or_unimplemented(
    channel: grpc.Channel,
    face: RunningGrpc,
    tokens: dict[str, str],
    standin_url: str,
    api_era: ApiEra,
) -> None:
    interceptions = interception_grpc.InterceptionServiceStub(channel)
    if api_era == "ai-gateway":
        # Today's Coder has no `GET /interceptions`: refused before any upstream call.
        before = len(face.calls)
        with pytest.raises(grpc.RpcError) as unsupported:
            interceptions.ListInterceptions(
                interception_pb.ListInterceptionsRequest(page_size=7), metadata=md(tokens["admin"])
            )
        assert unsupported.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert details(unsupported.value)[0].reason == "UPSTREAM_UNSUPPORTED"
        assert face.calls[before:] == []
        return
    first = interceptions.ListInterceptions(
        interception_pb.ListInterceptionsRequest(page_size=7), metadata=md(tokens["admin"])
    )
    second = interceptions.ListInterceptions(
        interception_pb.ListInterceptionsRequest(page_size=7, page_token=first.next_page_token),
        metadata=md(tokens["admin"]),
    )
    expected = rest(standin_url, tokens["admin"], "/interceptions", limit=14)
    assert [i.id for i in (*first.interceptions, *second.interceptions)] == [
        r["id"] for r in expected["results"]
    ]
    assert first.total_size == expected["count"]


def test_catalog_equal_rest(
    channel: grpc.Channel, tokens: dict[str, str], standin_url: str
) -> None:
    catalog = catalog_grpc.CatalogServiceStub(channel)
    models = catalog.ListModels(catalog_pb.ListModelsRequest(), metadata=md(tokens["admin"]))
    assert models.models
    assert (
        list(models.models)
        == rest(standin_url, tokens["admin"], "/models", limit=1000)[: len(models.models)]
    )
    clients = catalog.ListClients(
        catalog_pb.ListClientsRequest(page_size=100), metadata=md(tokens["admin"])
    )
    assert clients.clients
    assert sorted(clients.clients) == sorted(rest(standin_url, tokens["admin"], "/clients"))


def test_providers_equal_rest_or_unimplemented(
    channel: grpc.Channel,
    face: RunningGrpc,
    tokens: dict[str, str],
    standin_url: str,
    api_era: ApiEra,
) -> None:
    catalog = catalog_grpc.CatalogServiceStub(channel)
    before = len(face.calls)
    if api_era == "sessions":
        # `GET /providers` came with the AI Gateway API: refused before any upstream call.
        with pytest.raises(grpc.RpcError) as unsupported:
            catalog.ListProviders(catalog_pb.ListProvidersRequest(), metadata=md(tokens["admin"]))
        assert unsupported.value.code() == grpc.StatusCode.UNIMPLEMENTED
        info = details(unsupported.value)[0]
        assert info.reason == "UPSTREAM_UNSUPPORTED"
        # Each session lists its providers: that is where to look instead.
        assert info.metadata["instead"] == "Session.providers"
        assert face.calls[before:] == []
        return
    expected = rest(standin_url, tokens["admin"], "/providers")
    assert expected
    got: list[catalog_pb.Provider] = []
    token = ""
    for _ in range(MAX_PAGES):
        page = catalog.ListProviders(
            catalog_pb.ListProvidersRequest(page_size=1, page_token=token),
            metadata=md(tokens["admin"]),
        )
        assert page.total_size == len(expected)
        got += page.providers
        token = page.next_page_token
        if not token:
            break
    assert len(face.calls) - before == len(expected), "one `GET /providers` per page"
    assert [(p.name, p.type, p.display_name, p.icon) for p in got] == [
        (p["name"], p["type"], p["display_name"], p["icon"]) for p in expected
    ]


def test_era_fields_equal_rest(
    channel: grpc.Channel, tokens: dict[str, str], standin_url: str, api_era: ApiEra
) -> None:
    """Thread errors and firewall ids, session network counts and the session detail's network
    activity: set exactly as the upstream sends them (AI Gateway era), unset before it."""
    stub = session_grpc.SessionServiceStub(channel)
    listed = rest(standin_url, tokens["admin"], "/sessions", limit=100)["sessions"]
    details_by_id = {
        s["id"]: rest(standin_url, tokens["admin"], f"/sessions/{s['id']}", limit=100)
        for s in listed[:40]
    }
    mask = FieldMask(
        paths=[
            "session_id",
            "network_calls",
            "threads",
            "network_call_logs",
            "network_top_domains",
            "network_domain_count",
        ]
    )
    seen_error = seen_logs = False
    for session_id, want in details_by_id.items():
        got = stub.GetSession(
            session_pb.GetSessionRequest(
                session_id=session_id, read_mask=mask, thread_page_size=100
            ),
            metadata=md(tokens["admin"]),
        ).session
        calls = want.get("network_calls")
        assert got.HasField("network_calls") == (calls is not None)
        if calls is not None:
            assert (got.network_calls.total, got.network_calls.blocked) == (
                calls["total"],
                calls["blocked"],
            )
        logs = want.get("network_call_logs") or []
        assert [
            (log.id, log.firewall_session_id, log.sequence_number, log.allowed, log.detail)
            for log in got.network_call_logs
        ] == [
            (w["id"], w["session_id"], w["sequence_number"], w["allowed"], w["detail"])
            for w in logs
        ]
        assert [(d.domain, d.count) for d in got.network_top_domains] == [
            (d["domain"], d["count"]) for d in want.get("network_top_domains") or []
        ]
        count = want.get("network_domain_count")
        assert got.HasField("network_domain_count") == (count is not None)
        if count is not None:
            assert got.network_domain_count == count
        seen_logs = seen_logs or bool(logs)
        assert len(got.threads) == len(want["threads"])
        for thread, raw in zip(got.threads, want["threads"], strict=True):
            for name in ("error_type", "error_message", "agent_firewall_session_id"):
                assert (getattr(thread, name) if thread.HasField(name) else None) == raw.get(name)
            sequence = raw.get("agent_firewall_sequence_number")
            assert thread.HasField("agent_firewall_sequence_number") == (sequence is not None)
            assert thread.agent_firewall_sequence_number == (sequence or 0)
            seen_error = seen_error or raw.get("error_type") is not None
    # The seeded AI Gateway data has failed threads and firewall logs; the sessions era none.
    assert seen_error == seen_logs == (api_era == "ai-gateway")


def test_errors_are_rich_statuses(channel: grpc.Channel, tokens: dict[str, str]) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as missing_token:
        stub.ListSessions(session_pb.ListSessionsRequest())
    assert missing_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details(missing_token.value)[0].reason == "UNAUTHENTICATED"

    with pytest.raises(grpc.RpcError) as not_found:
        stub.GetSession(
            session_pb.GetSessionRequest(session_id="no-such-session"), metadata=md(tokens["admin"])
        )
    assert not_found.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(not_found.value)[0].reason == "NOT_FOUND"

    with pytest.raises(grpc.RpcError) as too_big:
        stub.ListSessions(
            session_pb.ListSessionsRequest(page_size=5000), metadata=md(tokens["admin"])
        )
    assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, violations = details(too_big.value)
    assert info.reason == "BAD_USER_INPUT"
    assert violations[0][0] == "page_size"

    with pytest.raises(grpc.RpcError) as bad_token:
        stub.ListSessions(
            session_pb.ListSessionsRequest(page_token="not-a-token"), metadata=md(tokens["admin"])
        )
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(bad_token.value)[1][0][0] == "page_token"

    # A token of one filter used with another (AIP-158).
    page = stub.ListSessions(
        session_pb.ListSessionsRequest(page_size=1), metadata=md(tokens["admin"])
    )
    with pytest.raises(grpc.RpcError) as other_filter:
        stub.ListSessions(
            session_pb.ListSessionsRequest(
                page_size=1,
                page_token=page.next_page_token,
                filter=session_pb.SessionFilter(initiator="admin"),
            ),
            metadata=md(tokens["admin"]),
        )
    assert other_filter.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    with pytest.raises(grpc.RpcError) as bad_mask:
        stub.ListSessions(
            session_pb.ListSessionsRequest(read_mask=FieldMask(paths=["nope"])),
            metadata=md(tokens["admin"]),
        )
    assert bad_mask.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Coder's own validations arrive as BadRequest field violations.
    with pytest.raises(grpc.RpcError) as coder_400:
        stub.ListSessions(
            session_pb.ListSessionsRequest(
                filter=session_pb.SessionFilter(initiator="nobody-here")
            ),
            metadata=md(tokens["admin"]),
        )
    assert coder_400.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, violations = details(coder_400.value)
    assert info.reason == "BAD_USER_INPUT"
    assert violations
    assert violations[0][0] == "initiator"


def test_request_id_is_echoed_and_sent_upstream(
    channel: grpc.Channel, face: RunningGrpc, tokens: dict[str, str]
) -> None:
    stub = catalog_grpc.CatalogServiceStub(channel)
    _, call = stub.ListModels.with_call(
        catalog_pb.ListModelsRequest(),
        metadata=(*md(tokens["admin"]), ("x-request-id", "grpc-req-42")),
    )
    assert dict(call.initial_metadata())["x-request-id"] == "grpc-req-42"
    _, call = stub.ListModels.with_call(
        catalog_pb.ListModelsRequest(), metadata=md(tokens["admin"])
    )
    generated = dict(call.initial_metadata())["x-request-id"]
    assert isinstance(generated, str)
    assert len(generated) == 32


def test_metrics_per_method_and_code(channel: grpc.Channel, face: RunningGrpc) -> None:
    stub = catalog_grpc.CatalogServiceStub(channel)
    with pytest.raises(grpc.RpcError):
        stub.ListClients(catalog_pb.ListClientsRequest())
    value = face.metrics.registry.get_sample_value(
        "aibridge_grpc_server_handled_total",
        {"method": "/aibridge.v1.CatalogService/ListClients", "code": "UNAUTHENTICATED"},
    )
    assert value is not None
    assert value >= 1
    # Upstream calls made for gRPC land in the same registry's upstream series.
    upstream = face.metrics.registry.get_sample_value(
        "aibridge_upstream_request_duration_seconds_count",
        {"endpoint": "/clients", "status": "401"},
    )
    assert upstream is not None
    assert upstream >= 1


def test_two_tokens_interleaved_never_mix(
    face: RunningGrpc, tokens: dict[str, str], standin_url: str
) -> None:
    # The owner sees every session, a member none of them (the upstream's authorize filter).
    member = next(name for name in tokens if name not in ("admin", "auditor"))
    members = ["admin", member]
    expected = {
        name: [s["id"] for s in rest(standin_url, tokens[name], "/sessions", limit=100)["sessions"]]
        for name in members
    }
    assert expected[members[0]] != expected[members[1]]
    results: dict[str, list[list[str]]] = {name: [] for name in members}
    errors: list[BaseException] = []

    def walk(name: str) -> None:
        try:
            with grpc.insecure_channel(face.address) as channel:
                stub = session_grpc.SessionServiceStub(channel)
                for _ in range(5):
                    futures = [
                        stub.ListSessions.future(
                            session_pb.ListSessionsRequest(page_size=100),
                            metadata=md(tokens[name]),
                        )
                        for _ in range(4)
                    ]
                    results[name] += [[s.session_id for s in f.result().sessions] for f in futures]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=walk, args=(name,)) for name in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    for name in members:
        assert results[name]
        assert all(ids == expected[name] for ids in results[name])


def test_health_follows_the_upstream(face: RunningGrpc, channel: grpc.Channel) -> None:
    # The stubs package types HealthStub without its methods.
    health: Any = health_pb2_grpc.HealthStub(channel)
    for service in ("", "aibridge.v1.SessionService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # Nothing listens on this port: the upstream is down, so the face is not serving.
    with (
        run_grpc_in_thread(face_settings("http://127.0.0.1:9")) as down,
        grpc.insecure_channel(down.address) as down_channel,
    ):
        down_health: Any = health_pb2_grpc.HealthStub(down_channel)
        reply = down_health.Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as unavailable:
            session_grpc.SessionServiceStub(down_channel).ListSessions(
                session_pb.ListSessionsRequest(), metadata=md("any-token")
            )
        assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
        assert details(unavailable.value)[0].reason == "UPSTREAM_UNAVAILABLE"
