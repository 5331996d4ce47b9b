"""Only the caller's token is forwarded, from the two accepted headers, and never logged."""

from __future__ import annotations

import logging

import pytest

from tests.support.gateway_fakes import gateway, populated

QUERY = "{ models }"


async def _post(headers: dict[str, str]) -> tuple[dict[str, object], list[dict[str, str]]]:
    fake = populated()
    async with gateway(fake) as gw:
        response = await gw.http.post("/graphql", json={"query": QUERY}, headers=headers)
        body = await response.json()
    return body, fake.headers_seen


async def test_session_token_header_is_forwarded_and_nothing_else() -> None:
    body, seen = await _post(
        {
            "Coder-Session-Token": "admin-token",
            "Cookie": "coder_session_token=other-token; theme=dark",
            "X-Forwarded-For": "10.0.0.1",
            "X-Custom": "secret-ish",
        }
    )
    assert body == {"data": {"models": ["model-0000", "model-0001", "model-0002"]}}
    (headers,) = seen
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["coder-session-token"] == "admin-token"
    for name in ("cookie", "x-forwarded-for", "x-custom", "authorization"):
        assert name not in lowered


async def test_bearer_header_is_accepted() -> None:
    body, seen = await _post({"Authorization": "Bearer admin-token"})
    assert "errors" not in body
    assert {k.lower(): v for k, v in seen[0].items()}["coder-session-token"] == "admin-token"


async def test_cookie_or_query_token_is_not_a_credential() -> None:
    fake = populated()
    async with gateway(fake) as gw:
        response = await gw.http.post(
            "/graphql?coder_session_token=admin-token",
            json={"query": QUERY},
            headers={"Cookie": "coder_session_token=admin-token"},
        )
        body = await response.json()
    assert body["data"] == {"models": None}
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert fake.tokens_seen == [None]


async def test_tokens_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = populated()
    fake.failures["/clients"] = RuntimeError("boom")
    async with gateway(fake) as gw:
        await gw.query("{ models clients sessions(first: 1) { totalCount } }")
    assert caplog.records
    assert "admin-token" not in caplog.text
