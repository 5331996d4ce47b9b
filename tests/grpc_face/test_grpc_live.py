"""WatchSessions and WatchSession through grpcio's client, in both eras: events for records
appended to the stand-in, read masks, errors as events and as statuses, limits, deadlines,
hang-ups, and two tokens that never see each other's events.

The face polls every second (the minimum) and calls a session ended after 3 s without activity;
every wait for an event is bounded, and each test leaves the hub with no stream and no poller.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2

from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2 as session_pb
from aibridge_graphql.grpc.gen.aibridge.v1 import session_service_pb2_grpc as session_grpc
from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.eras import ApiEra
from tests.grpc_face.test_grpc_face import details, md
from tests.support.grpc_face import RunningGrpc, face_settings, run_grpc_in_thread
from tests.support.grpc_live import (
    ALICE,
    BOB,
    IDLE_S,
    LIVE_SETTINGS,
    TOKENS,
    Appender,
    StreamReader,
    live_database,
)
from tests.support.serve_process import poll_until, serve, sigterm
from tests.support.servers import run_app_in_thread

# A hang-up leaves the hub at once: well within one poll interval, whatever the machine's load.
FREED_WITHIN_S = 3.0

S_EXISTING = session_pb.SESSION_EVENT_KIND_EXISTING
S_ADDED = session_pb.SESSION_EVENT_KIND_ADDED
S_UPDATED = session_pb.SESSION_EVENT_KIND_UPDATED
S_ENDED = session_pb.SESSION_EVENT_KIND_ENDED
T_EXISTING = session_pb.TIMELINE_EVENT_KIND_EXISTING
T_ADDED = session_pb.TIMELINE_EVENT_KIND_ADDED
T_UPDATED = session_pb.TIMELINE_EVENT_KIND_UPDATED
T_ENDED = session_pb.TIMELINE_EVENT_KIND_ENDED


@pytest.fixture
def stub(watch: RunningGrpc) -> Iterator[Any]:
    with grpc.insecure_channel(watch.address) as channel:
        yield session_grpc.SessionServiceStub(channel)


_ids = iter(range(1, 10_000))


def new_session_id(what: str) -> str:
    return f"live-{what}-{next(_ids)}"


def watch_sessions(stub: Any, token: str, timeout: float = 60, **fields: Any) -> StreamReader:
    return StreamReader(
        stub.WatchSessions(
            session_pb.WatchSessionsRequest(**fields), metadata=md(token), timeout=timeout
        )
    )


def watch_session(stub: Any, token: str, timeout: float = 60, **fields: Any) -> StreamReader:
    return StreamReader(
        stub.WatchSession(
            session_pb.WatchSessionRequest(**fields), metadata=md(token), timeout=timeout
        )
    )


def session_is(session_id: str, kind: int) -> Callable[[Any], bool]:
    def check(event: Any) -> bool:
        return bool(
            event.WhichOneof("event") == "session"
            and event.session.session_id == session_id
            and event.kind == kind
        )

    return check


def thread_is(thread_id: str, kind: int) -> Callable[[Any], bool]:
    def check(event: Any) -> bool:
        return bool(
            event.WhichOneof("event") == "thread"
            and event.thread.thread_id == thread_id
            and event.kind == kind
        )

    return check


def hang_up(reader: StreamReader) -> None:
    reader.cancel()
    error = reader.end()
    assert error is not None
    assert error.code() == grpc.StatusCode.CANCELLED


def test_sessions_existing_added_updated_ended(
    watch: RunningGrpc, stub: Any, appender: Appender
) -> None:
    first_call = len(watch.calls)
    mask = FieldMask(paths=["session_id", "initiator", "thread_count", "token_usage"])
    reader = watch_sessions(stub, TOKENS["alice"], include_existing=True, read_mask=mask)
    existing: set[str] = set()
    while not {"old-alice", "old-bob", "old-mem"} <= existing:
        event = reader.until(lambda e: e.kind == S_EXISTING, "EXISTING")
        existing.add(event.session.session_id)
        assert event.observe_time.seconds > 0

    session_id = new_session_id("added")
    thread_id = appender.thread(ALICE, session_id)
    added = reader.until(session_is(session_id, S_ADDED), "ADDED")
    assert added.session.initiator.username == "alice"
    assert added.session.thread_count == 1
    # The mask applies: fields it does not name stay unset.
    assert not added.session.client
    assert not added.session.HasField("start_time")

    appender.action(ALICE, session_id, thread_id)
    updated = reader.until(session_is(session_id, S_UPDATED), "UPDATED")
    assert updated.session.thread_count == 1
    assert updated.session.token_usage.input_tokens > added.session.token_usage.input_tokens

    reader.until(session_is(session_id, S_ENDED), "ENDED", within=IDLE_S + 10)
    hang_up(reader)
    # Every upstream call was a poll of the one list, with the watcher's own token.
    calls = watch.calls[first_call:]
    assert calls
    assert all(call.target.split("?")[0].endswith("/sessions") for call in calls), calls
    assert {call.token for call in calls} == {TOKENS["alice"]}


def test_sessions_read_mask_threads_cost_a_call_per_event(
    watch: RunningGrpc, stub: Any, appender: Appender
) -> None:
    before = watch.polls("sessions")
    mask = FieldMask(paths=["session_id", "threads"])
    reader = watch_sessions(stub, TOKENS["alice"], read_mask=mask, thread_page_size=2)
    watch.wait_polls("sessions", before)  # the view's first answer: what is new comes after it
    first_call = len(watch.calls)
    session_id = new_session_id("threads")
    thread_id = appender.thread(ALICE, session_id)
    added = reader.until(session_is(session_id, S_ADDED), "ADDED")
    assert [t.thread_id for t in added.session.threads] == [thread_id]
    assert added.session.threads[0].prompt
    assert not added.session.threads_next_page_token
    hang_up(reader)
    details_calls = [c for c in watch.calls[first_call:] if f"/sessions/{session_id}" in c.target]
    assert len(details_calls) == 1
    assert details_calls[0].token == TOKENS["alice"]


def test_session_timeline_added_updated_ended_then_ok(
    watch: RunningGrpc, stub: Any, appender: Appender
) -> None:
    session_id = new_session_id("timeline")
    first = appender.thread(ALICE, session_id)
    mask = FieldMask(paths=["session_id", "thread_count", "token_usage"])
    reader = watch_session(
        stub, TOKENS["alice"], session_id=session_id, include_existing=True, read_mask=mask
    )
    existing = reader.until(thread_is(first, T_EXISTING), "EXISTING")
    assert existing.session.session_id == session_id
    assert existing.session.thread_count == 1  # a list-only field: looked up for the event

    second = appender.thread(ALICE, session_id)
    added = reader.until(thread_is(second, T_ADDED), "ADDED")
    assert added.session.thread_count == 2
    assert added.thread.prompt

    appender.action(ALICE, session_id, first)
    updated = reader.until(thread_is(first, T_UPDATED), "UPDATED")
    assert updated.thread.token_usage.input_tokens > existing.thread.token_usage.input_tokens

    ended = reader.until(lambda e: e.kind == T_ENDED, "ENDED", within=IDLE_S + 10)
    assert ended.WhichOneof("event") is None
    assert ended.session.session_id == session_id
    assert reader.end() is None  # completed after ENDED
    assert reader.call.code() == grpc.StatusCode.OK
    assert [e.kind for e in reader.events].count(T_ENDED) == 1


def test_two_tokens_interleaved_never_see_each_other(
    watch: RunningGrpc, stub: Any, appender: Appender
) -> None:
    mine: dict[str, Any] = {
        "filter": session_pb.SessionFilter(initiator="me"),
        "include_existing": True,
    }
    alice = watch_sessions(stub, TOKENS["alice"], **mine)
    bob = watch_sessions(stub, TOKENS["bob"], **mine)
    # The member may read no interception at all: the same list as Alice's, empty for them.
    member = watch_sessions(stub, TOKENS["mem"], include_existing=True)
    alice.until(session_is("old-alice", S_EXISTING), "Alice's EXISTING")
    bob.until(session_is("old-bob", S_EXISTING), "Bob's EXISTING")
    watch.wait_live(3, 3)
    first_call = len(watch.calls)

    appended = {ALICE.id: [], BOB.id: []}  # type: dict[str, list[str]]
    for round_ in range(2):
        for user in (ALICE, BOB):
            session_id = new_session_id(f"{user.username}-{round_}")
            appender.thread(user, session_id)
            appended[user.id].append(session_id)
    after_appends = len(watch.calls)
    for reader, user in ((alice, ALICE), (bob, BOB)):
        checks = [session_is(session_id, S_ADDED) for session_id in appended[user.id]]
        reader.until_each(checks, f"{user.username}'s sessions")
    # Two polls of the member's view sent since the appends: the second starts once the first's
    # answer (with the appended records, were they visible to the member) reached its stream.
    poll_until(
        lambda: sum(c.token == TOKENS["mem"] for c in watch.calls[after_appends:]) >= 2,
        "two polls of the member's view",
    )
    for reader in (alice, bob, member):
        hang_up(reader)

    for reader, user in ((alice, ALICE), (bob, BOB)):
        initiators = {e.session.initiator.id for e in reader.events}
        assert initiators == {user.id}, (user.username, initiators)
    assert member.events == []
    calls = watch.calls[first_call:]
    assert {call.token for call in calls} == {TOKENS["alice"], TOKENS["bob"], TOKENS["mem"]}
    for call in calls:
        assert ("initiator" in call.target) == (call.token != TOKENS["mem"]), call


def test_hang_up_frees_the_stream_and_when_last_the_poller(watch: RunningGrpc, stub: Any) -> None:
    view: dict[str, Any] = {
        "filter": session_pb.SessionFilter(client="claude-code"),
        "include_existing": True,
    }
    first = watch_sessions(stub, TOKENS["alice"], **view)
    second = watch_sessions(stub, TOKENS["alice"], **view)
    watch.wait_live(2, 1)  # one poller shared by the two streams
    assert watch.metrics.registry.get_sample_value("aibridge_live_streams") == 2
    assert watch.metrics.registry.get_sample_value("aibridge_live_pollers") == 1
    hang_up(first)
    watch.wait_live(1, 1, within=FREED_WITHIN_S)
    assert watch.metrics.registry.get_sample_value("aibridge_live_streams") == 1
    hang_up(second)
    watch.wait_live(0, 0, within=FREED_WITHIN_S)
    assert watch.metrics.registry.get_sample_value("aibridge_live_streams") == 0
    assert watch.metrics.registry.get_sample_value("aibridge_live_pollers") == 0
    handled = watch.metrics.registry.get_sample_value(
        "aibridge_grpc_server_handled_total",
        {"method": "/aibridge.v1.SessionService/WatchSessions", "code": "CANCELLED"},
    )
    assert handled is not None
    assert handled >= 2


def test_the_callers_deadline_ends_the_stream(watch: RunningGrpc, stub: Any) -> None:
    reader = watch_sessions(stub, TOKENS["alice"], timeout=1.5, include_existing=True)
    error = reader.end(within=10)
    assert error is not None
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert any(e.kind == S_EXISTING for e in reader.events)  # it streamed until then
    watch.wait_live(0, 0, within=FREED_WITHIN_S)


def test_over_the_stream_limit_is_resource_exhausted(watch_standin: str) -> None:
    settings = face_settings(watch_standin, live_max_streams_per_caller=1, **LIVE_SETTINGS)
    with (
        run_grpc_in_thread(settings) as limited,
        grpc.insecure_channel(limited.address) as channel,
    ):
        stub = session_grpc.SessionServiceStub(channel)
        open_one = watch_sessions(stub, TOKENS["alice"])
        limited.wait_live(1, 1)
        refused = watch_sessions(stub, TOKENS["alice"]).end()
        assert refused is not None
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info, _ = details(refused)
        assert info.reason == "RATE_LIMITED"
        other = watch_sessions(stub, TOKENS["bob"])  # the limit is per caller
        limited.wait_live(2, 2)
        hang_up(open_one)
        hang_up(other)
        limited.wait_live(0, 0)


BAD_CALLS = [
    ("no token", "WatchSessions", {}, None, "UNAUTHENTICATED", "UNAUTHENTICATED"),
    (
        "unknown token",
        "WatchSessions",
        {},
        "Unknowntok-abcdefghijklmnopqrstuv",
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
    ),
    ("count", "WatchSessions", {"session_count": 1001}, "alice", "INVALID_ARGUMENT", None),
    ("negative", "WatchSessions", {"session_count": -1}, "alice", "INVALID_ARGUMENT", None),
    (
        "mask",
        "WatchSessions",
        {"read_mask": FieldMask(paths=["no_such_field"])},
        "alice",
        "INVALID_ARGUMENT",
        None,
    ),
    (
        "filter Coder refuses",
        "WatchSessions",
        {"filter": session_pb.SessionFilter(initiator="no-such-user")},
        "alice",
        "INVALID_ARGUMENT",
        None,
    ),
    ("unknown session", "WatchSession", {"session_id": "no-such"}, "alice", "NOT_FOUND", None),
    ("empty session id", "WatchSession", {}, "alice", "INVALID_ARGUMENT", None),
    (
        "threads in the mask",
        "WatchSession",
        {"session_id": "old-alice", "read_mask": FieldMask(paths=["threads"])},
        "alice",
        "INVALID_ARGUMENT",
        None,
    ),
]


@pytest.mark.parametrize(
    ("method", "fields", "token", "code", "reason"),
    [case[1:] for case in BAD_CALLS],
    ids=[case[0] for case in BAD_CALLS],
)
def test_bad_calls_end_with_their_status(
    watch: RunningGrpc,
    stub: Any,
    method: str,
    fields: dict[str, Any],
    token: str | None,
    code: str,
    reason: str | None,
) -> None:
    request = getattr(session_pb, f"{method}Request")(**fields)
    metadata = md(TOKENS.get(token or "", token or "")) if token else ()
    reader = StreamReader(getattr(stub, method)(request, metadata=metadata, timeout=30))
    error = reader.end()
    assert error is not None, reader.events
    assert error.code().name == code
    info, _ = details(error)
    assert info.reason == (reason or {"INVALID_ARGUMENT": "BAD_USER_INPUT"}.get(code, code))
    assert error.details()  # a message saying what is wrong
    assert reader.events == []


def test_upstream_killed_mid_stream_is_an_error_event_then_recovers(
    api_era: ApiEra, tmp_path: Path
) -> None:
    appender = live_database(tmp_path / "killed.db")

    def standin() -> Any:
        return create_app(appender.path, api_era=api_era)

    with contextlib.ExitStack() as upstream:
        url = upstream.enter_context(run_app_in_thread(standin))
        port = int(url.rsplit(":", 1)[1])
        with (
            run_grpc_in_thread(face_settings(url, **LIVE_SETTINGS)) as face,
            grpc.insecure_channel(face.address) as channel,
        ):
            stub = session_grpc.SessionServiceStub(channel)
            reader = watch_sessions(stub, TOKENS["alice"], include_existing=True)
            reader.until(session_is("old-alice", S_EXISTING), "EXISTING")
            upstream.close()  # the stand-in is gone

            failed = reader.until(lambda e: e.WhichOneof("event") == "error", "an error event")
            assert failed.kind == session_pb.SESSION_EVENT_KIND_UNSPECIFIED
            assert failed.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
            info = error_details_pb2.ErrorInfo()
            assert failed.error.details[0].Unpack(info)
            assert info.reason == "UPSTREAM_UNAVAILABLE"
            assert not reader.ended

            with run_app_in_thread(standin, port=port):
                session_id = new_session_id("recovered")
                appender.thread(ALICE, session_id)
                reader.until(session_is(session_id, S_ADDED), "ADDED after the restart")
                hang_up(reader)
                face.wait_live(0, 0)


SSE_SUBSCRIPTION = (
    "subscription Both { sessions(includeExisting: true) { kind session { sessionId } } }"
)


def _live_gauges(base: str) -> tuple[float, float]:
    """`aibridge_live_streams` and `aibridge_live_pollers` from the process's `/metrics`."""
    values = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("aibridge_live_streams", "aibridge_live_pollers"):
            values[name] = float(value)
    return values["aibridge_live_streams"], values["aibridge_live_pollers"]


def test_both_faces_of_a_process_share_one_poller_per_view(watch_standin: str) -> None:
    """`serve`: a GraphQL subscription (SSE) and a gRPC watch of the same view with the same
    token are two streams of one poller; each hang-up frees its stream, the last the poller."""
    env = {"AIBRIDGE_LIVE_POLL_INTERVAL": "1", "AIBRIDGE_LOG_LEVEL": "WARNING"}
    headers = {"Accept": "text/event-stream", "Coder-Session-Token": TOKENS["alice"]}
    with (
        serve(watch_standin, env) as process,
        httpx.Client(timeout=20) as http,
        http.stream(
            "POST", f"{process.base_url}/graphql", json={"query": SSE_SUBSCRIPTION}, headers=headers
        ) as sse,
    ):
        assert sse.status_code == 200
        # The first event (EXISTING) read, each read bounded by the client's timeout. The lines'
        # iterator is kept: dropping it closes the response, and the subscription with it.
        lines = sse.iter_lines()
        assert any(line.startswith("data:") for line in lines)
        with grpc.insecure_channel(process.grpc_address) as channel:
            stub = session_grpc.SessionServiceStub(channel)
            reader = watch_sessions(stub, TOKENS["alice"], include_existing=True)
            reader.until(session_is("old-alice", S_EXISTING), "EXISTING")
            assert _live_gauges(process.base_url) == (2, 1)
            hang_up(reader)
            poll_until(lambda: _live_gauges(process.base_url) == (1, 1), "the gRPC stream freed")
        sse.close()
        poll_until(lambda: _live_gauges(process.base_url) == (0, 0), "the SSE stream freed")


def test_a_stopping_process_completes_its_watches(watch_standin: str) -> None:
    """SIGTERM: once the drain delay is over, every watch completes (OK: reconnect elsewhere)
    instead of holding the shutdown grace open, and the process exits cleanly."""
    env = {"AIBRIDGE_SHUTDOWN_DRAIN_DELAY": "0.2", "AIBRIDGE_SHUTDOWN_GRACE": "30"}
    with (
        serve(watch_standin, env) as process,
        grpc.insecure_channel(process.grpc_address) as channel,
    ):
        stub = session_grpc.SessionServiceStub(channel)
        sessions = watch_sessions(stub, TOKENS["alice"], include_existing=True)
        timeline = watch_session(stub, TOKENS["alice"], session_id="old-alice")
        sessions.until(session_is("old-alice", S_EXISTING), "EXISTING")
        assert _live_gauges(process.base_url)[0] >= 1
        started = time.monotonic()
        sigterm(process)
        assert sessions.end() is None
        assert timeline.end() is None  # ENDED (the session is idle) or completed by the stop
        assert process.exit_code(within=20) == 0
        assert time.monotonic() - started < 15  # well within the 30 s grace
