"""A request leaves no reference cycles behind: all it built is freed by reference counting.

Under load the cycle collector's passes cost more the more they find; a cycle through a request's
context kept its loaders, pages and aiohttp request alive until a full collection (issue 10).
Failed fields too: their errors' tracebacks held the frames that raised them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tests.support.gateway_helpers import serve_gateway

QUERIES = [
    "{ models }",
    "{ interceptions(first: 5) { nodes { interceptionId model tokenUsages { inputTokens } } } }",
    """{ sessions(first: 3) { totalCount nodes { sessionId threads(first: 2) {
         nodes { threadId agenticActions { model toolCalls { tool } } } } } } }""",
    '{ models session(sessionId: "no-such-session") { sessionId } }',  # NOT_FOUND
    "{ sessions(first: 1) { nodes { threads(first: 1, last: 1) { totalCount } } } }",  # bad input
]
OURS = ("aibridge_graphql.", "graphql.", "strawberry.", "aiodataloader")


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The collector runs only when asked, and is restored afterwards."""
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.needs_interceptions("{ interceptions(first: 1) { nodes { model } } }")
@pytest.mark.usefixtures("collector_off")
async def test_requests_leave_no_cyclic_garbage(standin_url: str, tokens: dict[str, str]) -> None:
    async with serve_gateway(standin_url, tokens["admin"]) as gw:
        for query in QUERIES:  # first use builds caches that live on (and validates)
            await gw.query(query)
        gc.collect()  # frees what came before
        gc.set_debug(gc.DEBUG_SAVEALL)  # from now on, what a collection finds is kept to look at
        failed = 0
        for _ in range(5):
            for query in QUERIES:
                failed += "errors" in await gw.query(query)
        gc.collect()
        found = [
            f"{type(obj).__module__}.{type(obj).__qualname__}"
            for obj in gc.garbage
            if type(obj).__module__.startswith(OURS)
        ]
    assert failed == 10  # the two failing queries, five times
    assert found == []
