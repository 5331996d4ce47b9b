"""`session(sessionId:)` answered by its `GET /sessions/{id}` alone when that has all it selects.

Each case runs a document whose data must not depend on the path taken next to its twin that
also selects `threadCount` (only the list item has it, so the twin takes the lookup plus the
detail, as every such query did before): the same data and errors, one call fewer, and the
estimate equal to the calls made.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import parse

from aibridge_graphql.schema import build_schema
from aibridge_graphql.schema.engine.estimate import estimate_upstream_calls
from aibridge_graphql.schema.engine.needs import needs_of
from aibridge_graphql.schema.node import LIST_ONLY
from aibridge_graphql.settings import Settings
from bench.soak import SESSION
from tests.support.gateway_fakes import (
    Era,
    FakeSession,
    FakeUpstream,
    gateway,
    populated,
    thread,
    user,
)

SETTINGS = Settings(upstream_url="http://upstream.invalid", retries=0)
SCHEMA = build_schema(SETTINGS)._schema

# Everything of a Session the detail response answers, and of its threads.
WHOLE = """query($id: String!) { session(sessionId: $id) {
  id sessionId client providers models startedAt endedAt metadata
  initiator { id username name avatarUrl }
  tokenUsage { inputTokens outputTokens cacheReadInputTokens cacheWriteInputTokens metadata }
  networkCalls { total blocked }
  networkDomainCount
  threads(first: 3) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id threadId prompt model session { id sessionId } } }
  }
  %s
} }"""
README_SESSION = SESSION  # the README's Session view, as the benchmarks send it


def _estimate(query: str, variables: dict[str, Any]) -> int:
    return estimate_upstream_calls(
        SCHEMA, parse(query), operation_name=None, variables=variables, settings=SETTINGS
    )


async def _run(
    fake: FakeUpstream,
    query: str,
    variables: dict[str, Any],
    token: str = "admin-token",  # noqa: S107 (a fake token of the fake upstream)
) -> tuple[dict[str, Any], list[str]]:
    fake.calls.clear()
    async with gateway(fake, SETTINGS) as gw:
        body = await gw.query(query, variables, token=token)
    return body, list(fake.calls)


def _without_thread_count(body: dict[str, Any]) -> dict[str, Any]:
    session = (body.get("data") or {}).get("session")
    if session is not None:
        session.pop("threadCount")
    return body


@pytest.mark.parametrize("era", ["sessions", "ai-gateway"])
async def test_one_detail_call_answers_what_the_lookup_and_detail_did(era: Era) -> None:
    fake = populated(sessions=6, era=era)
    variables = {"id": "session-004"}  # even: firewall calls in the ai-gateway era
    one, one_calls = await _run(fake, WHOLE % "", variables)
    two, two_calls = await _run(fake, WHOLE % "threadCount", variables)
    assert "errors" not in one, one
    assert one_calls == ["/sessions/session-004?limit=4"]
    assert sorted(two_calls) == [
        "/sessions/session-004?limit=4",
        "/sessions?limit=1&q=session_id%3A%22session-004%22",
    ]
    assert one == _without_thread_count(two)
    # The list's token summary has no metadata, and neither has the detail's copy of it.
    assert one["data"]["session"]["tokenUsage"]["metadata"] is None
    assert _estimate(WHOLE % "", variables) == 1
    assert _estimate(WHOLE % "threadCount", variables) == 2


async def test_the_readme_session_view_costs_one_call() -> None:
    fake = populated(sessions=3)
    body, calls = await _run(fake, README_SESSION, {"id": "session-001"})
    assert "errors" not in body, body
    assert len(body["data"]["session"]["threads"]["nodes"]) == 5
    assert calls == ["/sessions/session-001?limit=11"]
    assert _estimate(README_SESSION, {"id": "session-001"}) == 1


@pytest.mark.parametrize(
    ("session_id", "token"),
    [("nope", "admin-token"), ("session-001", "member-token")],
    ids=["unknown", "invisible to a member"],
)
async def test_not_found_is_the_lookups_not_found(session_id: str, token: str) -> None:
    fake = populated(sessions=3)
    variables = {"id": session_id}
    one, one_calls = await _run(fake, WHOLE % "", variables, token)
    two, _ = await _run(fake, WHOLE % "threadCount", variables, token)
    assert one == two
    assert one["data"] == {"session": None}
    (error,) = one["errors"]
    assert error["message"] == f"Session {session_id!r} not found."
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert one_calls == [f"/sessions/{session_id}?limit=4"]


@pytest.mark.parametrize("failure", [401, 403])
async def test_auth_failures_are_the_same_in_one_call(failure: int) -> None:
    fake = populated(sessions=3)
    fake.failures["/sessions"] = failure
    one, one_calls = await _run(fake, WHOLE % "", {"id": "session-001"})
    two, _ = await _run(fake, WHOLE % "threadCount", {"id": "session-001"})
    assert one == two
    assert one["data"] == {"session": None}
    assert len(one_calls) == 1


@pytest.mark.parametrize(
    "failure",
    [400, 404, 429, 500, 502, httpx.ReadTimeout("slow"), httpx.ConnectError("refused")],
)
async def test_a_failing_detail_leaves_the_session_to_the_lookup(
    failure: int | Exception,
) -> None:
    """The lookup may still answer (a bad cursor, a 5xx, a 404 that is not Coder's "Session not
    found."): the session comes from it, and the threads carry the detail's error, as before."""
    fake = populated(sessions=3)
    fake.failures["/sessions/"] = failure
    one, one_calls = await _run(fake, WHOLE % "", {"id": "session-001"})
    two, _ = await _run(fake, WHOLE % "threadCount", {"id": "session-001"})
    assert one == _without_thread_count(two)
    assert one["data"]["session"]["sessionId"] == "session-001"
    assert one["data"]["session"]["threads"] is None
    failed = sorted(e["path"][-1] for e in one["errors"])
    assert failed == ["networkDomainCount", "threads"]
    assert len(one_calls) == 2  # the detail, then the lookup


def _shared_fake() -> FakeUpstream:
    fake = FakeUpstream()
    for session_id in ("a/b", "(x) y", "."):
        rows = [thread(session_id, i) for i in range(2)]
        fake.sessions.append(FakeSession(session_id, user("alice"), rows, 1.0))
    return fake


@pytest.mark.parametrize("session_id", ["a/b", "(x) y", "."])
async def test_ids_the_path_cannot_carry_keep_the_lookup(session_id: str) -> None:
    """Coder's router hands such ids to the handler still encoded: its 404 would hide a session
    the lookup finds, so these keep both calls (and the threads their NOT_FOUND)."""
    fake = _shared_fake()
    body, calls = await _run(fake, README_SESSION, {"id": session_id})
    assert body["data"]["session"]["sessionId"] == session_id
    assert body["data"]["session"]["threads"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert len(calls) == 2
    assert _estimate(README_SESSION, {"id": session_id}) == 2


ESTIMATED = [
    # (document, calls): the estimate is what runs.
    (README_SESSION, 1),
    ("query($id: String!) { session(sessionId: $id) { sessionId } }", 1),
    ("query($id: String!) { session(sessionId: $id) { threadCount } }", 1),
    ("query($id: String!) { session(sessionId: $id) { lastPrompt threads { nodes { id } } } }", 2),
    (
        'query($id: String!) { session(sessionId: $id, initiator: "alice") { '
        "threads(first: 2) { nodes { id } } } }",
        2,
    ),
    ("query($id: String!) { session(sessionId: $id) { threads { totalCount } } }", 2),
    (
        "query($id: String!) { session(sessionId: $id) { "
        "threads(first: 2) { nodes { session { lastActiveAt } } } } }",
        2,
    ),
    (
        "query($id: String!) { session(sessionId: $id) { "
        "...F threads(first: 2) { nodes { id } } } } fragment F on Session { threadCount }",
        2,
    ),
    (
        "query($id: String!, $skip: Boolean!) { session(sessionId: $id) { "
        "threadCount @skip(if: $skip) threads(first: 2) { nodes { id } } } }",
        1,
    ),
    (
        "query($id: String!) { session(sessionId: $id) { "
        "a: threads(first: 2) { nodes { id } } b: threads(first: 3) { nodes { id } } } }",
        2,
    ),
    ("query($id: String!) { session(sessionId: $id) { threads(last: 2) { nodes { id } } } }", 2),
    (
        "query($id: String!) { session(sessionId: $id) { "
        "tokenUsage { cost { amount } } threads(first: 2) { nodes { id } } } }",
        2,
    ),
    ("query($id: String!) { session(sessionId: $id) { networkDomainCount } }", 1),
    (
        "query($id: String!) { session(sessionId: $id) { "
        "networkCallLogs(first: 2) { totalCount } threads(first: 2) { nodes { id } } } }",
        1,
    ),
]


@pytest.mark.parametrize(("query", "calls"), ESTIMATED)
async def test_the_estimate_is_what_runs(query: str, calls: int) -> None:
    fake = populated(sessions=3, era="ai-gateway")
    variables: dict[str, Any] = {"id": "session-002"}
    if "$skip" in query:
        variables["skip"] = True
    body, made = await _run(fake, query, variables)
    assert "errors" not in body, body
    assert len(made) == calls, made
    assert _estimate(query, variables) == calls


# What `GET /sessions/{id}` answers of a Session: every field but the list-only ones.
DETAIL_ANSWERS = {
    "id",
    "sessionId",
    "client",
    "initiator",
    "providers",
    "models",
    "startedAt",
    "endedAt",
    "tokenUsage",
    "metadata",
    "networkCalls",
    "threads",
    "networkCallLogs",
    "networkTopDomains",
    "networkDomainCount",
}


def list_only(type_name: str) -> set[str]:
    fields = SCHEMA.type_map[type_name].fields  # type: ignore[attr-defined]
    return {
        name
        for name, definition in fields.items()
        if (declared := needs_of(definition)) is not None and declared.marks & LIST_ONLY
    }


def test_every_session_field_is_answered_by_the_detail_or_marked_as_not() -> None:
    """A new Session field must be placed: in the detail response, or marked `LIST_ONLY`."""
    fields = set(SCHEMA.type_map["Session"].fields)  # type: ignore[attr-defined]
    assert list_only("Session") == {"lastActiveAt", "lastPrompt", "threadCount"}
    assert fields - list_only("Session") == DETAIL_ANSWERS
    assert list_only("ThreadConnection") == {"totalCount"}
    # The ways back to the same session: through its threads, and nothing else reads the
    # session's own item (ThreadConnection.totalCount is its thread count).
    assert set(SCHEMA.type_map["ThreadConnection"].fields) == {  # type: ignore[attr-defined]
        "edges",
        "pageInfo",
        "nodes",
        "totalCount",
    }


async def test_a_list_only_field_is_never_made_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the walk to miss a list-only field, it fails loudly rather than answer a guess."""
    monkeypatch.setattr("aibridge_graphql.schema.query.session_by_detail", lambda *_: True)
    fake = populated(sessions=3)
    body, calls = await _run(fake, WHOLE % "threadCount", {"id": "session-001"})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL_SERVER_ERROR"]
    assert body["data"] == {"session": None}
    assert calls == ["/sessions/session-001?limit=4"]
