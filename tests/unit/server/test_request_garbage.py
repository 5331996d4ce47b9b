"""A finished request leaves its loaded data to reference counting, not the cycle collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from aibridge_graphql.upstream import models as m
from tests.support.gateway_fakes import gateway, populated

DASHBOARD = """{
  sessions(first: 5) {
    nodes { sessionId initiator { username } threads(first: 3) { nodes { threadId model } } }
  }
}"""
LOADED = (m.SessionThreadsResponse, m.Thread, m.ListSessionsResponse, m.Session, m.MinimalUser)


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """The cycle collector's finds while the test runs (kept, not freed)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_a_dashboards_pages_and_models_are_not_cyclic_garbage(
    saved_garbage: list[object],
) -> None:
    async with gateway(populated(sessions=5, threads=3)) as gw:
        body = await gw.query(DASHBOARD)
        assert not body.get("errors"), body
        assert len(body["data"]["sessions"]["nodes"]) == 5
        gc.collect()
        saved_garbage.clear()
        for _ in range(3):
            assert not (await gw.query(DASHBOARD)).get("errors")
        gc.collect()
    stranded = [type(o).__name__ for o in saved_garbage if isinstance(o, LOADED)]
    assert stranded == []
