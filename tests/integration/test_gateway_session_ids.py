"""Sessions whose client ids hold `:`, `@`, `+`, `=` and spaces, through the gateway, in both eras.

The stand-in, like Coder's router, matches the raw path: an id reaches its session only when
just what a path segment needs (here: the space) is percent-encoded. Every such session must
come back equal to REST through `session(sessionId:)`, `node(id:)` and its threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.eras import API_ERAS
from aibridge_graphql.standin.records import (
    InterceptionRecord,
    TokenUsageRecord,
    UserRecord,
    insert_api_key,
    insert_interceptions,
    insert_providers,
    insert_users,
)
from aibridge_graphql.standin.store import open_database
from tests.support.gateway_helpers import (
    SESSION_FIELDS,
    THREAD_FIELDS,
    TIME_KEYS,
    normalize_times,
    rest_client,
    rest_json,
    serve_gateway,
    session,
    thread,
)
from tests.support.servers import run_app_in_thread

AWKWARD = (":", "@", "+", "=", " ")

BY_ID = f"""query($id: String!) {{ session(sessionId: $id) {{ id {SESSION_FIELDS}
  threads(first: 100) {{ totalCount nodes {{ id {THREAD_FIELDS} session {{ sessionId }} }} }}
}} }}"""
NODE = f"""query($s: ID!, $t: ID!) {{
  s: node(id: $s) {{ ... on Session {{ {SESSION_FIELDS} }} }}
  t: node(id: $t) {{ ... on Thread {{ {THREAD_FIELDS} session {{ sessionId }} }} }} }}"""


def _rest_path(session_id: str) -> str:
    # Written out, not the gateway's encoder: only the space needs escaping among these.
    return "/sessions/" + session_id.replace(" ", "%20")


def _same(got: Any, expected: Any) -> None:
    assert normalize_times(got, TIME_KEYS) == normalize_times(expected, TIME_KEYS)


async def test_awkward_session_ids_equal_rest(standin_url: str, tokens: dict[str, str]) -> None:
    token = tokens["admin"]
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        listed = (await rest_json(rest, "/sessions", limit=1000))["sessions"]
        awkward = [raw for raw in listed if any(c in raw["id"] for c in AWKWARD)]
        assert {c for raw in awkward for c in AWKWARD if c in raw["id"]} == set(AWKWARD), (
            "the seed must have session ids holding each of : @ + = and a space"
        )
        # The stand-in matches raw paths, as Coder does: over-encoding (`%3A`) finds nothing.
        colon = next(raw["id"] for raw in awkward if ":" in raw["id"])
        over = await rest.get("/sessions/" + quote(colon, safe=""), params={"limit": 1})
        assert over.status_code == 404, over.text
        # Bounded: the first sessions with each character and a few more.
        picked = {next(raw["id"] for raw in awkward if c in raw["id"]) for c in AWKWARD}
        picked |= {raw["id"] for raw in awkward[:8]}
        for raw in (r for r in awkward if r["id"] in picked):
            detail = await rest_json(rest, _rest_path(raw["id"]), limit=200)
            expected_threads = [
                {**thread(t), "session": {"sessionId": raw["id"]}} for t in detail["threads"]
            ]
            assert expected_threads, raw["id"]

            found = (await gw.data(BY_ID, {"id": raw["id"]}))["session"]
            assert found is not None, raw["id"]
            threads = found.pop("threads")
            global_id = found.pop("id")
            _same(found, session(raw))
            assert threads["totalCount"] == len(expected_threads)
            _same(
                [{k: v for k, v in t.items() if k != "id"} for t in threads["nodes"]],
                expected_threads,
            )

            again = await gw.data(NODE, {"s": global_id, "t": threads["nodes"][-1]["id"]})
            _same(again["s"], session(raw))
            _same(again["t"], expected_threads[-1])
    assert {c for session_id in picked for c in AWKWARD if c in session_id} == set(AWKWARD)


# -- one session id, two users --------------------------------------------------------------

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
S = 1_000_000
SHARED = "shared-client-session"
EARLY = UserRecord("00000000-0000-4000-8000-0000000000a1", "early", "e@x.invalid", "E", "", "owner")
LATE = UserRecord("00000000-0000-4000-8000-0000000000a2", "late", "l@x.invalid", "", "", "member")
TOKENS = {
    EARLY.username: "EarlyToken-abcdefghijklmnopqrstuv",
    LATE.username: "LateTokens-abcdefghijklmnopqrstuv",
}
DETAIL_FIELDS = """id sessionId client providers models startedAt endedAt metadata
  initiator { id username name avatarUrl }
  tokenUsage { inputTokens outputTokens cacheReadInputTokens cacheWriteInputTokens metadata }
  networkCalls { total blocked }
  threads(first: 10) { nodes { id threadId model session { id sessionId } } }"""
SHARED_QUERY = (
    "query($id: String!, $who: String) { session(sessionId: $id, initiator: $who) { %s } }"
)


def _root(n: int, user: UserRecord, start: int, model: str) -> InterceptionRecord:
    usage = TokenUsageRecord(
        f"00000000-0000-4000-8000-{100 + n:012d}", "r", n, 2 * n, 0, 0, {"c": n}, start + 10
    )
    return InterceptionRecord(
        id=f"00000000-0000-4000-8000-{n:012d}",
        api_key_id=None,
        initiator_id=user.id,
        provider="anthropic",
        provider_name="anthropic",
        model=model,
        client="Zed" if user is EARLY else "Codex",
        metadata={"who": user.username},
        started_at=start,
        ended_at=start + S,
        client_session_id=SHARED,
        thread_parent_id=None,
        thread_root_id=None,
        credential_kind="centralized",
        credential_hint="",
        token_usages=(usage,),
    )


@pytest.fixture(scope="module", params=list(API_ERAS))
def shared_standin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A stand-in where two users share one client session id; `late` was active last."""
    path = tmp_path_factory.mktemp("shared") / "shared.db"
    records = [
        _root(1, EARLY, T0, "m-early"),
        _root(2, EARLY, T0 + 10 * S, "m-early"),
        _root(3, LATE, T0 + 20 * S, "m-late"),
    ]
    with contextlib.closing(open_database(path)) as conn:
        insert_users(conn, [EARLY, LATE])
        for user in (EARLY, LATE):
            insert_api_key(conn, user.id, TOKENS[user.username], 2**62)
        insert_providers(conn, [("anthropic", "anthropic")])
        insert_interceptions(conn, records)
        conn.commit()
    with run_app_in_thread(lambda: create_app(path, api_era=request.param)) as url:
        yield url


async def test_a_session_id_two_users_share_in_one_call(shared_standin: str) -> None:
    """Coder's detail shows the session a lookup by id finds (the most recently active one):
    the same data as the lookup and detail together, in one call; `initiator` picks the other."""
    async with serve_gateway(shared_standin, TOKENS["early"]) as gw:
        one = (await gw.data(SHARED_QUERY % DETAIL_FIELDS, {"id": SHARED}))["session"]
        one_calls = list(gw.calls)
        gw.calls.clear()
        two = await gw.data(SHARED_QUERY % (DETAIL_FIELDS + " threadCount"), {"id": SHARED})
        two_calls = list(gw.calls)
        gw.calls.clear()
        early = await gw.data(SHARED_QUERY % DETAIL_FIELDS, {"id": SHARED, "who": "early"})
        early_calls = list(gw.calls)
    assert len(one_calls) == 1
    assert one_calls[0].startswith(f"/sessions/{SHARED}?")
    assert len(two_calls) == 2
    assert len(early_calls) == 2
    assert two["session"].pop("threadCount") == 1
    assert one == two["session"]
    assert one["initiator"]["username"] == "late"
    assert one["models"] == ["m-late"]
    assert one["metadata"] == {"who": "late"}
    assert one["tokenUsage"]["inputTokens"] == 3
    assert one["tokenUsage"]["metadata"] is None
    assert {t["session"]["id"] for t in one["threads"]["nodes"]} == {one["id"]}
    session = early["session"]
    assert session["initiator"]["username"] == "early"
    assert session["id"] != one["id"]
    assert session["tokenUsage"]["inputTokens"] == 1 + 2

    # Coder's detail lists the threads of the session id, whoever made them, either way.
    def ids(found: dict[str, Any]) -> list[str]:
        return [t["threadId"] for t in found["threads"]["nodes"]]

    assert ids(session) == ids(one)
    assert len(ids(one)) == 3
