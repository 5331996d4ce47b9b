"""Running a gateway suite in both API eras, and what a test needing interceptions asserts instead.

The suites in `TWO_ERA_SUITES` (paths under tests/) run each test that reaches the stand-in
once per era: tests/conftest.py parametrizes `api_era` for them. A test that needs
`GET /interceptions` says so once: `@pytest.mark.needs_interceptions(query)`. In the sessions
era it runs as written; in the ai-gateway era (no `/interceptions`) its body is replaced by
`assert_interceptions_unsupported`, which asserts that the gateway answers `query` with
UPSTREAM_UNSUPPORTED pointing to `sessions`.
A test with only a part that needs interceptions checks that part with `expect_interceptions`.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from aibridge_graphql.server.app import create_app
from aibridge_graphql.settings import Settings
from aibridge_graphql.standin.eras import ApiEra

DEFAULT_QUERY = "{ interceptions(first: 1) { totalCount } }"


# The gateway suites run in both eras; the rest (gRPC, federation, e2e...) in the sessions era.
TWO_ERA_SUITES = ("integration", "frontend/test_relay_operations_live.py", "live")


def has_interceptions(era: ApiEra) -> bool:
    """Whether the upstream of `era` serves `GET /interceptions`."""
    return era == "sessions"


def assert_unsupported(body: dict[str, Any], *paths: str) -> None:
    """`paths` (dotted GraphQL paths) failed with UPSTREAM_UNSUPPORTED naming `sessions`."""
    errors = {".".join(map(str, e.get("path") or [])): e for e in body.get("errors", [])}
    for path in paths:
        assert path in errors, (path, body)
        error = errors[path]
        assert error["extensions"]["code"] == "UPSTREAM_UNSUPPORTED", error
        assert error["extensions"]["missing"] == "GET /interceptions", error
        assert error["extensions"]["instead"] == "sessions", error
        assert "`sessions`" in error["message"], error


def expect_interceptions(era: ApiEra, body: dict[str, Any], *paths: str) -> bool:
    """Whether the era serves `paths` (then the caller checks them); else asserts their error.

    In the ai-gateway era every path in `paths` is UPSTREAM_UNSUPPORTED and its data null.
    """
    if has_interceptions(era):
        return True
    assert_unsupported(body, *paths)
    for path in paths:
        value: Any = body["data"]
        for key in path.split("."):
            value = None if value is None else value[int(key) if key.isdigit() else key]
        assert value is None, (path, body["data"])
    return False


async def assert_interceptions_unsupported(
    upstream_url: str, token: str, query: str = DEFAULT_QUERY
) -> None:
    """The gateway in front of `upstream_url` answers `query` with UPSTREAM_UNSUPPORTED only.

    Every top-level field of `query` that reaches interceptions must be the error; the answer
    is a 200 with no other error, and the test's token is the caller's.
    """
    app = create_app(Settings(upstream_url=upstream_url))
    async with TestClient(TestServer(app, host="127.0.0.1")) as http:
        response = await http.post(
            "/graphql", json={"query": query}, headers={"Coder-Session-Token": token}
        )
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
    assert body.get("errors"), body
    paths = [".".join(map(str, e.get("path") or [])) for e in body["errors"]]
    assert_unsupported(body, *paths)
