"""Error codes, partial data, masking and limits (fake upstream, real gateway over HTTP)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from aibridge_graphql.settings import Settings
from tests.support.gateway_fakes import gateway, populated

SIBLINGS = """{
  sessions(first: 2) { totalCount }
  interceptions(first: 2) { totalCount }
  models
  clients
}"""


def _codes(body: dict[str, Any]) -> dict[str, str]:
    return {".".join(map(str, e["path"])): e["extensions"]["code"] for e in body["errors"]}


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (403, "FORBIDDEN"),
        (500, "UPSTREAM_UNAVAILABLE"),
        (502, "UPSTREAM_UNAVAILABLE"),
        (httpx.ReadTimeout("timed out"), "UPSTREAM_UNAVAILABLE"),
        (httpx.ConnectError("refused"), "UPSTREAM_UNAVAILABLE"),
    ],
)
async def test_one_failing_resource_keeps_its_siblings(failure: int | Exception, code: str) -> None:
    fake = populated()
    fake.failures["/interceptions"] = failure
    async with gateway(fake) as gw:
        body = await gw.query(SIBLINGS)
    data = body["data"]
    assert data["interceptions"] is None
    assert data["sessions"] == {"totalCount": 25}
    assert data["models"] == ["model-0000", "model-0001", "model-0002"]
    assert data["clients"] == ["Claude Code", "Codex"]
    assert _codes(body) == {"interceptions": code}


async def test_no_credentials_is_unauthenticated_for_every_field() -> None:
    async with gateway(populated()) as gw:
        body = await gw.query(SIBLINGS, token=None)
    assert body["data"] == {
        "sessions": None,
        "interceptions": None,
        "models": None,
        "clients": None,
    }
    assert set(_codes(body).values()) == {"UNAUTHENTICATED"}


async def test_not_found_nulls_only_the_field() -> None:
    fake = populated(sessions=2)
    fake.failures["/sessions/"] = 404
    async with gateway(fake) as gw:
        body = await gw.query(
            '{ session(sessionId: "session-000") { sessionId threads { totalCount } } }'
        )
    assert body["data"] == {"session": {"sessionId": "session-000", "threads": None}}
    assert _codes(body) == {"session.threads": "NOT_FOUND"}


async def test_unknown_session_is_null_with_not_found() -> None:
    async with gateway(populated(sessions=2)) as gw:
        body = await gw.query('{ session(sessionId: "nope") { sessionId } models }')
    assert body["data"]["session"] is None
    assert body["data"]["models"]
    assert _codes(body) == {"session": "NOT_FOUND"}


async def test_unexpected_exceptions_are_masked_and_logged_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = populated()
    fake.failures["/models"] = RuntimeError("secret internals at http://upstream.invalid/x")
    caplog.set_level(logging.ERROR, logger="aibridge_graphql")
    async with gateway(fake) as gw:
        response = await gw.http.post(
            "/graphql",
            json={"query": "{ models clients }"},
            headers={"Coder-Session-Token": "admin-token"},
        )
        text = await response.text()
    body = await response.json()
    assert body["data"] == {"models": None, "clients": ["Claude Code", "Codex"]}
    assert body["errors"][0]["message"] == "Internal server error"
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    for secret in ("secret internals", "upstream.invalid", "admin-token", "Traceback"):
        assert secret not in text
    records = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert "request" in records[0].getMessage()


async def test_upstream_errors_never_leak_urls_or_tokens() -> None:
    fake = populated()
    fake.failures["/sessions"] = 503
    fake.failures["/interceptions"] = httpx.ConnectError(
        "cannot connect to http://upstream.invalid/api/v2/aibridge?token=admin-token"
    )
    async with gateway(fake) as gw:
        response = await gw.http.post(
            "/graphql", json={"query": SIBLINGS}, headers={"Coder-Session-Token": "admin-token"}
        )
        text = await response.text()
    for secret in ("upstream.invalid", "admin-token", "api/v2", "Traceback"):
        assert secret not in text


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        (
            "{ sessions { edges { node { threads { edges { node { session { threads { edges "
            "{ node { session { threads { nodes { id } } } } } } } } } } } } } }",
            "exceeds maximum operation depth",
        ),
        ("{ " + " ".join(f"a{i}: models" for i in range(31)) + " }", "aliases found"),
        ("{ " + "models " * 2001 + "}", "tokens"),
    ],
)
async def test_limits_are_on_by_default(query: str, fragment: str) -> None:
    fake = populated()
    async with gateway(fake) as gw:
        body = await gw.query(query)
    assert body["data"] is None
    assert fragment in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert fake.calls == []


async def test_graphiql_introspection_fits_the_limits() -> None:
    async with gateway(populated()) as gw:
        body = await gw.query(get_introspection_query(descriptions=True))
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_syntax_errors_have_a_code() -> None:
    async with gateway(populated()) as gw:
        body = await gw.query("{ sessions(")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


@pytest.mark.parametrize(
    ("query", "variables", "says"),
    [
        ("query($f: Int!) { sessions(first: $f) { totalCount } }", {}, "non-null type 'Int!'"),
        ("query($f: Int) { sessions(first: $f) { totalCount } }", {"f": "x"}, "Int cannot"),
        ("query($f: Int) { sessions(first: $f) { totalCount } }", {"f": 2**40}, "32-bit"),
        (
            "query($d: DateTime) { sessions(filter: {startedAfter: $d}) { totalCount } }",
            {"d": "garbage"},
            "DateTime",
        ),
        (
            "query($f: SessionFilter) { sessions(filter: $f) { totalCount } }",
            {"f": {"nope": 1}},
            "'nope'",
        ),
    ],
)
async def test_bad_variables_are_bad_user_input_and_say_why(
    query: str, variables: dict[str, Any], says: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aibridge_graphql")
    fake = populated()
    async with gateway(fake) as gw:
        body = await gw.query(query, variables)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("Variable '$")
    assert says in error["message"]
    assert fake.calls == []
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]


async def test_bad_user_input_from_the_upstream_keeps_its_validations() -> None:
    fake = populated()
    async with gateway(fake, Settings(upstream_url="http://upstream.invalid", retries=0)) as gw:
        body = await gw.query(
            '{ sessions(after: "WyJTZXNzaW9uQ3Vyc29yIiwibm9wZSJd") { totalCount } }'
        )
    assert body["data"] == {"sessions": None}
    assert _codes(body) == {"sessions": "BAD_USER_INPUT"}
    assert body["errors"][0]["message"].startswith("Query parameter has invalid value.")


async def test_a_filter_value_q_cannot_express_is_bad_user_input_without_a_call() -> None:
    fake = populated()
    async with gateway(fake) as gw:
        body = await gw.query(
            '{ sessions(filter: {client: "say \\"hi\\""}) { totalCount }'
            ' models(prefix: "a\\"b") clients }'
        )
    assert body["data"]["sessions"] is None
    assert body["data"]["models"] is None
    assert body["data"]["clients"] is not None
    assert _codes(body) == {"sessions": "BAD_USER_INPUT", "models": "BAD_USER_INPUT"}
    by_path = {e["path"][0]: e for e in body["errors"]}
    assert by_path["sessions"]["extensions"]["validations"][0]["field"] == "client"
    assert by_path["models"]["extensions"]["validations"][0]["field"] == "model"
    assert not [call for call in fake.calls if call.startswith(("/sessions", "/models"))]


async def test_an_empty_session_id_is_bad_user_input_without_a_call() -> None:
    # Coder reads `session_id:""` as no filter and would answer with some other session.
    fake = populated()
    async with gateway(fake) as gw:
        body = await gw.query('{ session(sessionId: "") { sessionId threads { totalCount } } }')
    assert body["data"] == {"session": None}
    assert _codes(body) == {"session": "BAD_USER_INPUT"}
    assert fake.calls == []


@pytest.mark.parametrize(
    ("method", "kwargs", "says", "status", "code"),
    [
        (
            "POST",
            {"data": "garbage", "headers": {"Content-Type": "application/json"}},
            "JSON",
            400,
            "BAD_REQUEST",
        ),
        ("POST", {"json": {"variables": {}}}, "No GraphQL query", 400, "BAD_REQUEST"),
        # GraphQL over HTTP: a mutation over GET is 405 Method Not Allowed.
        (
            "GET",
            {"params": {"query": "mutation { x }"}},
            "mutations are not allowed",
            405,
            "METHOD_NOT_ALLOWED",
        ),
    ],
)
async def test_a_request_that_is_not_graphql_gets_a_graphql_shaped_4xx(
    method: str, kwargs: dict[str, Any], says: str, status: int, code: str
) -> None:
    fake = populated()
    async with gateway(fake) as gw:
        response = await gw.http.request(method, "/graphql", **kwargs)
        body = await response.json()
    assert response.status == status
    [error] = body["errors"]
    assert error["extensions"]["code"] == code
    assert says in error["message"]
    assert fake.calls == []
