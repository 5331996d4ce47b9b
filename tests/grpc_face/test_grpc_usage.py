"""`UsageService.GetUsage` against the real stand-in in both eras: its rows and totals equal the
GraphQL `usage` field's for the same arguments, from the same upstream requests; bad arguments
are INVALID_ARGUMENT with no upstream call."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp

from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import usage_service_pb2 as usage_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import usage_service_pb2_grpc as usage_grpc
from aibridge_graphql.server.serving import build_gateway
from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.seed import seed_database
from aibridge_graphql.standin.store import open_database
from aibridge_graphql.upstream.client import UpstreamClient
from tests.support.grpc_face import (
    RecordingTransport,
    RunningGrpc,
    UpstreamCall,
    face_settings,
    run_grpc_in_thread,
)
from tests.support.servers import run_app_in_thread

ADMIN_TOKEN = "AdminGrpcU-0123456789abcdefghijkl"
# Enough for the sessions walk (1 + one call per session) over this seed.
BUDGET = 300
COST = """{ micros amount currency source complete pricedUsages unpricedUsages
  unpricedTokens { input output cacheRead cacheWrite total } unpricedReasons { reason usages }
  breakdown { input output cacheRead cacheWrite } }"""
ROW = f"""{{ userId username model provider providerName client day sessions threads interceptions
  inputTokens outputTokens cacheReadInputTokens cacheWriteInputTokens totalTokens cost {COST} }}"""
USAGE = f"""query($groupBy: [UsageDimension!]!, $filter: SessionFilter, $max: Int) {{
  usage(groupBy: $groupBy, filter: $filter, maxUpstreamCalls: $max) {{
    groupBy source complete incompleteReason rows {ROW} totals {ROW}
    scanned {{ upstreamCalls interceptions sessions threads }}
  }}
}}"""
_DIMENSION_FIELDS = ("user_id", "username", "model", "provider", "provider_name", "client", "day")
_COUNTS = ("sessions", "threads", "interceptions")


@pytest.fixture(scope="module")
def usage_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("grpc-usage") / "standin.db"
    with contextlib.closing(open_database(path)) as conn:
        seed_database(conn, 150, 5, ADMIN_TOKEN, awkward_session_ids=False)
        conn.commit()
    return path


@pytest.fixture(scope="module", params=["sessions", "ai-gateway"])
def faces(
    request: pytest.FixtureRequest, usage_db: Path
) -> Iterator[tuple[str, RunningGrpc, str, list[UpstreamCall]]]:
    """(era, the gRPC face, the GraphQL face's URL, its upstream calls) before one stand-in."""
    era = request.param
    with run_app_in_thread(lambda: create_app(usage_db, api_era=era)) as standin:
        settings = face_settings(standin, upstream_call_budget=BUDGET)
        calls: list[UpstreamCall] = []

        def factory() -> web.Application:
            client = UpstreamClient(settings, transport=RecordingTransport(settings, calls))
            app = build_gateway(settings, client=client)

            async def close(_: web.Application) -> None:
                await client.aclose()

            app.on_cleanup.append(close)
            return app

        with run_grpc_in_thread(settings) as face, run_app_in_thread(factory) as gateway:
            yield era, face, gateway, calls


def _graphql(url: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        url + "/graphql",
        json={"query": USAGE, "variables": variables},
        headers={"Coder-Session-Token": ADMIN_TOKEN},
        timeout=60,
    )
    body = response.json()
    assert "errors" not in body, body["errors"]
    usage: dict[str, Any] = body["data"]["usage"]
    return usage


def _kinds(value: dict[str, Any] | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(int(value[k]) for k in ("input", "output", "cacheRead", "cacheWrite"))


def _graphql_row(row: dict[str, Any]) -> dict[str, Any]:
    cost = row["cost"]
    names = ("userId", "username", "model", "provider", "providerName", "client", "day")
    return {
        **{field: row[name] for field, name in zip(_DIMENSION_FIELDS, names, strict=True)},
        **{name: row[name] for name in _COUNTS},
        "tokens": tuple(
            int(row[k])
            for k in (
                "inputTokens",
                "outputTokens",
                "cacheReadInputTokens",
                "cacheWriteInputTokens",
                "totalTokens",
            )
        ),
        "cost": {
            "micros": None if cost["micros"] is None else int(cost["micros"]),
            "amount": cost["amount"],
            "currency": cost["currency"],
            "source": cost["source"],
            "complete": cost["complete"],
            "priced": cost["pricedUsages"],
            "unpriced": cost["unpricedUsages"],
            "unpriced_tokens": tuple(
                int(cost["unpricedTokens"][k])
                for k in ("input", "output", "cacheRead", "cacheWrite", "total")
            ),
            "reasons": [(r["reason"], r["usages"]) for r in cost["unpricedReasons"]],
            "breakdown": _kinds(cost["breakdown"]),
        },
    }


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _grpc_row(row: usage_pb.UsageRow) -> dict[str, Any]:
    cost = row.cost
    t = row.tokens
    u = cost.unpriced_tokens
    b = cost.breakdown
    source = usage_pb.CostSource.Name(cost.source).removeprefix("COST_SOURCE_")
    return {
        **{name: _optional(row, name) for name in (*_DIMENSION_FIELDS, *_COUNTS)},
        "tokens": (t.input, t.output, t.cache_read, t.cache_write, t.total),
        "cost": {
            "micros": cost.micros if cost.HasField("micros") else None,
            "amount": cost.amount or None,
            "currency": cost.currency,
            "source": None if source == "UNSPECIFIED" else source,
            "complete": cost.complete,
            "priced": cost.priced_usages,
            "unpriced": cost.unpriced_usages,
            "unpriced_tokens": (u.input, u.output, u.cache_read, u.cache_write, u.total),
            "reasons": [
                (usage_pb.UnpricedReason.Name(r.reason).removeprefix("UNPRICED_REASON_"), r.usages)
                for r in cost.unpriced_reasons
            ],
            "breakdown": (
                b.input_micros,
                b.output_micros,
                b.cache_read_micros,
                b.cache_write_micros,
            )
            if cost.HasField("breakdown")
            else None,
        },
    }


def _stub(face: RunningGrpc) -> tuple[grpc.Channel, usage_grpc.UsageServiceStub]:
    channel = grpc.insecure_channel(face.address)
    return channel, usage_grpc.UsageServiceStub(channel)


_META = (("coder-session-token", ADMIN_TOKEN),)
CASES: list[tuple[list[str], dict[str, Any] | None, int | None]] = [
    (["USER", "MODEL"], None, None),
    (["PROVIDER", "CLIENT", "DAY"], {"provider": "anthropic"}, None),
    ([], None, None),
    (["MODEL"], None, 2),  # a small allowance: the sessions walk stops, the same partial rows
]


def _grpc_request(
    group_by: list[str], search: dict[str, Any] | None, allowance: int | None
) -> usage_pb.GetUsageRequest:
    request = usage_pb.GetUsageRequest(
        group_by=[usage_pb.UsageDimension.Value(f"USAGE_DIMENSION_{d}") for d in group_by],
        max_upstream_calls=allowance or 0,
    )
    if search:
        request.filter.CopyFrom(session_pb.SessionFilter(**search))
    return request


def test_get_usage_equals_the_graphql_usage_rows(
    faces: tuple[str, RunningGrpc, str, list[UpstreamCall]],
) -> None:
    era, face, gateway, graphql_calls = faces
    channel, stub = _stub(face)
    with channel:
        for group_by, search, allowance in CASES:
            before = len(graphql_calls)
            expected = _graphql(gateway, {"groupBy": group_by, "filter": search, "max": allowance})
            by_graphql = sorted(c.target for c in graphql_calls[before:])
            before = len(face.calls)
            answer = stub.GetUsage(_grpc_request(group_by, search, allowance), metadata=_META)
            by_grpc = sorted(c.target for c in face.calls[before:])
            case = (era, group_by, search, allowance)
            assert by_grpc == by_graphql, case
            assert [_grpc_row(r) for r in answer.rows] == [
                _graphql_row(r) for r in expected["rows"]
            ], case
            assert _grpc_row(answer.totals) == _graphql_row(expected["totals"]), case
            assert answer.complete == expected["complete"], case
            assert (answer.incomplete_reason or None) == expected["incompleteReason"], case
            assert usage_pb.UsageSource.Name(answer.source) == (
                "USAGE_SOURCE_" + expected["source"]
            ), case
            assert [
                usage_pb.UsageDimension.Name(d).removeprefix("USAGE_DIMENSION_")
                for d in answer.group_by
            ] == expected["groupBy"], case
            scanned = answer.scanned
            assert {
                "upstreamCalls": scanned.upstream_calls,
                "interceptions": scanned.interceptions,
                "sessions": scanned.sessions,
                "threads": scanned.threads,
            } == expected["scanned"], case
            if allowance is None:
                assert answer.complete, case
                assert int(expected["totals"]["totalTokens"]) > 0, case
            else:
                # 150 interceptions are one `/interceptions` page; the sessions walk needs more.
                assert answer.complete == (era == "sessions"), case
        # The source follows the era: the interceptions walk only where it exists.
        expected_source = "INTERCEPTIONS" if era == "sessions" else "SESSIONS"
        assert usage_pb.UsageSource.Name(answer.source) == "USAGE_SOURCE_" + expected_source


def test_get_usage_refuses_bad_arguments_without_an_upstream_call(
    faces: tuple[str, RunningGrpc, str, list[UpstreamCall]],
) -> None:
    era, face, _, _ = faces
    channel, stub = _stub(face)
    bad = [
        usage_pb.GetUsageRequest(group_by=[usage_pb.USAGE_DIMENSION_UNSPECIFIED]),
        usage_pb.GetUsageRequest(group_by=[99]),  # type: ignore[list-item]
        usage_pb.GetUsageRequest(max_upstream_calls=BUDGET + 1),
        usage_pb.GetUsageRequest(max_upstream_calls=-1),
    ]
    with channel:
        before = len(face.calls)
        for request in bad:
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetUsage(request, metadata=_META)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        if era == "ai-gateway":
            # PROVIDER_NAME needs `/interceptions`: refused before any scan.
            request = _grpc_request(["PROVIDER_NAME"], None, None)
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetUsage(request, metadata=_META)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert face.calls[before:] == []
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetUsage(usage_pb.GetUsageRequest())
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_get_usage_time_filter_narrows_it(
    faces: tuple[str, RunningGrpc, str, list[UpstreamCall]],
) -> None:
    _, face, gateway, _ = faces
    channel, stub = _stub(face)
    after = Timestamp()
    after.FromJsonString("2100-01-01T00:00:00Z")
    with channel:
        request = usage_pb.GetUsageRequest(filter=session_pb.SessionFilter(started_after=after))
        answer = stub.GetUsage(request, metadata=_META)
    expected = _graphql(
        gateway, {"groupBy": [], "filter": {"startedAfter": "2100-01-01T00:00:00Z"}, "max": None}
    )
    assert answer.totals.tokens.total == 0 == int(expected["totals"]["totalTokens"])
    assert _grpc_row(answer.totals) == _graphql_row(expected["totals"])
