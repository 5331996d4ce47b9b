"""Automatic persisted queries, spoken over real HTTP the way Apollo Client's persisted-queries
link does: hash first (GET or POST), `PersistedQueryNotFound`, then hash plus query, then hash only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from aibridge_graphql.server.apq import (
    ManifestError,
    PersistedQueryStore,
    load_manifest,
    sha256_hex,
)
from aibridge_graphql.server.observability import Observability
from aibridge_graphql.settings import Settings
from tests.support.observability import DASHBOARD, observed_gateway, sample

MODELS = "query Models { models }"


def persisted(query: str) -> dict[str, Any]:
    """The `extensions` Apollo's link sends for `query`."""
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def test_apollo_link_round_trip_over_get() -> None:
    async with observed_gateway() as gw:
        hashed = {
            "operationName": "Dashboard",
            "variables": {"first": 2},
            "extensions": persisted(DASHBOARD),
        }
        status, miss, headers = await gw.get(hashed)
        assert status == 200
        assert miss["errors"][0]["message"] == "PersistedQueryNotFound"
        assert codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"]
        # A CDN must not cache the miss, or the GET after registration would miss again.
        assert headers["Cache-Control"] == "private, no-cache, must-revalidate"
        assert gw.fake.calls == []

        status, registered, _ = await gw.get({**hashed, "query": DASHBOARD})
        assert status == 200
        assert "errors" not in registered
        status, hit, headers = await gw.get(hashed)
        assert status == 200
        assert hit == registered
        assert len(hit["data"]["sessions"]["edges"]) == 2
        assert "Cache-Control" not in headers

        samples = await gw.scrape()
    for result, count in (("miss", 1), ("registered", 1), ("hit", 1)):
        assert sample(samples, "aibridge_graphql_apq_requests_total", result=result) == count


async def test_apollo_link_round_trip_over_post() -> None:
    async with observed_gateway() as gw:
        _, miss, _ = await gw.post({"operationName": "Models", "extensions": persisted(MODELS)})
        assert codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"]
        _, registered, _ = await gw.post({"query": MODELS, "extensions": persisted(MODELS)})
        _, hit, _ = await gw.post({"operationName": "Models", "extensions": persisted(MODELS)})
    assert registered == hit == {"data": {"models": ["model-0000", "model-0001", "model-0002"]}}


async def test_a_hash_that_does_not_match_the_query_is_refused_and_not_registered() -> None:
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex("{ clients }")}}
    async with observed_gateway() as gw:
        _, mismatch, _ = await gw.post({"query": MODELS, "extensions": wrong})
        _, after, _ = await gw.post({"extensions": wrong})
    assert mismatch["errors"][0]["message"] == "provided sha does not match query"
    assert codes(mismatch) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert codes(after) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("query Broken { models", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_invalid_documents_are_never_registered(query: str, code: str) -> None:
    async with observed_gateway() as gw:
        _, first, _ = await gw.post({"query": query, "extensions": persisted(query)})
        _, again, _ = await gw.post({"extensions": persisted(query)})
    assert first["data"] is None
    assert codes(first) == [code]
    assert codes(again) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        ({"version": 2, "sha256Hash": "0" * 64}, "Unsupported persisted query version."),
        ({"version": 1, "sha256Hash": "xyz"}, "must be 64 hexadecimal characters"),
        ({"version": 1, "sha256Hash": "0" * 64 + "\n"}, "must be 64 hexadecimal characters"),
        ("not-an-object", "must be an object"),
    ],
)
async def test_malformed_persisted_query_extensions_are_bad_input(
    extension: Any, message: str
) -> None:
    async with observed_gateway() as gw:
        _, body, _ = await gw.post({"query": MODELS, "extensions": {"persistedQuery": extension}})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert message in body["errors"][0]["message"]


async def test_the_store_is_a_bounded_lru() -> None:
    queries = [f"query Q{i} {{ models }}" for i in range(3)]
    async with observed_gateway(apq_cache_size=2) as gw:
        for query in queries[:2]:
            await gw.post({"query": query, "extensions": persisted(query)})
        # Using Q0 makes Q1 the least recently used, so registering Q2 evicts Q1.
        _, used, _ = await gw.post({"extensions": persisted(queries[0])})
        await gw.post({"query": queries[2], "extensions": persisted(queries[2])})
        results = [(await gw.post({"extensions": persisted(query)}))[1] for query in queries]
    assert "errors" not in used
    assert [codes(body) for body in results] == [[], ["PERSISTED_QUERY_NOT_FOUND"], []]
    assert len(gw.observability.persisted_queries) == 2


def test_pinned_entries_survive_any_number_of_registrations() -> None:
    store = PersistedQueryStore(1, pinned={"a" * 64: "{ models }"})
    for index in range(5):
        store.put(f"{index:064x}", f"query Q{index} {{ models }}")
    assert store.get("a" * 64) == "{ models }"
    assert store.get(f"{3:064x}") is None
    assert store.get(f"{4:064x}") == "query Q4 { models }"


async def test_with_apq_disabled_the_link_is_told_persisted_queries_are_not_supported() -> None:
    async with observed_gateway(apq_enabled=False) as gw:
        _, hashed, _ = await gw.post({"extensions": persisted(MODELS)})
        _, plain, _ = await gw.post({"query": MODELS})
    assert hashed["errors"][0]["message"] == "PersistedQueryNotSupported"
    assert codes(hashed) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
    assert plain == {"data": {"models": ["model-0000", "model-0001", "model-0002"]}}


def apollo_manifest(path: Path, *queries: str) -> Path:
    """An Apollo persisted-query manifest (what `generate-persisted-query-manifest` writes)."""
    operations = [
        {"id": sha256_hex(query), "body": query, "name": f"Op{index}", "type": "query"}
        for index, query in enumerate(queries)
    ]
    path.write_text(
        json.dumps(
            {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
        )
    )
    return path


async def test_persisted_only_runs_the_manifest_and_nothing_else(tmp_path: Path) -> None:
    manifest = apollo_manifest(tmp_path / "manifest.json", MODELS)
    other = "query Clients { clients }"
    async with observed_gateway(apq_manifest=str(manifest), apq_persisted_only=True) as gw:
        _, by_get, _ = await gw.get({"operationName": "Models", "extensions": persisted(MODELS)})
        _, with_body, _ = await gw.post({"query": MODELS, "extensions": persisted(MODELS)})
        _, free_form, _ = await gw.post({"query": other})
        _, unknown, _ = await gw.post({"extensions": persisted(other)})
        _, register, _ = await gw.post({"query": other, "extensions": persisted(other)})
        _, still_unknown, _ = await gw.post({"extensions": persisted(other)})
    expected = {"data": {"models": ["model-0000", "model-0001", "model-0002"]}}
    assert by_get == with_body == expected
    assert codes(free_form) == ["PERSISTED_QUERY_REQUIRED"]
    assert codes(unknown) == codes(register) == codes(still_unknown)
    assert codes(unknown) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    assert gw.fake.calls_to("/clients") == []


def test_a_plain_hash_to_query_manifest_loads(tmp_path: Path) -> None:
    path = tmp_path / "queries.json"
    path.write_text(json.dumps({sha256_hex(MODELS): MODELS}))
    assert load_manifest(path) == {sha256_hex(MODELS): MODELS}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps({"0" * 64: MODELS}), "is not the SHA-256 of its query body"),
        ("[1, 2]", "expected an Apollo persisted-query manifest"),
        ("{not json", "cannot read persisted-query manifest"),
        (
            json.dumps({"format": "apollo-persisted-query-manifest", "operations": [{"id": 1}]}),
            "must be strings",
        ),
    ],
)
def test_a_bad_manifest_fails_at_start(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)
    config = Settings(apq_manifest=str(path))
    with pytest.raises(ManifestError, match=message):
        Observability(config)


def test_persisted_only_without_a_manifest_is_an_invalid_setting() -> None:
    with pytest.raises(ValidationError, match="apq_persisted_only needs apq_manifest"):
        Settings(apq_persisted_only=True)
