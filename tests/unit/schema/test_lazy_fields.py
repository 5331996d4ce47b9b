"""`computed` fields (schema/node.py): made from the upstream model only when a document selects
them, equal to what was built eagerly before, and cheap to resolve when selected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import strawberry

from aibridge_graphql.schema import ids
from aibridge_graphql.schema.node import computed
from tests.support.gateway_fakes import gateway, populated

LIST = "{ interceptions(first: 25) { nodes { interceptionId model client } } }"
LIST_ALL = """{ interceptions(first: 25) {
  pageInfo { startCursor endCursor }
  edges { cursor node { id interceptionId metadata initiator { id username } } }
} }"""
DASHBOARD = """{ sessions(first: 20) { nodes {
  sessionId lastActiveAt threadCount initiator { username } threads(first: 3) { nodes { model } }
} } }"""
DASHBOARD_ALL = """{ sessions(first: 20) {
  pageInfo { startCursor endCursor }
  edges { cursor node {
    id initiator { id } providers models metadata tokenUsage { inputTokens metadata }
    networkCalls { total }
    threads(first: 3) {
      pageInfo { endCursor }
      edges { cursor node { id threadId agentFirewallSessionId tokenUsage { inputTokens } } }
    }
  } }
} }"""


def _counting(
    monkeypatch: pytest.MonkeyPatch, modules: list[str], name: str, calls: list[str]
) -> None:
    original: Callable[..., Any] = getattr(ids, name)

    def counted(*args: Any) -> Any:
        calls.append(name)
        return original(*args)

    for module in modules:
        monkeypatch.setattr(f"aibridge_graphql.schema.{module}.{name}", counted)


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every global ID and cursor the schema encodes."""
    calls: list[str] = []
    _counting(monkeypatch, ["interception", "session", "thread"], "encode_global_id", calls)
    _counting(monkeypatch, ["interception", "session", "thread"], "encode_cursor", calls)
    return calls


async def test_a_list_of_a_few_fields_encodes_no_id(encoded: list[str]) -> None:
    async with gateway(populated()) as gw:
        body = await gw.query(LIST)
        assert "errors" not in body, body
        assert len(body["data"]["interceptions"]["nodes"]) == 25
        assert encoded == []
        body = await gw.query(DASHBOARD)
        assert "errors" not in body, body
        assert len(body["data"]["sessions"]["nodes"]) == 20
        assert encoded == []


async def test_selected_ids_and_cursors_are_encoded_once_each(encoded: list[str]) -> None:
    async with gateway(populated(era="ai-gateway")) as gw:
        body = await gw.query(DASHBOARD_ALL)
    assert "errors" not in body, body
    edges = body["data"]["sessions"]["edges"]
    info = body["data"]["sessions"]["pageInfo"]
    assert (info["startCursor"], info["endCursor"]) == (edges[0]["cursor"], edges[-1]["cursor"])
    threads = [t for e in edges for t in e["node"]["threads"]["edges"]]
    assert any(t["node"]["agentFirewallSessionId"] for t in threads)
    # Per session: its id and cursor; per thread: its id and cursor; per page: start and end.
    assert encoded.count("encode_global_id") == len(edges) + len(threads)
    assert encoded.count("encode_cursor") == len(edges) + 2 + len(threads) + len(edges)


async def test_lazy_fields_answer_as_before() -> None:
    fake = populated()
    async with gateway(fake) as gw:
        body = await gw.query(LIST_ALL)
    assert "errors" not in body, body
    edges = body["data"]["interceptions"]["edges"]
    raw = fake.interceptions[0]
    first = edges[0]["node"]
    assert first["interceptionId"] == raw["id"]
    assert first["metadata"] == raw["metadata"]
    assert first["initiator"] == {
        "id": raw["initiator"]["id"],
        "username": raw["initiator"]["username"],
    }
    decoded = ids.decode_global_id(first["id"])
    assert str(decoded.id) == raw["id"]  # type: ignore[union-attr]
    assert ids.decode_cursor("Interception", edges[-1]["cursor"]) == fake.interceptions[24]["id"]


def test_computed_fields_stay_out_of_init_repr_and_eq() -> None:
    made: list[str] = []

    def shout(item: Item) -> str:
        made.append(item.raw)
        return item.raw.upper()

    @strawberry.type
    class Item:
        loud: str = computed(shout, "The raw text, upper case.")
        raw: strawberry.Private[str]

    item = Item(raw="abc")
    assert "loud" not in repr(item)
    assert item == Item(raw="abc")
    assert made == []
    assert item.loud == "ABC"
    assert made == ["abc"]
    with pytest.raises(TypeError):
        Item(raw="abc", loud="x")
