"""Content negotiation and strict parsing of GraphQL-over-HTTP requests (no server needed)."""

from __future__ import annotations

import pytest

from aibridge_graphql.server.http_protocol import (
    APPLICATION_JSON,
    GRAPHQL_RESPONSE_JSON,
    RequestRejected,
    negotiate,
    parse_get,
    parse_post,
)

GRJ = GRAPHQL_RESPONSE_JSON


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, APPLICATION_JSON),
        ("", APPLICATION_JSON),
        ("*/*", APPLICATION_JSON),
        ("application/*", APPLICATION_JSON),
        ("application/json", APPLICATION_JSON),
        (GRJ, GRJ),
        (f"{GRJ}; charset=utf-8", GRJ),
        ("APPLICATION/GRAPHQL-RESPONSE+JSON", GRJ),
        # Apollo Client 4 and graphql-http's client send this.
        (f"{GRJ}, application/json;q=0.9", GRJ),
        (f"application/json, {GRJ}", APPLICATION_JSON),
        (f"application/json;q=0.5, {GRJ};q=0.8", GRJ),
        (f"*/*, {GRJ}", GRJ),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", APPLICATION_JSON),
        (f"{GRJ};q=0, application/json", APPLICATION_JSON),
        (f"{GRJ};q=nope, application/json;q=0.1", APPLICATION_JSON),
        ("text/html", None),
        ("application/json;q=0", None),
        ("application/xml, text/csv", None),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_post_parameters_come_through_typed() -> None:
    data = parse_post(
        "application/json; charset=utf-8",
        b'{"query": "{ a }", "operationName": "A", "variables": {"x": [1]}, "extensions": {}}',
    )
    assert (data.query, data.operation_name, data.variables, data.extensions) == (
        "{ a }",
        "A",
        {"x": [1]},
        {},
    )


def test_get_parameters_decode_json_strings() -> None:
    data = parse_get({"query": "{ a }", "variables": '{"x": 1}', "extensions": ""})
    assert (data.query, data.variables, data.extensions) == ("{ a }", {"x": 1}, None)


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"5", 400), (b"\xff", 400), (b'{"operationName": false}', 400), (b"[{}]", 400)],
)
def test_post_refusals(body: bytes, status: int) -> None:
    with pytest.raises(RequestRejected) as refused:
        parse_post("application/json", body)
    assert refused.value.status == status


def test_non_json_media_types_are_415_and_say_what_to_send() -> None:
    with pytest.raises(RequestRejected) as refused:
        parse_post("text/plain", b"{}")
    assert refused.value.status == 415
    assert refused.value.headers == {"Accept-Post": "application/json"}
