"""The HTTP surface: health, readiness, GraphiQL, GET queries, node round trips, federation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from aibridge_graphql.core.refs import InterceptionRef
from aibridge_graphql.schema.ids import encode_global_id
from aibridge_graphql.standin.eras import ApiEra
from tests.support.eras import expect_interceptions, has_interceptions
from tests.support.gateway_helpers import Gateway, serve_gateway

NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Session { sessionId } ... on Thread { threadId session { sessionId } }
  ... on Interception { interceptionId } ... on User { username } } }"""


async def _some_interception(gw: Gateway, era: ApiEra, thread: dict[str, Any]) -> dict[str, Any]:
    """`{id, interceptionId}` of an interception: listed, or (ai-gateway) a thread's root's.

    In the ai-gateway era the list is UPSTREAM_UNSUPPORTED, so the id is built from the thread.
    """
    body = await gw.query("{ interceptions(first: 1) { nodes { id interceptionId } } }")
    if expect_interceptions(era, body, "interceptions"):
        node: dict[str, Any] = body["data"]["interceptions"]["nodes"][0]
        return node
    ref = InterceptionRef(
        id=UUID(thread["threadId"]),
        initiator_id=UUID(thread["initiator"]),
        started_at=datetime.fromisoformat(thread["startedAt"].replace("Z", "+00:00")),
    )
    return {"id": encode_global_id(ref), "interceptionId": thread["threadId"]}


async def test_health_and_readiness(standin_url: str) -> None:
    async with serve_gateway(standin_url) as gw:
        alive = await gw.http.get("/healthz")
        ready = await gw.http.get("/readyz")
        assert alive.status == 200
        assert ready.status == 200
        assert (await ready.json())["status"] == "ready"


async def test_graphiql_in_a_browser_and_get_queries(
    standin_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(standin_url) as gw:
        page = await gw.http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status == 200
        assert "graphiql" in (await page.text()).lower()
        response = await gw.http.get(
            "/graphql",
            params={"query": "{ sessions(first: 1) { totalCount } }"},
            headers={"Coder-Session-Token": tokens["admin"], "Accept": "application/json"},
        )
        body = await response.json()
    assert body["data"]["sessions"]["totalCount"] > 0


async def test_graphiql_off(standin_url: str) -> None:
    async with serve_gateway(standin_url, graphiql=False) as gw:
        page = await gw.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status == 404


async def test_node_round_trips_for_every_type(
    api_era: ApiEra, standin_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        listing = await gw.data(
            "{ sessions(first: 3) { nodes { id sessionId initiator { id username }"
            " threads(first: 2) { nodes { id threadId startedAt } } } } }"
        )
        sessions = [s for s in listing["sessions"]["nodes"] if s["threads"]["nodes"]]
        session = sessions[0]
        thread = session["threads"]["nodes"][-1]
        interception = await _some_interception(
            gw, api_era, {**thread, "initiator": session["initiator"]["id"]}
        )
        cases = [
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
                session["initiator"]["id"],
                {"__typename": "User", "username": session["initiator"]["username"]},
            ),
        ]
        for global_id, expected in cases:
            data = await gw.data(NODE, {"id": global_id})
            assert data["node"] == {"id": global_id, **expected}
        body = await gw.query(NODE, {"id": interception["id"]})
    if expect_interceptions(api_era, body, "node"):
        assert body["data"]["node"] == {"__typename": "Interception", **interception}


ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) { __typename
  ... on User { id username } ... on Session { id sessionId }
  ... on Interception { id interceptionId } } }"""


async def test_federation_entities_and_sdl(
    api_era: ApiEra, standin_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        listing = await gw.data(
            "{ sessions(first: 1) { nodes { id sessionId initiator { id username }"
            " threads(first: 1) { nodes { threadId startedAt } } } } }"
        )
        session = listing["sessions"]["nodes"][0]
        thread = session["threads"]["nodes"][0]
        interception = await _some_interception(
            gw, api_era, {**thread, "initiator": session["initiator"]["id"]}
        )
        representations = [
            {"__typename": "User", "id": session["initiator"]["id"]},
            {"__typename": "Session", "id": session["id"]},
            {"__typename": "Interception", "id": interception["id"]},
        ]
        body = await gw.query(ENTITIES, {"r": representations})
        anonymous = await gw.query(ENTITIES, {"r": representations}, anonymous=True)
        sdl = await gw.query("{ _service { sdl } }", anonymous=True)
    assert body["data"]["_entities"][:2] == [
        {"__typename": "User", **session["initiator"]},
        {"__typename": "Session", "id": session["id"], "sessionId": session["sessionId"]},
    ]
    if expect_interceptions(api_era, body, "_entities.2"):
        assert "errors" not in body, body["errors"]
        assert body["data"]["_entities"][2] == {"__typename": "Interception", **interception}
    assert anonymous["data"]["_entities"] == [None, None, None]
    codes = {".".join(map(str, e["path"])): e["extensions"]["code"] for e in anonymous["errors"]}
    assert codes == {
        "_entities.0": "UNAUTHENTICATED",
        "_entities.1": "UNAUTHENTICATED",
        # Without interceptions the gateway knows before asking who the caller is.
        "_entities.2": "UNAUTHENTICATED" if has_interceptions(api_era) else "UPSTREAM_UNSUPPORTED",
    }
    assert '@key(fields: "id")' in sdl["data"]["_service"]["sdl"]
