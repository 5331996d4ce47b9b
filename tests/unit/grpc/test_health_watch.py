"""grpc/server.py's health service: Watch follows the status, and ends once drained."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aibridge_graphql.grpc.server import UpstreamHealth
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient

Status = health_pb2.HealthCheckResponse
WAIT_S = 10.0


@pytest.fixture
async def health() -> AsyncIterator[tuple[UpstreamHealth, Any]]:
    """The health service alone on a loopback port, and a stub on a channel to it."""
    client = UpstreamClient(Settings(upstream_url="http://127.0.0.1:9"))
    servicer = UpstreamHealth(client)
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield servicer, health_pb2_grpc.HealthStub(channel)
    finally:
        await channel.close()
        await server.stop(None)
        await client.aclose()


async def next_status(stream: Any) -> Any:
    reply = await asyncio.wait_for(stream.read(), WAIT_S)
    assert reply is not grpc.aio.EOF
    return cast(Any, reply).status


async def test_watch_follows_the_status_and_ends_once_drained(
    health: tuple[UpstreamHealth, Any],
) -> None:
    servicer, stub = health
    stream = stub.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
    assert await next_status(stream) == Status.SERVING
    await servicer.set("", Status.NOT_SERVING)
    assert await next_status(stream) == Status.NOT_SERVING
    await servicer.set("", Status.SERVING)
    assert await next_status(stream) == Status.SERVING
    await servicer.drain()
    assert await next_status(stream) == Status.NOT_SERVING
    assert await asyncio.wait_for(stream.read(), WAIT_S) is grpc.aio.EOF
    assert await stream.code() == grpc.StatusCode.OK
    # Drained for good: a later probe's result changes nothing.
    await servicer.set("", Status.SERVING)
    check = await stub.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
    assert check.status == Status.NOT_SERVING


async def test_watch_of_an_unknown_service_ends_once_drained(
    health: tuple[UpstreamHealth, Any],
) -> None:
    servicer, stub = health
    stream = stub.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=WAIT_S)
    assert await next_status(stream) == Status.SERVICE_UNKNOWN
    await servicer.drain()
    assert await asyncio.wait_for(stream.read(), WAIT_S) is grpc.aio.EOF
    assert await stream.code() == grpc.StatusCode.OK


async def test_a_watch_begun_while_draining_says_not_serving_and_ends(
    health: tuple[UpstreamHealth, Any],
) -> None:
    servicer, stub = health
    await servicer.drain()
    stream = stub.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
    assert await next_status(stream) == Status.NOT_SERVING
    assert await asyncio.wait_for(stream.read(), WAIT_S) is grpc.aio.EOF
