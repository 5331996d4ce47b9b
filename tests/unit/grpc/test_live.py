"""The gRPC watches' arguments and event messages (grpc/live.py)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.core.live import Change
from aibridge_graphql.grpc import live
from aibridge_graphql.grpc.gen.aibridge.v1 import resources_pb2 as pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.upstream.errors import UpstreamUnavailable


def test_watched_count_defaults_and_bounds() -> None:
    assert live.watched_count(0) == 100
    assert live.watched_count(1) == 1
    assert live.watched_count(1000) == 1000
    for bad in (-1, 1001):
        with pytest.raises(BadUserInput, match="session_count"):
            live.watched_count(bad)


def test_timeline_mask_refuses_the_threads() -> None:
    assert live.timeline_mask(None) is None
    mask = FieldMask(paths=["session_id", "network_top_domains"])
    assert live.timeline_mask(mask) is mask
    for path in ("threads", "threads.thread_id", "threads_next_page_token"):
        with pytest.raises(BadUserInput, match="threads"):
            live.timeline_mask(FieldMask(paths=["session_id", path]))


def test_list_only_fields_need_a_lookup() -> None:
    assert not live.wants_listed(None)
    assert not live.wants_listed(FieldMask(paths=["session_id", "token_usage"]))
    assert live.wants_listed(FieldMask(paths=["session_id", "thread_count"]))


def _reason(status: object) -> str:
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)  # type: ignore[attr-defined]
    return str(info.reason)


def test_poll_errors_keep_their_code_and_unexpected_ones_are_masked() -> None:
    known = live.poll_error(UpstreamUnavailable("down"), live.WATCH_SESSIONS)
    assert known.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert _reason(known) == "UPSTREAM_UNAVAILABLE"
    masked = live.poll_error(RuntimeError("secret detail"), live.WATCH_SESSIONS)
    assert masked.code == grpc.StatusCode.INTERNAL.value[0]
    assert "secret" not in masked.message
    assert _reason(masked) == "INTERNAL_SERVER_ERROR"


def test_events_carry_their_kind_and_payload() -> None:
    observed = live.now()
    event = live.session_event("ADDED", pb.Session(session_id="s"), observed)
    assert event.kind == session_pb.SESSION_EVENT_KIND_ADDED
    assert event.WhichOneof("event") == "session"
    ended = live.timeline_event(Change("ENDED", "s", None), pb.Session(session_id="s"), observed)
    assert ended.kind == session_pb.TIMELINE_EVENT_KIND_ENDED
    assert ended.WhichOneof("event") is None
    assert ended.session.session_id == "s"
    error = live.sessions_error(live.poll_error(UpstreamUnavailable("x"), ""), observed)
    assert error.kind == session_pb.SESSION_EVENT_KIND_UNSPECIFIED
    assert error.WhichOneof("event") == "error"
