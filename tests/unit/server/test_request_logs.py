"""Request ids (taken from or added as `X-Request-Id`, forwarded upstream) and JSON logs."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from aibridge_graphql.core.scope import accept_request_id
from aibridge_graphql.server.apq import sha256_hex
from aibridge_graphql.server.jsonlog import (
    QUIET_LOGGERS,
    TEXT_FORMAT_WITH_PID,
    JsonFormatter,
    configure_logging,
)
from tests.support.observability import DASHBOARD, TOKEN, observed_gateway

HEX_ID = 32


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The process's logs as `serve` configures them (JSON, here at DEBUG), into a buffer."""
    stream = io.StringIO()
    root = logging.getLogger()
    quiet = [logging.getLogger(name) for name in QUIET_LOGGERS]
    saved = (list(root.handlers), root.level, [logger.level for logger in quiet])
    configure_logging(logging.DEBUG, "json", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for logger, level in zip(quiet, saved[2], strict=True):
            logger.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access(stream: io.StringIO) -> list[dict[str, Any]]:
    return [record for record in records(stream) if record["logger"] == "aibridge_graphql.access"]


async def test_the_callers_request_id_is_returned_forwarded_and_logged(
    json_lines: io.StringIO,
) -> None:
    async with observed_gateway() as gw:
        status, _, headers = await gw.post(
            {"query": DASHBOARD, "variables": {"first": 2}},
            headers={"X-Request-Id": "req-42.a:b_c"},
        )
    assert status == 200
    assert headers["X-Request-Id"] == "req-42.a:b_c"
    assert len(gw.fake.headers_seen) == 3
    assert {seen["x-request-id"] for seen in gw.fake.headers_seen} == {"req-42.a:b_c"}
    [line] = access(json_lines)
    assert line["request_id"] == "req-42.a:b_c"
    assert line["level"] == "INFO"
    assert line["message"] == "POST /graphql 200"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/graphql", 200)
    assert line["operation"] == "Dashboard"
    assert line["outcome"] == "ok"
    assert isinstance(line["duration_ms"], float)
    assert line["time"].endswith("Z")


@pytest.mark.parametrize(
    "unsafe",
    ["x" * 129, "has space", "new\nline", "trailing\n", 'quote"d', "semi;colon", "ünïcode"],
)
async def test_an_unsafe_request_id_is_replaced(unsafe: str) -> None:
    async with observed_gateway() as gw:
        # aiohttp refuses to send a header with a newline: build the request id check directly.
        if "\n" in unsafe:
            assert len(accept_request_id(unsafe)) == HEX_ID
            return
        _, _, headers = await gw.post({"query": "{ models }"}, headers={"X-Request-Id": unsafe})
    generated = headers["X-Request-Id"]
    assert generated != unsafe
    assert len(generated) == HEX_ID
    assert gw.fake.headers_seen[0]["x-request-id"] == generated


async def test_a_request_without_an_id_gets_one_even_when_refused(
    json_lines: io.StringIO,
) -> None:
    async with observed_gateway() as gw:
        _, _, ok_headers = await gw.post({"query": "{ models }"})
        refused = await gw.http.post("/graphql", json={}, headers={"X-Request-Id": "refused-1"})
    assert len(ok_headers["X-Request-Id"]) == HEX_ID
    assert refused.status == 400
    assert refused.headers["X-Request-Id"] == "refused-1"
    lines = access(json_lines)
    assert [(line["status"], line["request_id"]) for line in lines] == [
        (200, ok_headers["X-Request-Id"]),
        (400, "refused-1"),
    ]


async def test_credentials_and_caller_headers_are_never_logged(json_lines: io.StringIO) -> None:
    secret_variable = "variable-secret-value"
    async with observed_gateway() as gw:
        await gw.post({"query": "{ models }"}, headers={"Authorization": f"Bearer {TOKEN}"})
        await gw.get(
            {
                "query": "query Q($p: String) { models(prefix: $p) }",
                "variables": {"p": secret_variable},
            }
        )
        await gw.http.post(
            "/graphql",
            json={"query": "{ models }"},
            headers={"Coder-Session-Token": "signed-out-secret"},
        )
    text = json_lines.getvalue()
    assert access(json_lines), "nothing was logged"
    for secret in (TOKEN, "signed-out-secret", secret_variable, "Coder-Session-Token"):
        assert secret not in text


def test_each_record_is_one_json_object_on_one_line(json_lines: io.StringIO) -> None:
    logger = logging.getLogger("aibridge_graphql.test")
    logger.info("hello %s", "world", extra={"status": 200})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    first, second = (json.loads(line) for line in json_lines.getvalue().splitlines())
    assert first["message"] == "hello world"
    assert first["status"] == 200
    assert first["level"] == "INFO"
    assert "request_id" not in first  # logged outside any request
    assert second["level"] == "ERROR"
    assert "ValueError: boom" in second["exc_info"]


async def test_the_access_line_names_the_persisted_query_lookup(json_lines: io.StringIO) -> None:
    query = "query Models { models }"
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}
    async with observed_gateway() as gw:
        await gw.get({"extensions": extensions})
        await gw.post({"query": query, "extensions": extensions})
    miss, registered = access(json_lines)
    assert (miss["apq"], "operation" in miss) == ("miss", False)
    assert (registered["apq"], registered["operation"]) == ("registered", "Models")


async def test_an_unhandled_error_is_masked_and_logged_with_the_request_id(
    json_lines: io.StringIO,
) -> None:
    async def broken(_: web.Request) -> web.Response:
        raise RuntimeError("internal detail")

    def add_broken(app: web.Application) -> None:
        app.router.add_get("/broken", broken)

    async with observed_gateway(setup=[add_broken]) as gw:
        response = await gw.http.get("/broken", headers={"X-Request-Id": "bug-1"})
        body = await response.json()
    assert response.status == 500
    assert response.headers["X-Request-Id"] == "bug-1"
    assert body == {"message": "Internal server error", "request_id": "bug-1"}
    [error] = [record for record in records(json_lines) if record["level"] == "ERROR"]
    assert error["request_id"] == "bug-1"
    assert "RuntimeError: internal detail" in error["exc_info"]
    assert [(line["status"], line["request_id"]) for line in access(json_lines)] == [(500, "bug-1")]


def test_lines_carry_the_process_id_only_when_several_processes_share_the_stream() -> None:
    record = logging.LogRecord("aibridge_graphql.workers", logging.INFO, "", 0, "ready", None, None)
    alone = json.loads(JsonFormatter().format(record))
    shared = json.loads(JsonFormatter(with_pid=True).format(record))
    assert "pid" not in alone
    assert shared["pid"] == os.getpid()
    assert f"[{os.getpid()}]: ready" in logging.Formatter(TEXT_FORMAT_WITH_PID).format(record)
