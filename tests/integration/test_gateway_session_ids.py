"""Sessions whose client ids hold `:`, `@`, `+`, `=` and spaces, through the gateway, in both eras.

The stand-in, like Coder's router, matches the raw path: an id reaches its session only when
just what a path segment needs (here: the space) is percent-encoded. Every such session must
come back equal to REST through `session(sessionId:)`, `node(id:)` and its threads.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gateway_helpers import (
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
