"""`node`/`nodes` round trips and federation `_entities`/`_service` (fake upstream)."""

from __future__ import annotations

from typing import Any

from tests.support.gateway_fakes import gateway, populated

LIST = """{
  sessions(first: 2) { nodes { id sessionId initiator { id username }
    threads(first: 2) { nodes { id threadId } } } }
  interceptions(first: 3) { nodes { id interceptionId model initiator { id } } }
}"""

NODE = """query($id: ID!) { node(id: $id) {
  __typename id
  ... on Session { sessionId }
  ... on Thread { threadId session { sessionId } }
  ... on Interception { interceptionId }
  ... on User { username }
} }"""


async def _listing(gw: Any) -> dict[str, Any]:
    body = await gw.query(LIST)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def test_every_node_type_round_trips_in_a_fresh_request() -> None:
    fake = populated(sessions=4, threads=3, interceptions=5)
    async with gateway(fake) as gw:
        data = await _listing(gw)
        session = data["sessions"]["nodes"][1]
        thread = session["threads"]["nodes"][1]
        interception = data["interceptions"]["nodes"][2]
        user = session["initiator"]
        expected = [
            (session["id"], {"__typename": "Session", "sessionId": session["sessionId"]}),
            (
                thread["id"],
                {
                    "__typename": "Thread",
                    "threadId": thread["threadId"],
                    "session": {"sessionId": session["sessionId"]},
                },
            ),
            (
                interception["id"],
                {"__typename": "Interception", "interceptionId": interception["interceptionId"]},
            ),
            (user["id"], {"__typename": "User", "username": user["username"]}),
        ]
        for global_id, fields in expected:
            fake.calls.clear()
            body = await gw.query(NODE, {"id": global_id})
            assert "errors" not in body, body
            assert body["data"]["node"] == {"id": global_id, **fields}
            # Session, interception, user: one call; thread: its page and its session.
            assert len(fake.calls) == (2 if fields["__typename"] == "Thread" else 1)


async def test_interception_node_uses_a_one_microsecond_window() -> None:
    fake = populated(interceptions=5)
    async with gateway(fake) as gw:
        data = await _listing(gw)
        target = data["interceptions"]["nodes"][0]
        fake.calls.clear()
        body = await gw.query(NODE, {"id": target["id"]})
    assert body["data"]["node"]["interceptionId"] == target["interceptionId"]
    (call,) = fake.calls
    assert call.startswith("/interceptions?")
    assert "started_after" in call
    assert "started_before" in call


async def test_nodes_keeps_order_and_isolates_failures() -> None:
    fake = populated(sessions=3)
    async with gateway(fake) as gw:
        data = await _listing(gw)
        session_id = data["sessions"]["nodes"][0]["id"]
        user_id = data["sessions"]["nodes"][0]["initiator"]["id"]
        body = await gw.query(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            {"ids": [user_id, "garbage", session_id, "00000000-0000-0000-0000-000000000000"]},
        )
    assert body["data"]["nodes"] == [{"id": user_id}, None, {"id": session_id}, None]
    codes = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert codes == {("nodes", 1): "BAD_USER_INPUT", ("nodes", 3): "NOT_FOUND"}


ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) {
  __typename
  ... on User { id username }
  ... on Session { id sessionId }
  ... on Interception { id interceptionId }
} }"""


async def test_federation_entities_resolve_through_the_loaders() -> None:
    fake = populated(sessions=3, interceptions=3)
    async with gateway(fake) as gw:
        data = await _listing(gw)
        session = data["sessions"]["nodes"][0]
        interception = data["interceptions"]["nodes"][0]
        representations = [
            {"__typename": "User", "id": session["initiator"]["id"]},
            {"__typename": "Session", "id": session["id"]},
            {"__typename": "Interception", "id": interception["id"]},
        ]
        body = await gw.query(ENTITIES, {"r": representations})
        assert "errors" not in body, body
        assert body["data"]["_entities"] == [
            {
                "__typename": "User",
                "id": session["initiator"]["id"],
                "username": session["initiator"]["username"],
            },
            {"__typename": "Session", "id": session["id"], "sessionId": session["sessionId"]},
            {
                "__typename": "Interception",
                "id": interception["id"],
                "interceptionId": interception["interceptionId"],
            },
        ]
        anonymous = await gw.query(ENTITIES, {"r": representations}, token=None)
    assert anonymous["data"]["_entities"] == [None, None, None]
    assert {e["extensions"]["code"] for e in anonymous["errors"]} == {"UNAUTHENTICATED"}


async def test_service_sdl_declares_federation_two_keys() -> None:
    fake = populated()
    async with gateway(fake) as gw:
        body = await gw.query("{ _service { sdl } }", token=None)
    sdl = body["data"]["_service"]["sdl"]
    assert 'url: "https://specs.apollo.dev/federation/v2.11"' in sdl
    for type_name in ("User", "Session", "Interception"):
        assert f'type {type_name} implements Node @key(fields: "id")' in sdl
    assert fake.calls == []


async def test_user_connections_are_the_lists_filtered_by_initiator() -> None:
    fake = populated(sessions=6, interceptions=6)
    async with gateway(fake) as gw:
        body = await gw.query(
            """{ sessions(first: 1) { nodes { initiator { username
                 sessions(first: 10) { totalCount nodes { initiator { username } } }
                 interceptions(first: 10) { totalCount nodes { initiator { username } } } } } } }"""
        )
    assert "errors" not in body, body
    owner = body["data"]["sessions"]["nodes"][0]["initiator"]
    assert owner["sessions"]["totalCount"] == 3
    assert owner["interceptions"]["totalCount"] == 3
    for kind in ("sessions", "interceptions"):
        assert {n["initiator"]["username"] for n in owner[kind]["nodes"]} == {owner["username"]}


async def test_filtered_sessions_refetch_the_exact_thread_count_only_when_asked() -> None:
    fake = populated(sessions=3, threads=4)
    async with gateway(fake) as gw:
        cheap = await gw.query(
            '{ sessions(filter: {model: "claude-sonnet-4"}) { nodes { threads(first: 1) '
            "{ nodes { threadId } } } } }"
        )
        assert "errors" not in cheap
        assert len(fake.calls) == 4
        fake.calls.clear()
        counted = await gw.query(
            '{ sessions(filter: {model: "claude-sonnet-4"}) { nodes { threads(first: 1) '
            "{ totalCount } } } }"
        )
    assert [n["threads"]["totalCount"] for n in counted["data"]["sessions"]["nodes"]] == [4, 4, 4]
    # The list, three thread pages, and three unfiltered session lookups.
    assert len(fake.calls) == 7
