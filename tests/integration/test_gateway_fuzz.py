"""Property-based fuzzing of the running gateway (issue 7, item 7, the gateway half).

hypothesis-graphql generates documents from the schema the gateway itself serves (fetched by
introspection over HTTP): valid ones (every field, argument and input value the schema allows,
custom scalars included) and invalid ones (wrong types, missing arguments). Each goes to the real
gateway in front of the real stand-in with the admin token, under both response media types.
Nothing may answer 5xx, no error may be INTERNAL_SERVER_ERROR, and nothing may log at ERROR.
Bounded (a fixed number of examples, no shrinking database) and deterministic (derandomized).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLSchema,
    NameNode,
    ObjectFieldNode,
    build_client_schema,
    get_introspection_query,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, nodes, queries

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from tests.support.servers import run_app_in_thread

# Documents are drawn root field by root field (hypothesis-graphql alone favours the fields with
# the most arguments): every one is reached with varied arguments in ~20 s on 2 cores.
VALID_EXAMPLES = 240
INVALID_EXAMPLES = 120
ACCEPTS = ("application/json", "application/graphql-response+json")
ENTITY_TYPES = ("User", "Session", "Interception", "Thread", "Query", "Nope")


def _field(name: str, value: Any) -> ObjectFieldNode:
    return ObjectFieldNode(name=NameNode(value=name), value=value)


# Custom scalars as GraphQL literals: RFC 3339 strings (and junk) for DateTime, any JSON for JSON,
# and federation representations that are right, half right and wrong for `_Any`.
_TEXT = st.text(max_size=40)
DATETIME = st.one_of(
    st.datetimes().map(lambda value: nodes.String(value.isoformat())),
    st.datetimes().map(lambda value: nodes.String(value.isoformat() + "Z")),
    _TEXT.map(nodes.String),
)
JSON_LITERAL = st.recursive(
    st.one_of(
        _TEXT.map(nodes.String),
        st.integers(-(2**31), 2**31 - 1).map(nodes.Int),
        st.just(nodes.Null),
    ),
    lambda children: st.lists(children, max_size=3).map(nodes.List),
    max_leaves=8,
)
REPRESENTATION = st.one_of(
    st.builds(
        lambda typename, key: nodes.Object(
            [_field("__typename", nodes.String(typename)), _field("id", key)]
        ),
        st.sampled_from(ENTITY_TYPES),
        st.one_of(
            _TEXT.map(nodes.String), st.uuids().map(nodes.String), st.integers().map(nodes.Int)
        ),
    ),
    st.lists(
        st.builds(_field, st.sampled_from(["__typename", "id", "extra"]), JSON_LITERAL), max_size=3
    ).map(nodes.Object),
    JSON_LITERAL,
)
CUSTOM_SCALARS = {"DateTime": DATETIME, "JSON": JSON_LITERAL, "_Any": REPRESENTATION}


@pytest.fixture(scope="module")
def gateway(standin_url: str) -> Iterator[str]:
    settings = Settings(upstream_url=standin_url)
    with run_app_in_thread(lambda: create_app(settings)) as url:
        yield f"{url}/graphql"


@pytest.fixture(scope="module")
def served_schema(gateway: str, tokens: dict[str, str]) -> GraphQLSchema:
    """The schema the running gateway serves, by introspection (what a client would see)."""
    answer = httpx.post(
        gateway,
        json={"query": get_introspection_query()},
        headers={"Coder-Session-Token": tokens["admin"]},
        timeout=30,
    )
    answer.raise_for_status()
    return build_client_schema(answer.json()["data"])


def _per_root_field(schema: GraphQLSchema, mode: Mode) -> st.SearchStrategy[Any]:
    assert schema.query_type is not None
    fields = schema.query_type.fields
    # NEGATIVE mode needs something to violate: only fields that take arguments.
    roots = sorted(name for name, field in fields.items() if mode is Mode.POSITIVE or field.args)
    return st.sampled_from(roots).flatmap(
        lambda root: queries(schema, fields=[root], custom_scalars=CUSTOM_SCALARS, mode=mode)
    )


def _fuzz(gateway: str, token: str, strategy: st.SearchStrategy[Any], examples: int) -> list[str]:
    """Send `examples` generated documents; return every violation found (empty when none)."""
    found: list[str] = []
    with httpx.Client(timeout=60, headers={"Coder-Session-Token": token}) as client:

        @settings(
            max_examples=examples,
            derandomize=True,  # the same documents on every run and machine
            database=None,
            deadline=None,  # no timed assertions: speed is the benchmarks' business
            phases=[Phase.explicit, Phase.generate],  # no shrinking: report, don't minimize
            suppress_health_check=list(HealthCheck),
        )
        @given(query=strategy, accept=st.sampled_from(ACCEPTS))
        def send(query: str, accept: str) -> None:
            response = client.post(gateway, json={"query": query}, headers={"Accept": accept})
            if response.status_code >= 500:
                found.append(f"{response.status_code} for {query!r}: {response.text[:300]}")
                return
            body = response.json()
            codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
            if "INTERNAL_SERVER_ERROR" in codes or None in codes:
                found.append(f"uncoded/internal error for {query!r}: {body['errors'][:2]}")

        send()
    return found


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def test_valid_documents_never_fail_internally(
    gateway: str,
    served_schema: GraphQLSchema,
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    strategy = _per_root_field(served_schema, Mode.POSITIVE)
    found = _fuzz(gateway, tokens["admin"], strategy, VALID_EXAMPLES)
    assert not found, "\n".join(found)
    assert not _errors_logged(caplog), _errors_logged(caplog)


def test_invalid_documents_are_refused_cleanly(
    gateway: str,
    served_schema: GraphQLSchema,
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    strategy = _per_root_field(served_schema, Mode.NEGATIVE)
    found = _fuzz(gateway, tokens["admin"], strategy, INVALID_EXAMPLES)
    assert not found, "\n".join(found)
    assert not _errors_logged(caplog), _errors_logged(caplog)
