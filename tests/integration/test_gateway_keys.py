"""Coder's AI Gateway keys through GraphQL, against the real stand-in on loopback: the list, a
create whose secret is in its payload only (never in the list, the logs or a second answer), a
delete, Coder's owner-only rule and its messages as GraphQL codes, a lost POST answer as
UPSTREAM_OUTCOME_UNKNOWN after exactly one POST, and the sessions era as UPSTREAM_UNSUPPORTED
without a call. tests/standin/test_api_keys.py holds the stand-in to coder/coder's tests."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aibridge_graphql.standin.app import create_app
from aibridge_graphql.standin.tokens import read_tokens
from tests.integration.test_gateway_mutations import _error, _make_db
from tests.support.gateway_helpers import WriteFaults, serve_gateway, write_fault_proxy
from tests.support.servers import run_app_in_thread

LIST = "{ aiGatewayKeys { id name keyPrefix createdAt lastUsedAt } }"
CREATE = """mutation($input: CreateAIGatewayKeyInput!) {
  createAIGatewayKey(input: $input) {
    clientMutationId secret key { id name keyPrefix createdAt lastUsedAt }
  }
}"""
DELETE = """mutation($input: DeleteAIGatewayKeyInput!) {
  deleteAIGatewayKey(input: $input) { clientMutationId deletedId }
}"""
# Coder's httpapi.Forbidden, its message and detail as the gateway joins them.
FORBIDDEN = (
    "Forbidden. You don't have permission to view this content. If you believe this is a "
    "mistake, please contact your administrator or try signing in with different credentials."
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_db(tmp_path_factory.mktemp("keys") / "standin.db")


@pytest.fixture(scope="module")
def url(db: Path) -> Iterator[str]:
    with run_app_in_thread(lambda: create_app(db, api_era="ai-gateway")) as base:
        yield base


@pytest.fixture(scope="module")
def sessions_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = _make_db(tmp_path_factory.mktemp("keys-sessions") / "standin.db")
    with run_app_in_thread(lambda: create_app(path, api_era="sessions")) as base:
        yield base


@pytest.fixture(scope="module")
def tokens(db: Path, url: str) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {user.username: user.token for user in read_tokens(conn)}


async def test_a_key_round_trips_and_its_secret_is_shown_once(
    url: str, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve_gateway(url, tokens["admin"]) as gw:
        assert await gw.data(LIST) == {"aiGatewayKeys": []}
        made = await gw.data(CREATE, {"input": {"name": "replica-a", "clientMutationId": "c1"}})
        payload = made["createAIGatewayKey"]
        secret, key = payload["secret"], payload["key"]
        assert payload["clientMutationId"] == "c1"
        assert (key["name"], key["lastUsedAt"]) == ("replica-a", None)
        assert len(secret) == 43
        assert secret.startswith(key["keyPrefix"])
        listed = await gw.query(LIST)
        assert listed == {"data": {"aiGatewayKeys": [key]}}
        assert secret not in str(listed)
        gone = await gw.data(DELETE, {"input": {"id": key["id"]}})
        assert gone == {"deleteAIGatewayKey": {"clientMutationId": None, "deletedId": key["id"]}}
        assert await gw.data(LIST) == {"aiGatewayKeys": []}
        assert len(gw.calls) == 5  # list, create, list, delete, list: one call each
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert secret not in caplog.text


async def test_only_owners_manage_keys(url: str, tokens: dict[str, str]) -> None:
    async with serve_gateway(url) as gw:
        for who in ("ursula", "chen", "auditor", "farah"):
            for query, variables in (
                (LIST, None),
                (CREATE, {"input": {"name": "denied"}}),
                (DELETE, {"input": {"id": "00000000-0000-4000-8000-000000000009"}}),
            ):
                body = await gw.query(query, variables, token=tokens[who])
                assert list(body["data"].values()) == [None], (who, body)
                assert _error(body)["extensions"] == {"code": "FORBIDDEN"}, who
                assert _error(body)["message"] == FORBIDDEN
        anonymous = await gw.query(LIST, anonymous=True)
        assert _error(anonymous)["extensions"]["code"] == "UNAUTHENTICATED"


async def test_coders_refusals_keep_its_message(url: str, tokens: dict[str, str]) -> None:
    async with serve_gateway(url, tokens["admin"]) as gw:
        body = await gw.query(CREATE, {"input": {"name": "Upper"}})
        assert _error(body)["message"] == "Invalid key name."
        assert _error(body)["extensions"]["code"] == "BAD_USER_INPUT"
        assert _error(body)["extensions"]["validations"][0]["field"] == "name"
        empty = await gw.query(CREATE, {"input": {"name": ""}})
        assert _error(empty)["message"] == "Validation failed."
        made = await gw.data(CREATE, {"input": {"name": "twice"}})
        again = await gw.query(CREATE, {"input": {"name": "twice"}})
        assert _error(again)["message"] == "Key name must be unique."
        key_id = made["createAIGatewayKey"]["key"]["id"]
        await gw.data(DELETE, {"input": {"id": key_id}})
        missing = await gw.query(DELETE, {"input": {"id": key_id}})
        assert _error(missing)["extensions"] == {"code": "NOT_FOUND"}
        calls = len(gw.calls)
        malformed = await gw.query(DELETE, {"input": {"id": "not-a-uuid"}})
        assert _error(malformed)["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}
        assert len(gw.calls) == calls  # refused before any call


async def test_a_create_whose_answer_is_lost_is_posted_once_and_outcome_unknown(
    url: str, tokens: dict[str, str]
) -> None:
    faults = WriteFaults(hold_post=3.0)
    with run_app_in_thread(lambda: write_fault_proxy(url, faults)) as hop:
        async with serve_gateway(
            hop, tokens["admin"], request_deadline=1.0, retries=3, retry_backoff=0
        ) as gw:
            body = await gw.query(CREATE, {"input": {"name": "lost"}})
            assert body["data"] == {"createAIGatewayKey": None}
            assert _error(body)["extensions"] == {"code": "UPSTREAM_OUTCOME_UNKNOWN"}
    assert faults.count("POST") == 1


async def test_the_sessions_era_is_unsupported_without_a_call(
    sessions_url: str, tokens: dict[str, str]
) -> None:
    cases: list[tuple[str, dict[str, Any] | None, str]] = [
        (LIST, None, "GET /api/v2/ai-gateway/keys"),
        (CREATE, {"input": {"name": "x"}}, "POST /api/v2/ai-gateway/keys"),
        (
            DELETE,
            {"input": {"id": "00000000-0000-4000-8000-000000000009"}},
            "DELETE /api/v2/ai-gateway/keys/{key}",
        ),
    ]
    async with serve_gateway(sessions_url, tokens["admin"]) as gw:
        for query, variables, missing in cases:
            body = await gw.query(query, variables)
            assert _error(body)["extensions"] == {
                "code": "UPSTREAM_UNSUPPORTED",
                "missing": missing,
            }
            assert "no AI Gateway keys" in _error(body)["message"]
        assert gw.calls == []
