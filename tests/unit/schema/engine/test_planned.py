"""The hot operations run on the plan, not on graphql-core's executor: a change that made one
fall back would lose most of the engine's speed without failing anything else."""

from __future__ import annotations

import pytest
from graphql import parse

from aibridge_graphql.schema import build_schema
from aibridge_graphql.schema.engine.executor import is_planned
from aibridge_graphql.settings import Settings
from bench.peer import DASHBOARD_OURS, LIST_OURS, MODELS_OURS, SESSION_OURS

SCHEMA = build_schema(Settings(upstream_url="http://upstream.invalid"))._schema


@pytest.mark.parametrize(
    "document",
    [DASHBOARD_OURS, SESSION_OURS, LIST_OURS, MODELS_OURS],
    ids=["dashboard", "session detail", "25-row list", "models"],
)
def test_the_benchmarked_views_are_planned(document: str) -> None:
    assert is_planned(SCHEMA, parse(document), None)


@pytest.mark.parametrize(
    "document",
    [
        "{ models @include(if: true) }",
        '{ node(id: "x") { id } }',
        "subscription { x }",
        "{ __schema { queryType { name } } }",
    ],
)
def test_what_the_plan_does_not_cover_falls_back(document: str) -> None:
    assert not is_planned(SCHEMA, parse(document), None)
