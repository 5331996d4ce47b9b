"""A session call's read_mask chooses the record projection its loaders are built with."""

from __future__ import annotations

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from aibridge_graphql.grpc import convert
from aibridge_graphql.upstream.projection import ALL_RECORDS


@pytest.mark.parametrize(
    ("paths", "read"),
    [
        (None, set()),  # the default: no threads
        (["session_id", "token_usage"], set()),
        (["network_call_logs"], set()),  # its session-detail pages' actions are not read
        (["session_id", "threads"], {"agentic_actions"}),
    ],
)
def test_only_a_mask_naming_threads_reads_their_agentic_actions(
    paths: list[str] | None, read: set[str]
) -> None:
    mask = convert.read_mask(FieldMask(paths=paths or []), paths is not None)
    assert convert.unread_records(mask) == ALL_RECORDS - read
