"""Fixtures of the gRPC face's tests: the face on loopback before the seeded stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpc_face.grpc_support import RunningGrpc, face_settings, run_grpc_in_thread


@pytest.fixture(scope="module")
def face(standin_url: str) -> Iterator[RunningGrpc]:
    """The gRPC face before the session's seeded stand-in."""
    with run_grpc_in_thread(face_settings(standin_url)) as running:
        yield running
