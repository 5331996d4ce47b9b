"""Hostile and malformed requests against the real gateway (issue 7, item 4): each one is a clean
4xx with a GraphQL-shaped body or a coded GraphQL error, never INTERNAL_SERVER_ERROR, and nothing
is logged above INFO for it (a client's mistake is not an operator's problem).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from aibridge_graphql.core.inputs import MAX_TEXT_LENGTH
from aibridge_graphql.schema.ids import MAX_ID_LENGTH, MAX_OFFSET, encode_cursor
from aibridge_graphql.server.http_protocol import MAX_JSON_DEPTH
from aibridge_graphql.upstream.capabilities import PROBE_USER_AGENT
from tests.support.gateway_helpers import Gateway, serve_gateway

JSON = "application/json"
MODELS = "{ models }"


@pytest.fixture
async def gw(standin_url: str, tokens: dict[str, str]) -> AsyncIterator[Gateway]:
    async with serve_gateway(standin_url, tokens["admin"]) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def quiet_log(caplog: pytest.LogCaptureFixture) -> Any:
    """Every test here: no log record above INFO, from the gateway or anything else."""
    caplog.set_level(logging.INFO)
    yield
    loud = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in caplog.records if r.levelno > 20]
    assert not loud, loud


def _headers(gw: Gateway, **extra: str) -> dict[str, str]:
    assert gw.default_token
    return {"Coder-Session-Token": gw.default_token, **extra}


def assert_http_error(status: int, body: Any, expected_status: int, code: str) -> str:
    """The 4xx is GraphQL-shaped: exactly {"errors": [{"message", "extensions": {"code"}}]}."""
    assert status == expected_status, body
    assert set(body) == {"errors"}, body
    [error] = body["errors"]
    assert set(error) == {"message", "extensions"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["extensions"] == {"code": code}, error
    message: str = error["message"]
    return message


async def post_raw(
    gw: Gateway, body: bytes, content_type: str | None = JSON, **headers: str
) -> tuple[int, Any]:
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await gw.http.post("/graphql", data=body, headers=_headers(gw, **headers))
    return response.status, await response.json(content_type=None)


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


BAD_BODIES = {
    # Not a JSON object.
    "number": b"5",
    "array": b"[]",
    "batch": dumps([{"query": MODELS}]),
    "string": b'"x"',
    "null": b"null",
    "true": b"true",
    "empty": b"",
    "blank": b"  \n",
    "truncated": b'{"query": "{ models }"',
    # Not UTF-8 (or not JSON in UTF-8).
    "latin-1": '{"query": "{ models(prefix: \\"é\\") }"}'.encode("latin-1"),
    "utf-16": dumps({"query": MODELS}).decode().encode("utf-16"),
    "bom": b"\xef\xbb\xbf" + dumps({"query": MODELS}),
    "invalid-bytes": b'{"query": "{ models }\xff"}',
    # Python's json accepts these; JSON does not.
    "nan": b'{"query": "{ models }", "variables": {"x": NaN}}',
    "infinity": b'{"query": "{ models }", "variables": {"x": -Infinity}}',
    # Parameters of the wrong type.
    "operationName-5": dumps({"query": MODELS, "operationName": 5}),
    "operationName-object": dumps({"query": MODELS, "operationName": {}}),
    "operationName-array": dumps({"query": MODELS, "operationName": []}),
    "operationName-true": dumps({"query": MODELS, "operationName": True}),
    "operationName-false": dumps({"query": MODELS, "operationName": False}),
    "operationName-huge": dumps({"query": MODELS, "operationName": "A" * 5000}),
    "query-5": dumps({"query": 5}),
    "query-array": dumps({"query": [MODELS]}),
    "query-object": dumps({"query": {}}),
    "query-empty": dumps({"query": ""}),
    "query-missing": dumps({}),
    "variables-5": dumps({"query": MODELS, "variables": 5}),
    "variables-string": dumps({"query": MODELS, "variables": "{}"}),
    "variables-array": dumps({"query": MODELS, "variables": []}),
    "variables-true": dumps({"query": MODELS, "variables": True}),
    "extensions-5": dumps({"query": MODELS, "extensions": 5}),
    "extensions-string": dumps({"query": MODELS, "extensions": "{}"}),
    "extensions-array": dumps({"query": MODELS, "extensions": []}),
    # Values no upstream can take, and nesting no walk should follow.
    "lone-surrogate": b'{"query": "query($p: String) { models(prefix: $p) }",'
    b' "variables": {"p": "\\ud800"}}',
    "lone-surrogate-key": b'{"query": "{ models }", "variables": {"\\udfff": 1}}',
    "lone-surrogate-query": b'{"query": "{ models }\\ud800"}',
    "nested-deeper-than-the-cap": dumps(
        {
            "query": MODELS,
            "variables": {"x": json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)},
        }
    ),
    "nested-100k": b'{"query": "{ models }", "variables": {"x": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}}",
    "extensions-nested-40": dumps(
        {"query": MODELS, "extensions": json.loads('{"a":' * 40 + "1" + "}" * 40)}
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
async def test_a_malformed_body_is_a_graphql_shaped_400(gw: Gateway, name: str) -> None:
    status, body = await post_raw(gw, BAD_BODIES[name])
    message = assert_http_error(status, body, 400, "BAD_REQUEST")
    # Python's spelling never leaks (`operationName: false` once answered `... "False"`).
    assert "False" not in message
    assert "True" not in message
    assert gw.calls == []


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json; charset=latin-1",
        "application/graphql",
    ],
)
async def test_other_media_types_are_415(gw: Gateway, content_type: str | None) -> None:
    status, body = await post_raw(gw, dumps({"query": MODELS}), content_type)
    assert_http_error(status, body, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_utf8_charset_and_case_are_accepted(gw: Gateway) -> None:
    status, body = await post_raw(gw, dumps({"query": MODELS}), 'Application/JSON; charset="UTF-8"')
    assert status == 200, body
    assert body["data"]["models"], body


async def test_a_body_over_the_limit_is_a_graphql_shaped_413(gw: Gateway) -> None:
    huge = dumps({"query": MODELS, "variables": {"x": "a" * (1024 * 1024)}})
    status, body = await post_raw(gw, huge)
    message = assert_http_error(status, body, 413, "PAYLOAD_TOO_LARGE")
    assert "1048576" in message


async def test_an_accept_header_we_cannot_satisfy_is_406(gw: Gateway) -> None:
    status, body = await post_raw(gw, dumps({"query": MODELS}), Accept="text/csv")
    assert_http_error(status, body, 406, "NOT_ACCEPTABLE")


async def test_a_mutation_over_get_is_405_with_allow(gw: Gateway) -> None:
    for query in ("mutation { x }", "query A { models } mutation B { x }"):
        params = {"query": query, "operationName": "B"} if "B" in query else {"query": query}
        response = await gw.http.get("/graphql", params=params, headers=_headers(gw, Accept=JSON))
        assert_http_error(response.status, await response.json(), 405, "METHOD_NOT_ALLOWED")
        assert response.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    "params",
    [
        {"query": MODELS, "variables": "5"},
        {"query": MODELS, "variables": "["},
        {"query": MODELS, "variables": "NaN"},
        {"query": MODELS, "extensions": "[]"},
        # Deep, yet short enough for aiohttp's 8 KB request line.
        {"query": MODELS, "variables": "[" * 1000 + "]" * 1000},
        {"variables": "{}"},
    ],
)
async def test_malformed_get_parameters_are_400(gw: Gateway, params: dict[str, str]) -> None:
    response = await gw.http.get("/graphql", params=params, headers=_headers(gw, Accept=JSON))
    assert_http_error(response.status, await response.json(), 400, "BAD_REQUEST")


async def test_a_request_line_over_8kb_is_400_and_logged_at_info_only(
    gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    # aiohttp refuses it before any handler runs (plain text, not ours to shape) and used to log
    # an ERROR traceback quoting the URL; the gateway turns that into one INFO line.
    variables = json.dumps({"secret": "s" * 9000})
    response = await gw.http.get("/graphql", params={"query": MODELS, "variables": variables})
    assert response.status == 400
    refused = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.getMessage() for r in refused] == ["malformed HTTP request refused (LineTooLong)"]
    assert all(r.exc_info is None and r.levelno == logging.INFO for r in refused)


async def test_an_empty_operation_name_means_none(gw: Gateway) -> None:
    status, body = await post_raw(gw, dumps({"query": MODELS, "operationName": ""}))
    assert status == 200, body
    assert body["data"]["models"], body


# -- documents and arguments: 200 with coded GraphQL errors ---------------------------------


async def graphql(gw: Gateway, query: str, variables: dict[str, Any] | None = None) -> Any:
    status, body = await post_raw(gw, dumps({"query": query, "variables": variables or {}}))
    assert status == 200, body
    codes = [error["extensions"]["code"] for error in body.get("errors", [])]
    assert "INTERNAL_SERVER_ERROR" not in codes, body
    return body


def only_code(body: Any) -> str:
    codes = {error["extensions"]["code"] for error in body["errors"]}
    assert len(codes) == 1, body
    code: str = codes.pop()
    return code


@pytest.mark.parametrize(
    "query",
    [
        "{ models ...Missing }",
        "{ sessions { nodes { ...Missing } } }",
        "query { models ...A } fragment A on Query { ...B }",
        "fragment A on Query { ...A } { ...A }",
        "{ models ... on Nope { x } }",
    ],
)
async def test_unknown_or_cyclic_fragments_are_validation_errors(gw: Gateway, query: str) -> None:
    body = await graphql(gw, query)
    assert only_code(body) == "GRAPHQL_VALIDATION_FAILED"
    assert gw.calls == []


REPRESENTATIONS = [
    {},
    5,
    "User",
    [],
    {"__typename": 5, "id": "x"},
    {"__typename": "Nope", "id": "x"},
    {"__typename": "Query", "id": "x"},
    {"__typename": "Thread", "id": "x"},
    {"__typename": "User"},
    {"__typename": "User", "id": 5},
    {"__typename": "User", "id": None},
    {"__typename": "User", "id": {"a": 1}},
    {"__typename": "User", "id": "x", "extra": 1},
    {"__typename": "User", "id": "not-a-uuid"},
    {"__typename": "Session", "id": "!!!"},
    {"__typename": "Interception", "id": "a" * 100_000},
]
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }"


async def test_malformed_representations_fail_one_by_one(gw: Gateway) -> None:
    data = await gw.data("{ sessions(first: 1) { nodes { initiator { id } } } }")
    user_id = data["sessions"]["nodes"][0]["initiator"]["id"]
    good = {"__typename": "User", "id": user_id}
    body = await graphql(gw, ENTITIES, {"r": [*REPRESENTATIONS, good]})
    assert body["data"]["_entities"] == [None] * len(REPRESENTATIONS) + [{"__typename": "User"}]
    paths = {tuple(error["path"]): error["extensions"]["code"] for error in body["errors"]}
    assert paths == {("_entities", n): "BAD_USER_INPUT" for n in range(len(REPRESENTATIONS))}
    assert max(len(error["message"]) for error in body["errors"]) < 300


async def test_representations_in_the_document_too(gw: Gateway) -> None:
    body = await graphql(gw, "{ _entities(representations: [{}]) { __typename } }")
    assert body["data"] == {"_entities": [None]}
    assert only_code(body) == "BAD_USER_INPUT"


FILTERED = """query($after: String) {
  sessions(after: $after, filter: {provider: "anthropic"}) { totalCount } }"""


@pytest.mark.parametrize(
    "value", ["²", "١", "5" * 5000, "0", "-1", "+1", " 1", "1.0", str(MAX_OFFSET + 1), "0x10"]
)
async def test_malformed_offset_cursors_are_bad_user_input(gw: Gateway, value: str) -> None:
    body = await graphql(gw, FILTERED, {"after": encode_cursor("FilteredSession", value)})
    assert body["data"] == {"sessions": None}
    assert only_code(body) == "BAD_USER_INPUT"
    assert gw.calls == []


MALFORMED_CURSORS = [
    "",
    "!!!",
    "a",
    "bm90IGpzb24",  # base64("not json")
    "NQ",  # base64("5")
    "W10",  # base64("[]")
    "WzVd",  # base64("[5]")
    encode_cursor("Interception", str(uuid.uuid4())),  # another connection's cursor
    encode_cursor("Session", ""),
    "A" * (MAX_ID_LENGTH + 1),
    "\x00",
    "é",
]


@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
async def test_malformed_cursors_are_bad_user_input(gw: Gateway, cursor: str) -> None:
    query = "query($c: String) { sessions(after: $c) { totalCount } }"
    body = await graphql(gw, query, {"c": cursor})
    assert body["data"] == {"sessions": None}
    assert only_code(body) == "BAD_USER_INPUT"
    assert max(len(error["message"]) for error in body["errors"]) < 300


@pytest.mark.parametrize(
    "global_id",
    ["", "!!!", "x" * (MAX_ID_LENGTH + 1), "WyJTZXNzaW9uIl0", "WyJOb3BlIiwiYSJd", "é", "\x00"],
)
async def test_malformed_global_ids_are_bad_user_input(gw: Gateway, global_id: str) -> None:
    body = await graphql(gw, "query($id: ID!) { node(id: $id) { id } }", {"id": global_id})
    assert body["data"] == {"node": None}
    assert only_code(body) == "BAD_USER_INPUT"
    assert max(len(error["message"]) for error in body["errors"]) < 300


TOO_LONG = "a" * (MAX_TEXT_LENGTH + 1)
TEXT_ARGUMENTS = [
    ("query($v: String) { models(prefix: $v) }", "models"),
    ("query($v: String) { clients(prefix: $v) }", "clients"),
    ("query($v: String!) { session(sessionId: $v) { id } }", "session"),
    ('query($v: String) { session(sessionId: "s", initiator: $v) { id } }', "session"),
    ("query($v: String) { sessions(filter: {model: $v}) { totalCount } }", "sessions"),
    ("query($v: String) { sessions(filter: {sessionId: $v}) { totalCount } }", "sessions"),
    ("query($v: String) { sessions(filter: {initiator: $v}) { totalCount } }", "sessions"),
    ("query($v: String) { interceptions(filter: {client: $v}) { totalCount } }", "interceptions"),
    (
        "query($v: String) { interceptions(filter: {providerName: $v}) { totalCount } }",
        "interceptions",
    ),
]


@pytest.mark.parametrize(("query", "field"), TEXT_ARGUMENTS)
@pytest.mark.parametrize("value", [TOO_LONG, "a" * 65_537, "a\x00b"])
async def test_oversized_or_nul_text_arguments_are_bad_user_input(
    gw: Gateway, query: str, field: str, value: str
) -> None:
    body = await graphql(gw, query, {"v": value})
    assert body["data"] == {field: None}
    assert only_code(body) == "BAD_USER_INPUT"
    assert gw.calls == []


async def test_a_64kb_prefix_in_the_document_is_bad_user_input(gw: Gateway) -> None:
    body = await graphql(gw, f'{{ models(prefix: "{"a" * 65_537}") }}')
    assert body["data"] == {"models": None}
    assert only_code(body) == "BAD_USER_INPUT"


async def test_text_at_the_cap_still_goes_upstream(gw: Gateway) -> None:
    body = await graphql(
        gw, "query($v: String) { models(prefix: $v) }", {"v": "é" * MAX_TEXT_LENGTH}
    )
    assert body == {"data": {"models": []}}


# -- issue 20: the last unhandled inputs -------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "١٢", "1²", "-1", "0", "+3", " 3", "99999999999999999999"])
async def test_max_upstream_calls_in_other_digits_is_400(gw: Gateway, value: str) -> None:
    # `str.isdigit` accepts `²` and Arabic-Indic digits; `int()` refuses the first: it was a 500.
    response = await gw.http.get(
        "/usage.csv", params={"maxUpstreamCalls": value}, headers=_headers(gw)
    )
    assert response.status == 400, await response.text()
    body = await response.json()
    assert body["message"].startswith("`maxUpstreamCalls` must be between 1 and"), body
    assert len(body["message"]) < 100, body


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_not_in_its_content_encoding_is_a_graphql_shaped_400(
    gw: Gateway, encoding: str
) -> None:
    # aiohttp's RequestPayloadError used to escape as a 500 with an ERROR traceback.
    status, body = await post_raw(gw, dumps({"query": MODELS}), **{"Content-Encoding": encoding})
    message = assert_http_error(status, body, 400, "BAD_REQUEST")
    assert "Content-Encoding" in message


async def test_a_gzip_body_is_still_read(gw: Gateway) -> None:
    status, body = await post_raw(
        gw, gzip.compress(dumps({"query": MODELS})), **{"Content-Encoding": "gzip"}
    )
    assert status == 200, body
    assert isinstance(body["data"]["models"], list), body


def holding_hop(upstream_url: str, held: str, arrived: asyncio.Event) -> web.Application:
    """A hop before the stand-in that holds every call to a path ending in `held` (but the
    capability probes) until its caller gives up, and forwards the rest."""

    async def forward(request: web.Request) -> web.Response:
        if request.path.endswith(held) and request.headers.get("User-Agent") != PROBE_USER_AGENT:
            arrived.set()
            await asyncio.Event().wait()  # cancelled when the gateway closes the connection
        headers = {k: v for k, v in request.headers.items() if k.lower() == "coder-session-token"}
        async with (
            ClientSession() as session,
            session.get(upstream_url + request.path_qs, headers=headers) as answer,
        ):
            return web.Response(
                status=answer.status, body=await answer.read(), content_type=answer.content_type
            )

    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    return app


async def test_a_client_hang_up_is_499_at_info_and_never_a_5xx(
    standin_url: str, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    arrived = asyncio.Event()
    async with (
        TestServer(holding_hop(standin_url, "/models", arrived), host="127.0.0.1") as hop,
        serve_gateway(str(hop.make_url("")).rstrip("/"), tokens["admin"]) as gw,
    ):
        server = gw.http.server
        _reader, writer = await asyncio.open_connection(server.host, server.port)
        body = dumps({"query": MODELS})
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            + f"Coder-Session-Token: {tokens['admin']}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await asyncio.wait_for(arrived.wait(), 10)
        writer.close()  # the client hangs up with its request in flight
        await writer.wait_closed()
        access = await _access_record(caplog, "/graphql")
        metrics = await gw.http.get("/metrics")
        text = await metrics.text()
    assert access.levelno == logging.INFO, access
    assert access.getMessage() == "POST /graphql 499"
    assert access.__dict__["status"] == 499
    assert 'aibridge_http_client_closed_requests_total{method="POST"} 1.0' in text
    # The operation is counted as cancelled, not as the client's BAD_REQUEST nor as an error.
    assert 'outcome="CANCELLED"' in text, text
    assert 'outcome="BAD_REQUEST"' not in text
    assert not [r for r in caplog.records if getattr(r, "status", 0) >= 500]


async def _access_record(caplog: pytest.LogCaptureFixture, path: str) -> logging.LogRecord:
    """The access-log record of the first request to `path`, once the gateway wrote it."""
    for _ in range(1000):  # bounded: the gateway logs as soon as the cancellation reaches it
        for record in caplog.records:
            if record.name == "aibridge_graphql.access" and record.__dict__.get("path") == path:
                return record
        await asyncio.sleep(0.01)
    raise AssertionError("no access-log record for " + path)
