"""Session threads paged both ways through the gateway, exactly, despite the `before_id` quirk."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gateway_fakes import FakeSession, FakeUpstream, gateway, thread, user

THREADS = """
query($sid: String!, $first: Int, $after: String, $last: Int, $before: String) {
  session(sessionId: $sid) {
    threads(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { threadId } }
    }
  }
}
"""


def _fake(count: int) -> FakeUpstream:
    fake = FakeUpstream()
    fake.sessions.append(
        FakeSession("big", user("alice"), [thread("big", i) for i in range(count)], 1.0)
    )
    return fake


def _ids(fake: FakeUpstream) -> list[str]:
    return [t["id"] for t in fake.sessions[0].threads]


async def _page(gw: Any, **variables: Any) -> dict[str, Any]:
    body = await gw.query(THREADS, {"sid": "big", **variables})
    assert "errors" not in body, body
    connection: dict[str, Any] = body["data"]["session"]["threads"]
    return connection


@pytest.mark.parametrize("count", [0, 1, 7, 450])
async def test_walk_forward_covers_every_thread_once(count: int) -> None:
    fake = _fake(count)
    async with gateway(fake) as gw:
        seen: list[str] = []
        after = None
        for step in range(100):
            page = await _page(gw, first=97, after=after)
            seen += [edge["node"]["threadId"] for edge in page["edges"]]
            info = page["pageInfo"]
            assert page["totalCount"] == count
            assert info["hasPreviousPage"] is (step > 0)
            assert info["endCursor"] == (page["edges"][-1]["cursor"] if page["edges"] else None)
            if not info["hasNextPage"]:
                break
            after = info["endCursor"]
        assert seen == _ids(fake)


@pytest.mark.parametrize("count", [1, 7, 199, 200, 201, 450])
async def test_walk_backward_covers_every_thread_once(count: int) -> None:
    fake = _fake(count)
    async with gateway(fake) as gw:
        seen: list[str] = []
        before = None
        for step in range(100):
            page = await _page(gw, last=13, before=before)
            seen = [edge["node"]["threadId"] for edge in page["edges"]] + seen
            info = page["pageInfo"]
            assert info["hasNextPage"] is (step > 0)
            if not info["hasPreviousPage"]:
                break
            before = info["startCursor"]
        assert seen == _ids(fake)


async def test_before_a_cursor_returns_the_threads_right_before_it() -> None:
    fake = _fake(450)
    ids = _ids(fake)
    async with gateway(fake) as gw:
        first_page = await _page(gw, first=1, after=None)
        assert first_page["edges"][0]["node"]["threadId"] == ids[0]
        # A cursor deep in the session: the 3 threads right before thread 300.
        forward = await _page(gw, first=100, after=None)
        for _ in range(2):
            forward = await _page(gw, first=100, after=forward["pageInfo"]["endCursor"])
        cursor_of_300 = (await _page(gw, first=1, after=forward["pageInfo"]["endCursor"]))["edges"][
            0
        ]["cursor"]
        fake.calls.clear()
        page = await _page(gw, last=3, before=cursor_of_300)
        assert [edge["node"]["threadId"] for edge in page["edges"]] == ids[297:300]
        assert page["pageInfo"]["hasPreviousPage"] is True
        assert page["pageInfo"]["hasNextPage"] is True
        # One session lookup, one before_id call (200 rows), one after_id call to the cursor.
        thread_calls = fake.calls_to("/sessions/big")
        assert len(thread_calls) == 2
        assert "before_id" in thread_calls[0]
        assert "after_id" in thread_calls[1]


async def test_last_without_before_is_the_end_of_the_session() -> None:
    fake = _fake(7)
    async with gateway(fake) as gw:
        page = await _page(gw, last=2)
        assert [e["node"]["threadId"] for e in page["edges"]] == _ids(fake)[5:]
        assert page["pageInfo"] == {
            "hasNextPage": False,
            "hasPreviousPage": True,
            "startCursor": page["edges"][0]["cursor"],
            "endCursor": page["edges"][1]["cursor"],
        }
        assert len(fake.calls_to("/sessions/big")) == 1


async def test_zero_sized_pages_report_the_neighbours() -> None:
    fake = _fake(3)
    async with gateway(fake) as gw:
        page = await _page(gw, first=0)
        assert page["edges"] == []
        assert page["pageInfo"]["hasNextPage"] is True
        assert page["pageInfo"]["startCursor"] is None
        back = await _page(gw, last=0)
        assert back["edges"] == []
        assert back["pageInfo"]["hasPreviousPage"] is True


async def test_bad_thread_arguments_are_bad_user_input_and_siblings_survive() -> None:
    fake = _fake(3)
    async with gateway(fake) as gw:
        body = await gw.query(
            """{ session(sessionId: "big") {
                 sessionId
                 both: threads(first: 1, last: 1) { totalCount }
                 big: threads(first: 500) { totalCount }
                 bad: threads(after: "nonsense") { totalCount }
                 ok: threads(first: 1) { totalCount }
            } }"""
        )
    session = body["data"]["session"]
    assert session["sessionId"] == "big"
    assert session["ok"] == {"totalCount": 3}
    assert session["both"] is None
    assert session["big"] is None
    assert session["bad"] is None
    codes = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert codes == {
        ("session", "both"): "BAD_USER_INPUT",
        ("session", "big"): "BAD_USER_INPUT",
        ("session", "bad"): "BAD_USER_INPUT",
    }
