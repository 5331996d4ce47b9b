"""Fixtures of the gRPC face's tests: the face on loopback before the seeded stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aibridge_graphql.settings import Settings
from grpc_support import RunningGrpc, run_grpc_in_thread


def face_settings(standin_url: str, **overrides: object) -> Settings:
    """Settings of a face on 127.0.0.1, any free port, before the stand-in."""
    return Settings(
        upstream_url=standin_url,  # type: ignore[arg-type]
        host="127.0.0.1",
        grpc_port=0,
        retries=0,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def face(standin_url: str) -> Iterator[RunningGrpc]:
    """The gRPC face before the session's seeded stand-in."""
    with run_grpc_in_thread(face_settings(standin_url)) as running:
        yield running
