"""The face's live watches, WatchSessions and WatchSession: their arguments and event messages.

Both stream the process's shared pollers (core/live, docs/live.md): a change becomes an event
with its kind, the Session (and the Thread), and an upstream error that may pass becomes an
event whose `error` is the `google.rpc.Status` a failed call would end with, so the stream
stays open. Final errors are raised and end the call (the interceptor maps them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import status_pb2

from aibridge_graphql.core.errors import MASKED_MESSAGE, BadUserInput, describe
from aibridge_graphql.core.live import Change
from aibridge_graphql.core.loaders import LIST_LIMIT_MAX
from aibridge_graphql.core.scope import current_request_id
from aibridge_graphql.grpc import convert
from aibridge_graphql.grpc.gen.aibridge.v1 import resources_pb2 as pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.status import INTERNAL_REASON, build_status, status_for
from aibridge_graphql.settings import Settings

WATCH_SESSIONS: Final = "/aibridge.v1.SessionService/WatchSessions"
WATCH_SESSION: Final = "/aibridge.v1.SessionService/WatchSession"
# Sessions watched when the request leaves session_count at 0 (GraphQL's `first` default).
DEFAULT_WATCHED: Final = 100


def watched_count(value: int) -> int:
    """How many sessions to watch: 0 is the default, else 1 to the upstream's list cap."""
    if value == 0:
        return DEFAULT_WATCHED
    if not 1 <= value <= LIST_LIMIT_MAX:
        detail = f"must be between 1 and {LIST_LIMIT_MAX} (0: {DEFAULT_WATCHED})"
        raise BadUserInput(
            f"`session_count` {detail}.",
            extensions={"validations": [{"field": "session_count", "detail": detail}]},
        )
    return value


def idle_after(settings: Settings) -> timedelta:
    """No activity for this long and a watched session counts as ended."""
    return timedelta(seconds=settings.live_session_idle)


def timeline_mask(mask: FieldMask | None) -> FieldMask | None:
    """WatchSession's mask: GetSession's, but for the threads, which are the events."""
    named = [p for p in mask.paths if p.split(".")[0] in convert.THREAD_FIELDS] if mask else []
    if named:
        detail = "the threads come as the events: name no `threads` path"
        raise BadUserInput(
            f"read_mask of WatchSession names {named[0][:64]!r}: {detail}.",
            extensions={"validations": [{"field": "read_mask", "detail": detail}]},
        )
    return mask


def wants_listed(mask: FieldMask | None) -> bool:
    """True when the mask names a field only a `GET /sessions` item has (a lookup per event)."""
    return mask is not None and any(
        path.split(".")[0] in convert.LIST_ONLY_FIELDS for path in mask.paths
    )


def now() -> Timestamp:
    """The observe_time of events built now."""
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


def poll_error(error: Exception, method: str) -> status_pb2.Status:
    """The status of a failed poll; an unexpected one is masked (the hub has logged it, once
    for all its streams)."""
    if describe(error) is None:
        code = grpc.StatusCode.INTERNAL
        return build_status(
            code, INTERNAL_REASON, MASKED_MESSAGE, {"request_id": current_request_id()}
        )
    return event_error(error, method)


def event_error(error: Exception, method: str) -> status_pb2.Status:
    """The status of an event that could not be built (an unexpected error is logged)."""
    return status_for(error, current_request_id() or "", method)


def session_event(
    kind: str, session: pb.Session, observed: Timestamp
) -> session_pb.WatchSessionsResponse:
    """A WatchSessions event of a change (`kind`: core/live's EXISTING, ADDED...)."""
    return session_pb.WatchSessionsResponse(
        kind=session_pb.SessionEventKind.Value(f"SESSION_EVENT_KIND_{kind}"),
        session=session,
        observe_time=observed,
    )


def sessions_error(
    status: status_pb2.Status, observed: Timestamp
) -> session_pb.WatchSessionsResponse:
    """A WatchSessions error event: the stream stays open."""
    return session_pb.WatchSessionsResponse(error=status, observe_time=observed)


def timeline_event(
    change: Change, session: pb.Session, observed: Timestamp
) -> session_pb.WatchSessionResponse:
    """A WatchSession event of a change (no thread for ENDED)."""
    return session_pb.WatchSessionResponse(
        kind=session_pb.TimelineEventKind.Value(f"TIMELINE_EVENT_KIND_{change.kind}"),
        session=session,
        thread=None if change.value is None else convert.thread(change.value),
        observe_time=observed,
    )


def timeline_error(
    status: status_pb2.Status, observed: Timestamp
) -> session_pb.WatchSessionResponse:
    """A WatchSession error event: the stream stays open."""
    return session_pb.WatchSessionResponse(error=status, observe_time=observed)
