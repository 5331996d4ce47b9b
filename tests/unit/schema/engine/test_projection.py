"""Which record lists an operation reads (schema/engine/projection.py), from the fields' needs."""

from __future__ import annotations

import pytest
from graphql import parse

from aibridge_graphql.schema import build_schema
from aibridge_graphql.schema.engine.projection import unread_records
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.projection import ALL_RECORDS

SCHEMA = build_schema(Settings(upstream_url="http://upstream.invalid"))._schema


@pytest.mark.parametrize(
    ("source", "read"),
    [
        ("{ interceptions { nodes { model } } }", set()),
        ("{ interceptions { nodes { tokenUsages { inputTokens } } } }", {"token_usages"}),
        (
            "{ i: interceptions { nodes { ...F } } }"
            " fragment F on Interception { toolUsages { tool } }",
            {"tool_usages"},
        ),
        # Through an abstract type, and whatever the directives say: it can only over-include.
        (
            '{ node(id: "x") { ... on Thread { agenticActions @include(if: false) { model } } } }',
            {"agentic_actions"},
        ),
        ("{ interceptions { nodes { cost { micros } } } }", {"token_usages"}),
        (
            "{ sessions { nodes { threads { nodes { tokenUsage { cost { micros } } } } } } }",
            {"agentic_actions"},
        ),
        ("{ sessions { nodes { tokenUsage { cost { micros } } } } }", {"agentic_actions"}),
        ("{ usage(groupBy: [USER]) { complete } }", ALL_RECORDS),
        # A fragment no operation spreads reads nothing.
        (
            "{ sessions { nodes { sessionId } } }"
            " fragment F on Interception { toolUsages { tool } }",
            set(),
        ),
    ],
)
def test_a_document_reads_the_record_lists_its_fields_are_declared_to_read(
    source: str, read: set[str]
) -> None:
    assert unread_records(SCHEMA, parse(source), None) == ALL_RECORDS - read
