"""The pre-execution estimate of upstream calls (schema/engine/estimate.py), on the real schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from graphql import parse

from aibridge_graphql.core.refs import InterceptionRef, SessionRef, ThreadRef, UserRef
from aibridge_graphql.schema import build_schema
from aibridge_graphql.schema.engine.estimate import EstimateCache, estimate_upstream_calls
from aibridge_graphql.schema.ids import encode_global_id
from aibridge_graphql.settings import Settings
from tests.support.docs import graphql_queries

SETTINGS = Settings(upstream_url="http://upstream.invalid")
SCHEMA = build_schema(SETTINGS)._schema
ALICE = UserRef(UUID("8e9a3d1c-58c2-4f7a-9d3e-0c1d2e3f4a5b"))
SESSION = SessionRef("s-1", ALICE.id)
THREAD = ThreadRef(SESSION, UUID("11111111-2222-4333-8444-555555555555"))
INTERCEPTION = InterceptionRef(THREAD.thread_id, ALICE.id, datetime(2025, 1, 1, tzinfo=UTC))


def estimate(
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    operation: str | None = None,
    settings: Settings = SETTINGS,
) -> int:
    return estimate_upstream_calls(
        SCHEMA, parse(query), operation_name=operation, variables=variables, settings=settings
    )


def attack(k_of: str = "{k}") -> str:
    aliases = " ".join(
        f"a{k}: sessions(first: 100) {{ nodes {{ threads(first: {k_of.format(k=k)}) "
        "{ nodes { threadId } } } }"
        for k in range(1, 29)
    )
    return "{ " + aliases + " }"


def test_documented_views_are_estimated_at_their_real_call_counts() -> None:
    # The README's three views and the usage query of docs/cost-and-usage.md.
    views = graphql_queries()
    assert set(views) == {"Dashboard", "Session", "Interceptions", "Usage"}
    # Dashboard: 1 list + 20 thread pages; Session: its threads page, which is also the lookup
    # (it selects nothing only the list has, test_session_by_detail.py); table: 3 lists.
    assert estimate(views["Dashboard"]) == 21
    assert estimate(views["Session"], {"id": "s-1"}) == 1
    assert estimate(views["Interceptions"], {"after": None}) == 3
    # Usage: its whole allowance (`maxUpstreamCalls`), the most its scan may make.
    assert estimate(views["Usage"]) == 50


def test_the_28_alias_fan_out_is_estimated_at_2828() -> None:
    query = attack()
    assert 2200 < len(query) < 2400  # the issue's 2.3 KB document
    assert estimate(query) == 28 * (1 + 100)


def test_pages_follow_first_the_default_and_the_maximum() -> None:
    threads = "nodes { threads { nodes { threadId } } }"
    assert estimate(f"{{ sessions {{ {threads} }} }}") == 1 + SETTINGS.default_page_size
    assert estimate(f"{{ sessions(first: 7) {{ {threads} }} }}") == 1 + 7
    # Over the maximum the resolver refuses; the estimate stays an upper bound.
    assert estimate(f"{{ sessions(first: 5000) {{ {threads} }} }}") == 1 + 100
    small = Settings(upstream_url="http://upstream.invalid", default_page_size=3)
    assert estimate(f"{{ sessions {{ {threads} }} }}", settings=small) == 1 + 3
    # Fields beside the page cost nothing more; `edges { node }` counts like `nodes`.
    assert estimate("{ sessions(first: 9) { totalCount pageInfo { hasNextPage } } }") == 1
    assert (
        estimate("{ sessions(first: 9) { edges { node { threads { pageInfo { endCursor } } } } } }")
        == 10
    )


def test_variables_and_their_defaults_are_resolved() -> None:
    query = """query($n: Int, $k: Int = 4) {
      sessions(first: $n) { nodes { threads(first: $k) { nodes { threadId } } } }
    }"""
    assert estimate(query, {"n": 30}) == 1 + 30
    assert estimate(query, {}) == 1 + SETTINGS.default_page_size
    assert estimate(query, {"n": None}) == 1 + SETTINGS.default_page_size
    # Not an Int: coercion refuses the request; the estimate does not crash.
    assert estimate(query, {"n": "many"}) == 1 + SETTINGS.default_page_size
    with_vars = "query($k: Int) " + attack("$k")
    assert estimate(with_vars, {"k": 3}) == 2828
    assert estimate(query, None) == 1 + SETTINGS.default_page_size


def test_fragments_inline_fragments_and_directives() -> None:
    query = """
    query($skip: Boolean!) {
      sessions(first: 10) {
        nodes { ...S ... on Session { again: threads(first: 1) { totalCount } } }
      }
      skipped: models @skip(if: $skip)
      kept: clients @include(if: true)
      gone: models @include(if: false)
    }
    fragment S on Session { threads(first: 2) { nodes { ...T } } }
    fragment T on Thread {
      threadId agenticActions { model toolCalls { tool } } session { sessionId }
    }
    """
    # sessions 1 + 10 × (threads + again) = 21; `kept` 1; `skipped` 1 unless skipped.
    assert estimate(query, {"skip": True}) == 21 + 1
    assert estimate(query, {"skip": False}) == 21 + 1 + 1


def test_aliases_count_apart_but_one_response_key_is_one_field() -> None:
    two = """{
      a: sessions(first: 5) { nodes { threads { totalCount } } }
      b: sessions(first: 5) { nodes { id } }
    }"""
    assert estimate(two) == (1 + 5) + 1
    # The same response key twice is merged by execution, so it is counted once.
    merged = """{
      sessions(first: 5) { nodes { id } }
      sessions(first: 5) { nodes { threads { totalCount } } }
    }"""
    assert estimate(merged) == 1 + 5


def test_nested_lists_multiply() -> None:
    query = """{
      interceptions(first: 4) {
        nodes { initiator { sessions(first: 3) { nodes {
          threads(first: 2) { nodes { session { threads { totalCount } } } }
        } } } }
      }
    }"""
    # 1 + 4 × (1 + 3 × (1 + 2 × 1)) = 1 + 4 × 10
    assert estimate(query) == 41


def test_filtered_sessions_pay_for_exact_thread_counts() -> None:
    body = "{ nodes { threads(first: 1) { totalCount } } }"
    assert estimate(f"{{ sessions(first: 5) {body} }}") == 1 + 5
    assert estimate(f'{{ sessions(first: 5, filter: {{initiator: "me"}}) {body} }}') == 1 + 5
    filtered = f'{{ sessions(first: 5, filter: {{model: "gpt"}}) {body} }}'
    assert estimate(filtered) == 1 + 5 * 2
    by_variable = f"query($f: SessionFilter) {{ sessions(first: 5, filter: $f) {body} }}"
    assert estimate(by_variable, {"f": {"client": "Codex", "initiator": None}}) == 1 + 10
    assert estimate(by_variable, {"f": {"sessionId": "x"}}) == 1 + 5


def test_backward_thread_pages() -> None:
    query = """{ session(sessionId: "s") {
      threads(last: 7) { nodes { session { threads { totalCount } } } }
    } }"""
    assert estimate(query) == 1 + 1 + 7


def test_node_and_nodes_cost_by_the_type_their_id_names() -> None:
    pick = """query($id: ID!) { node(id: $id) {
      id
      ... on Session { threads(first: 4) { totalCount } }
      ... on User { sessions(first: 3) { nodes { threads { totalCount } } } }
    } }"""
    assert estimate(pick, {"id": encode_global_id(SESSION)}) == 1 + 1
    assert estimate(pick, {"id": encode_global_id(ALICE)}) == 1 + (1 + 3)
    assert estimate(pick, {"id": encode_global_id(THREAD)}) == 2
    assert estimate(pick, {"id": encode_global_id(INTERCEPTION)}) == 1
    assert estimate(pick, {"id": "not an id"}) == 0
    many = (
        """query($ids: [ID!]!) { nodes(ids: $ids) { ... on Session { threads { totalCount } } } }"""
    )
    ids = [encode_global_id(SESSION), encode_global_id(THREAD), encode_global_id(ALICE)]
    assert estimate(many, {"ids": ids}) == 2 + 2 + 1
    assert estimate(many, {"ids": [encode_global_id(SESSION)] * 40}) == 80
    # Over 100 IDs the resolver refuses the list without a call.
    assert estimate(many, {"ids": [encode_global_id(SESSION)] * 101}) == 0
    literal = (
        f'{{ nodes(ids: ["{encode_global_id(ALICE)}", "{encode_global_id(ALICE)}"]) {{ id }} }}'
    )
    assert estimate(literal) == 2


def test_entities_cost_one_per_representation_plus_their_selection() -> None:
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
      ... on Session { threads(first: 2) { nodes { threadId } } }
      ... on User { username }
    } }"""
    reps = [
        {"__typename": "Session", "id": encode_global_id(SESSION)},
        {"__typename": "User", "id": str(ALICE.id)},
        {"__typename": "Nope", "id": "x"},
        {},
    ]
    assert estimate(query, {"r": reps}) == 2 + 1
    assert estimate(query, {"r": [reps[0]] * 30}) == 60
    literal = '{ _entities(representations: [{__typename: "User", id: "x"}]) { __typename } }'
    assert estimate(literal) == 1


def test_malformed_representations_cost_nothing() -> None:
    # Found by the fuzzer: a `__typename` that is not a string (unhashable) crashed the estimate.
    query = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }"
    reps: list[object] = [{"__typename": []}, {"__typename": {"a": 1}}, [None, [None]], 5, "x"]
    assert estimate(query, {"r": reps}) == 0


def test_free_fields_and_introspection_cost_nothing() -> None:
    assert estimate("{ __typename _service { sdl } }") == 0
    assert estimate("{ __schema { types { name } } }") == 0


def test_the_selected_operation_is_estimated() -> None:
    doc = "query A { models } query B { sessions(first: 3) { nodes { threads { totalCount } } } }"
    assert estimate(doc, operation="A") == 1
    assert estimate(doc, operation="B") == 4
    assert estimate(doc, operation="C") == 0
    assert estimate(doc) == 0  # ambiguous: execution refuses it


@pytest.mark.parametrize("variables", [{"n": True}, {"n": 2.0}, {"n": -3}, {"n": [1]}])
def test_odd_variable_values_never_crash(variables: dict[str, Any]) -> None:
    query = "query($n: Int) { sessions(first: $n) { nodes { threads(first: $n) { totalCount } } } }"
    assert estimate(query, variables) >= 1


def test_the_estimate_cache_answers_per_document_and_variables() -> None:
    query = parse("""query($n: Int) {
      sessions(first: $n) { nodes { threads(first: 2) { nodes { threadId } } } }
    }""")
    cache = EstimateCache(max_size=2)

    def cached(document: Any, variables: dict[str, Any]) -> int:
        return cache.estimate(
            SCHEMA, document, operation_name=None, variables=variables, settings=SETTINGS
        )

    assert [cached(query, {"n": 3}), cached(query, {"n": 30}), cached(query, {"n": 3})] == [
        4,
        31,
        4,
    ]
    # Same text, another document node (a parser cache miss): estimated afresh, not confused.
    assert cached(parse("{ models }"), {}) == 1
    assert cached(query, {"n": 5}) == 6
