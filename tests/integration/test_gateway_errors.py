"""Error codes with partial data: the real stand-in (400, 401, 404), a faulty hop in front of it
(403, 5xx) and a dead upstream."""

from __future__ import annotations

import socket
import uuid
from typing import Any

from aibridge_graphql.core.refs import SessionRef, ThreadRef
from aibridge_graphql.schema.ids import encode_cursor, encode_global_id
from aibridge_graphql.standin.eras import ApiEra
from tests.support.eras import expect_interceptions, has_interceptions
from tests.support.gateway_helpers import faulty_proxy, rest_client, serve_gateway
from tests.support.servers import run_app_in_thread


def _by_path(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {".".join(map(str, e["path"])): e for e in body["errors"]}


async def test_bad_filter_is_bad_user_input_with_upstream_validations(
    api_era: ApiEra, standin_url: str, tokens: dict[str, str]
) -> None:
    token = tokens["admin"]
    query = """{ ok: sessions(first: 1) { totalCount }
      bad: sessions(filter: {providerName: "no-such-provider"}) { totalCount }
      models }"""
    async with serve_gateway(standin_url, token) as gw, rest_client(standin_url, token) as rest:
        body = await gw.query(query)
        upstream = await rest.get("/sessions", params={"q": 'provider_name:"no-such-provider"'})
    assert body["data"]["ok"]["totalCount"] > 0
    assert body["data"]["models"]
    if api_era == "ai-gateway":
        # Since coder/coder#28966 an unknown provider name is a filter matching nothing.
        assert upstream.status_code == 200
        assert body["data"]["bad"] == {"totalCount": upstream.json()["count"]} == {"totalCount": 0}
        assert "errors" not in body, body["errors"]
        return
    assert upstream.status_code == 400
    assert body["data"]["bad"] is None
    error = _by_path(body)["bad"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["validations"] == upstream.json()["validations"]
    assert error["message"].startswith(upstream.json()["message"])


async def test_unknown_cursor_is_bad_user_input(
    api_era: ApiEra, standin_url: str, tokens: dict[str, str]
) -> None:
    cursor = encode_cursor("Interception", str(uuid.uuid4()))
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        body = await gw.query(f'{{ interceptions(after: "{cursor}") {{ totalCount }} models }}')
    assert body["data"]["interceptions"] is None
    assert body["data"]["models"]
    if expect_interceptions(api_era, body, "interceptions"):
        error = _by_path(body)["interceptions"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "Invalid pagination cursor." in error["message"]


async def test_missing_or_bad_token_is_unauthenticated(
    api_era: ApiEra, standin_url: str, tokens: dict[str, str]
) -> None:
    query = "{ sessions { totalCount } interceptions { totalCount } models clients }"
    async with serve_gateway(standin_url) as gw:
        anonymous = await gw.query(query, anonymous=True)
        wrong = await gw.query(query, token="abcdefghij-0123456789012345678901")
    for body in (anonymous, wrong):
        assert body["data"] == {
            "sessions": None,
            "interceptions": None,
            "models": None,
            "clients": None,
        }
        # Without interceptions the gateway knows before asking: unsupported, not unauthenticated.
        codes = {k: e["extensions"]["code"] for k, e in _by_path(body).items()}
        assert codes == {
            "sessions": "UNAUTHENTICATED",
            "interceptions": "UNAUTHENTICATED"
            if has_interceptions(api_era)
            else "UPSTREAM_UNSUPPORTED",
            "models": "UNAUTHENTICATED",
            "clients": "UNAUTHENTICATED",
        }
        expect_interceptions(api_era, body, "interceptions")


async def test_bearer_token_is_accepted(standin_url: str, tokens: dict[str, str]) -> None:
    async with serve_gateway(standin_url) as gw:
        response = await gw.http.post(
            "/graphql",
            json={"query": "{ sessions(first: 1) { totalCount } }"},
            headers={"Authorization": f"Bearer {tokens['admin']}"},
        )
        body = await response.json()
    assert "errors" not in body
    assert body["data"]["sessions"]["totalCount"] > 0


async def test_missing_session_threads_are_not_found(
    standin_url: str, tokens: dict[str, str]
) -> None:
    ghost = ThreadRef(SessionRef("no-such-session", uuid.uuid4()), uuid.uuid4())
    query = "query($id: ID!) { node(id: $id) { id } models }"
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        body = await gw.query(query, {"id": encode_global_id(ghost)})
        missing = await gw.query('{ session(sessionId: "no-such-session") { sessionId } }')
    assert body["data"]["node"] is None
    assert body["data"]["models"]
    assert _by_path(body)["node"]["extensions"]["code"] == "NOT_FOUND"
    assert missing["data"]["session"] is None
    assert _by_path(missing)["session"]["extensions"]["code"] == "NOT_FOUND"


async def test_a_member_sees_nothing_and_gets_not_found_for_admin_nodes(
    standin_url: str, tokens: dict[str, str]
) -> None:
    member = next(token for name, token in tokens.items() if name not in ("admin", "auditor"))
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        data = await gw.data("{ sessions(first: 1) { nodes { id } } }")
        session_id = data["sessions"]["nodes"][0]["id"]
        body = await gw.query(
            "query($id: ID!) { node(id: $id) { id } sessions { totalCount } }",
            {"id": session_id},
            token=member,
        )
    assert body["data"] == {"node": None, "sessions": {"totalCount": 0}}
    assert _by_path(body)["node"]["extensions"]["code"] == "NOT_FOUND"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_upstream_is_upstream_unavailable_and_not_ready() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with serve_gateway(url, "abcdefghij-0123456789012345678901", retries=0) as gw:
        body = await gw.query("{ sessions { totalCount } models }")
        ready = await gw.http.get("/readyz")
        ready_body = await ready.json()
        alive = await gw.http.get("/healthz")
        text = str(body)
    assert body["data"] == {"sessions": None, "models": None}
    assert {e["extensions"]["code"] for e in body["errors"]} == {"UPSTREAM_UNAVAILABLE"}
    assert "127.0.0.1" not in text
    assert "abcdefghij" not in text
    assert ready.status == 503
    assert ready_body["status"] == "unavailable"
    assert alive.status == 200


async def test_forbidden_and_unavailable_keep_their_siblings(
    api_era: ApiEra, standin_url: str, tokens: dict[str, str]
) -> None:
    internal = "pq: connection to 10.0.0.7 refused"
    faults = {
        "/models": (403, {"message": "AI Bridge is a Premium feature. Contact sales!"}),
        "/clients": (500, {"message": "Internal error.", "detail": internal}),
    }
    if has_interceptions(api_era):  # else the fault would hide the era's missing route
        faults["/interceptions"] = (503, {"message": "Service Unavailable"})
    query = """{ sessions(first: 2) { totalCount nodes { sessionId } }
      interceptions(first: 2) { totalCount } models clients }"""
    with run_app_in_thread(lambda: faulty_proxy(standin_url, faults)) as proxy_url:
        async with serve_gateway(proxy_url, tokens["admin"], retries=1, retry_backoff=0) as gw:
            body = await gw.query(query)
            calls = list(gw.calls)
    assert body["data"]["sessions"]["totalCount"] > 0
    assert len(body["data"]["sessions"]["nodes"]) == 2
    assert {k: v for k, v in body["data"].items() if k != "sessions"} == {
        "interceptions": None,
        "models": None,
        "clients": None,
    }
    errors = _by_path(body)
    assert errors["models"]["extensions"]["code"] == "FORBIDDEN"
    assert errors["models"]["message"] == faults["/models"][1]["message"]
    assert errors["clients"]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert internal not in str(body)
    assert "127.0.0.1" not in str(body)
    # 503 is retried once (an idempotent GET); 403 and 500 are not.
    if expect_interceptions(api_era, body, "interceptions"):
        assert errors["interceptions"]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert sum(call.startswith("/interceptions") for call in calls) == 2
    else:
        assert not [call for call in calls if call.startswith("/interceptions")]
    assert sum(call.startswith(("/models", "/clients")) for call in calls) == 2
