"""GraphQL over HTTP (issue 7, item 5): `application/graphql-response+json` by negotiation, with 4xx
and no `data` for request errors, while `application/json` keeps answering 200 as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aibridge_graphql.server.apq import sha256_hex
from tests.support.gateway_helpers import Gateway, serve_gateway

GRJ = "application/graphql-response+json"
JSON = "application/json"


async def post(gw: Gateway, payload: dict[str, Any], accept: str | None, **headers: str) -> Any:
    if accept is not None:
        headers["Accept"] = accept
    if gw.default_token:
        headers.setdefault("Coder-Session-Token", gw.default_token)
    response = await gw.http.post("/graphql", json=payload, headers=headers)
    return response.status, response.headers["Content-Type"], await response.json(content_type=None)


REQUEST_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "parse": ({"query": "{"}, "GRAPHQL_PARSE_FAILED"),
    "validation": ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    "unknown-fragment": ({"query": "{ models ...Missing }"}, "GRAPHQL_VALIDATION_FAILED"),
    "variable-coercion": (
        {"query": "query($n: Int) { sessions(first: $n) { totalCount } }", "variables": {"n": "x"}},
        "BAD_USER_INPUT",
    ),
    "missing-variable": (
        {"query": "query($id: ID!) { node(id: $id) { id } }"},
        "BAD_USER_INPUT",
    ),
    "depth-limit": (
        {"query": "{" + " sessions { nodes {" * 7 + " id" + " } }" * 7 + " }"},
        "GRAPHQL_VALIDATION_FAILED",
    ),
}


@pytest.mark.parametrize("name", sorted(REQUEST_ERRORS))
async def test_request_errors_are_400_without_data_under_graphql_response_json(
    standin_url: str, tokens: dict[str, str], name: str
) -> None:
    payload, code = REQUEST_ERRORS[name]
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        status, content_type, body = await post(gw, payload, GRJ)
        legacy_status, legacy_type, legacy = await post(gw, payload, JSON)
        calls = list(gw.calls)
    assert status == 400, body
    assert content_type.startswith(GRJ)
    assert "data" not in body
    assert {error["extensions"]["code"] for error in body["errors"]} == {code}
    # application/json is unchanged for existing clients: 200 and `data: null`.
    assert legacy_status == 200
    assert legacy_type.startswith(JSON)
    assert legacy == {"data": None, **body}
    assert calls == []


async def test_success_and_field_errors_are_200_under_both(
    standin_url: str, tokens: dict[str, str]
) -> None:
    query = {"query": '{ models bad: sessions(after: "!!!") { totalCount } }'}
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        for accept in (GRJ, JSON, None, "*/*", f"{GRJ}, {JSON};q=0.9"):
            status, content_type, body = await post(gw, query, accept)
            assert status == 200, (accept, body)
            expected = GRJ if accept and accept.startswith(GRJ) else JSON
            assert content_type.split(";")[0] == expected
            assert "charset=utf-8" in content_type
            assert body["data"]["models"]
            assert body["data"]["bad"] is None
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_anonymous_field_errors_stay_200_with_data(standin_url: str) -> None:
    async with serve_gateway(standin_url) as gw:
        status, _, body = await post(gw, {"query": "{ models }"}, GRJ)
    assert status == 200
    assert body["data"] == {"models": None}
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_persisted_query_miss_stays_200_for_apollos_link(
    standin_url: str, tokens: dict[str, str]
) -> None:
    ext = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex("{ models }")}}
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        status, content_type, body = await post(gw, {"extensions": ext}, f"{GRJ}, {JSON};q=0.9")
    assert status == 200
    assert content_type.startswith(GRJ)
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_http_refusals_use_the_negotiated_media_type(
    standin_url: str, tokens: dict[str, str]
) -> None:
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        response = await gw.http.post(
            "/graphql",
            data=b"5",
            headers={"Content-Type": JSON, "Accept": GRJ, "Coder-Session-Token": tokens["admin"]},
        )
        body = json.loads(await response.text())
    assert response.status == 400
    assert response.headers["Content-Type"].startswith(GRJ)
    assert body == {
        "errors": [
            {
                "message": "The request body must be a JSON object.",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }


async def test_graphiql_still_opens_in_a_browser(standin_url: str) -> None:
    async with serve_gateway(standin_url) as gw:
        page = await gw.http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_websocket_operations_are_refused(
    standin_url: str, tokens: dict[str, str], protocol: str
) -> None:
    # GraphQL over HTTP only: over a WebSocket a connection's operations would share one
    # context (loaders, deadline, call budget). The socket is closed with graphql-ws's code.
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        ws = await gw.http.ws_connect("/graphql", protocols=[protocol])
        message = await ws.receive()
        await ws.close()
    assert message.data == 4406
    assert message.extra == "Subprotocol not acceptable"


MUTATION = (
    "mutation { clearGroupAIBudget(input: {groupId: "
    '"00000000-0000-4000-8000-000000000001"}) { cleared } }'
)


@pytest.mark.parametrize("accept", [GRJ, JSON])
async def test_a_mutation_over_get_is_405_and_never_runs(
    standin_url: str, tokens: dict[str, str], accept: str
) -> None:
    headers = {"Accept": accept, "Coder-Session-Token": tokens["admin"]}
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        response = await gw.http.get("/graphql", params={"query": MUTATION}, headers=headers)
        body = json.loads(await response.text())
        calls = list(gw.calls)
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert body["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert calls == []


@pytest.mark.parametrize("persisted_only", [False, True])
async def test_a_persisted_mutation_runs_over_post_only(
    standin_url: str, tokens: dict[str, str], tmp_path: Path, persisted_only: bool, api_era: str
) -> None:
    sha = sha256_hex(MUTATION)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({sha: MUTATION}), encoding="utf-8")
    ext = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    headers = {"Accept": JSON, "Coder-Session-Token": tokens["admin"]}
    settings = {"apq_manifest": str(manifest), "apq_persisted_only": persisted_only}
    async with serve_gateway(standin_url, tokens["admin"], **settings) as gw:
        by_hash = {"extensions": json.dumps(ext)}
        response = await gw.http.get("/graphql", params=by_hash, headers=headers)
        refused = json.loads(await response.text())
        assert gw.calls == []
        # The same hash over POST runs it: the sessions era has no budgets (no call is made), the
        # AI Gateway era's Coder knows no such group.
        status, _, ran = await post(gw, {"extensions": ext}, JSON)
        calls = list(gw.calls)
    assert response.status == 405, refused
    assert response.headers["Allow"] == "POST"
    assert refused["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert status == 200
    if api_era == "sessions":
        assert ran["errors"][0]["extensions"]["code"] == "UPSTREAM_UNSUPPORTED"
        assert not [call for call in calls if "/ai/" in call]
    else:
        assert ran["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert calls == ["/api/v2/groups/00000000-0000-4000-8000-000000000001/ai/budget"]
