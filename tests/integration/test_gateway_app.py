"""The HTTP surface: health, readiness, GraphiQL, GET queries, node round trips, federation."""

from __future__ import annotations

from gateway_helpers import serve_gateway

NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Session { sessionId } ... on Thread { threadId session { sessionId } }
  ... on Interception { interceptionId } ... on User { username } } }"""


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


async def test_node_round_trips_for_every_type(standin_url: str, tokens: dict[str, str]) -> None:
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        listing = await gw.data(
            "{ sessions(first: 3) { nodes { id sessionId initiator { id username }"
            " threads(first: 2) { nodes { id threadId } } } }"
            " interceptions(first: 3) { nodes { id interceptionId } } }"
        )
        sessions = [s for s in listing["sessions"]["nodes"] if s["threads"]["nodes"]]
        session = sessions[0]
        thread = session["threads"]["nodes"][-1]
        interception = listing["interceptions"]["nodes"][-1]
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
                interception["id"],
                {"__typename": "Interception", "interceptionId": interception["interceptionId"]},
            ),
            (
                session["initiator"]["id"],
                {"__typename": "User", "username": session["initiator"]["username"]},
            ),
        ]
        for global_id, expected in cases:
            data = await gw.data(NODE, {"id": global_id})
            assert data["node"] == {"id": global_id, **expected}


ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) { __typename
  ... on User { id username } ... on Session { id sessionId }
  ... on Interception { id interceptionId } } }"""


async def test_federation_entities_and_sdl(standin_url: str, tokens: dict[str, str]) -> None:
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        listing = await gw.data(
            "{ sessions(first: 1) { nodes { id sessionId initiator { id username } } }"
            " interceptions(first: 1) { nodes { id interceptionId } } }"
        )
        session = listing["sessions"]["nodes"][0]
        interception = listing["interceptions"]["nodes"][0]
        representations = [
            {"__typename": "User", "id": session["initiator"]["id"]},
            {"__typename": "Session", "id": session["id"]},
            {"__typename": "Interception", "id": interception["id"]},
        ]
        data = await gw.data(ENTITIES, {"r": representations})
        anonymous = await gw.query(ENTITIES, {"r": representations}, anonymous=True)
        sdl = await gw.query("{ _service { sdl } }", anonymous=True)
    assert data["_entities"] == [
        {"__typename": "User", **session["initiator"]},
        {"__typename": "Session", "id": session["id"], "sessionId": session["sessionId"]},
        {"__typename": "Interception", **interception},
    ]
    assert anonymous["data"]["_entities"] == [None, None, None]
    assert {e["extensions"]["code"] for e in anonymous["errors"]} == {"UNAUTHENTICATED"}
    assert '@key(fields: "id")' in sdl["data"]["_service"]["sdl"]
