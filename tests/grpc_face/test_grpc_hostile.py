"""Hostile gRPC requests (issue 20, item 5): each one is INVALID_ARGUMENT with a short message,
in both eras, and nothing is logged above INFO for it. Each used to be INTERNAL with an ERROR
traceback (or, for the long read-mask path, RESOURCE_EXHAUSTED: the whole path was echoed into
a status over the metadata limit)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from aibridge_graphql.core.inputs import MAX_TEXT_LENGTH
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2 as catalog_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import catalog_service_pb2_grpc as catalog_grpc
from aibridge_graphql.grpc.gen.aibridge.v1 import interception_service_pb2 as interception_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import (
    interception_service_pb2_grpc as interception_grpc,
)
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from aibridge_graphql.grpc.gen.aibridge.v1 import usage_service_pb2 as usage_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import usage_service_pb2_grpc as usage_grpc
from tests.grpc_face.test_grpc_face import details, md
from tests.support.grpc_face import RunningGrpc

# A status message the client can read at a glance (the echo of an input is cut at 64 chars).
MAX_MESSAGE = 200
MEGABYTE = "a" * 1_000_000


@pytest.fixture
def channel(face: RunningGrpc) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(face.address) as channel:
        yield channel


@pytest.fixture(autouse=True)
def quiet_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here: no log record above INFO (the face runs in this process's thread)."""
    caplog.set_level(logging.INFO)
    yield
    loud = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in caplog.records if r.levelno > 20]
    assert not loud, loud


def refused(call: Callable[..., Any], request: Any, token: str) -> tuple[str, str]:
    """Call; assert INVALID_ARGUMENT with BAD_USER_INPUT and a short message; the message and
    the field the error names (a violation's, else ErrorInfo's `field`)."""
    with pytest.raises(grpc.RpcError) as error:
        call(request, metadata=md(token), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    message = error.value.details() or ""
    assert 0 < len(message) <= MAX_MESSAGE, message
    info, violations = details(error.value)
    assert info.reason == "BAD_USER_INPUT"
    field = violations[0][0] if violations else info.metadata["field"]
    return message, field


def stamp(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


BAD_TIMES = {
    "seconds 2^62": stamp(2**62),
    "seconds -2^62": stamp(-(2**62)),
    "nanos -5": stamp(0, -5),
    "nanos 1e9": stamp(0, 10**9),
    "year 10000": stamp(253_402_300_800),
}


@pytest.mark.parametrize("bound", ["started_after", "started_before"])
@pytest.mark.parametrize("value", list(BAD_TIMES.values()), ids=list(BAD_TIMES))
def test_an_out_of_range_time_is_invalid_argument(
    channel: grpc.Channel, tokens: dict[str, str], bound: str, value: Timestamp
) -> None:
    sessions = session_grpc.SessionServiceStub(channel)
    fields: dict[str, Any] = {bound: value}
    request = session_pb.ListSessionsRequest(filter=session_pb.SessionFilter(**fields))
    message, field = refused(sessions.ListSessions, request, tokens["admin"])
    assert field == f"filter.{bound}"
    assert "valid Timestamp" in message
    # The interceptions filter is checked before any call, so in both eras too.
    interceptions = interception_grpc.InterceptionServiceStub(channel)
    request_i = interception_pb.ListInterceptionsRequest(
        filter=interception_pb.InterceptionFilter(**fields)
    )
    assert refused(interceptions.ListInterceptions, request_i, tokens["admin"])[1] == field
    usage = usage_grpc.UsageServiceStub(channel)
    request_u = usage_pb.GetUsageRequest(filter=session_pb.SessionFilter(**fields))
    assert refused(usage.GetUsage, request_u, tokens["admin"])[1] == field


def test_the_latest_time_still_works(channel: grpc.Channel, tokens: dict[str, str]) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    reply = stub.ListSessions(
        session_pb.ListSessionsRequest(
            filter=session_pb.SessionFilter(
                started_after=stamp(0),
                started_before=stamp(253_402_300_799, 999_999_999),
            )
        ),
        metadata=md(tokens["admin"]),
    )
    assert reply.total_size > 0


@pytest.mark.parametrize(
    "path", ["session_id\x00", "initiator.id\x00x", "\x00", "threads\x00.prompt", "session id"]
)
def test_a_read_mask_path_with_nul_is_invalid_argument(
    channel: grpc.Channel, tokens: dict[str, str], path: str
) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    mask = FieldMask(paths=["session_id", path])
    message, field = refused(
        stub.ListSessions, session_pb.ListSessionsRequest(read_mask=mask), tokens["admin"]
    )
    assert field == "read_mask"
    assert message.startswith("read_mask names unknown Session fields:"), message
    get = session_pb.GetSessionRequest(session_id="any", read_mask=mask)
    assert refused(stub.GetSession, get, tokens["admin"])[1] == "read_mask"


def test_a_100kb_read_mask_path_is_echoed_cut_short(
    channel: grpc.Channel, tokens: dict[str, str]
) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    long_path = "x" * 100_000
    message, _ = refused(
        stub.ListSessions,
        session_pb.ListSessionsRequest(read_mask=FieldMask(paths=[long_path])),
        tokens["admin"],
    )
    assert f"'{'x' * 64}…'" in message, message
    # Thousands of bad paths: a few are named, the rest counted.
    many = FieldMask(paths=[f"bad_{i}" for i in range(5000)])
    message, _ = refused(
        stub.ListSessions, session_pb.ListSessionsRequest(read_mask=many), tokens["admin"]
    )
    assert message.endswith("and 4995 more."), message


def test_a_megabyte_session_id_filter_is_invalid_argument(
    channel: grpc.Channel, tokens: dict[str, str]
) -> None:
    stub = session_grpc.SessionServiceStub(channel)
    for name in ("session_id", "initiator", "model", "client", "provider", "provider_name"):
        fields: dict[str, Any] = {name: MEGABYTE}
        request = session_pb.ListSessionsRequest(filter=session_pb.SessionFilter(**fields))
        message, field = refused(stub.ListSessions, request, tokens["admin"])
        assert field == f"filter.{name}"
        assert f"at most {MAX_TEXT_LENGTH} characters" in message
    nul = session_pb.ListSessionsRequest(filter=session_pb.SessionFilter(session_id="a\x00b"))
    assert refused(stub.ListSessions, nul, tokens["admin"])[1] == "filter.session_id"
    calls: list[tuple[Callable[..., Any], Any]] = [
        (stub.GetSession, session_pb.GetSessionRequest(session_id=MEGABYTE)),
        (stub.ListSessionThreads, session_pb.ListSessionThreadsRequest(session_id=MEGABYTE)),
        (stub.GetSession, session_pb.GetSessionRequest(session_id="s", initiator=MEGABYTE)),
    ]
    for call, other in calls:
        refused(call, other, tokens["admin"])


@pytest.mark.parametrize("method", ["ListModels", "ListClients"])
def test_a_megabyte_prefix_is_invalid_argument(
    channel: grpc.Channel, tokens: dict[str, str], method: str
) -> None:
    stub = catalog_grpc.CatalogServiceStub(channel)
    request = getattr(catalog_pb, f"{method}Request")
    message, field = refused(getattr(stub, method), request(prefix=MEGABYTE), tokens["admin"])
    assert field == "prefix"
    assert f"at most {MAX_TEXT_LENGTH} characters" in message
    # At the cap the prefix still goes upstream (nothing matches it).
    reply = getattr(stub, method)(
        request(prefix="a" * MAX_TEXT_LENGTH), metadata=md(tokens["admin"])
    )
    assert reply.total_size == 0
