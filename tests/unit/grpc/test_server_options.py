"""The gRPC server's channel arguments follow the settings (docs/grpc.md#bursts-and-keepalive)."""

from __future__ import annotations

from aibridge_graphql.grpc.server import server_options
from aibridge_graphql.settings import Settings


def test_defaults_take_a_burst_of_500_and_idle_pings() -> None:
    options = dict(server_options(Settings()))
    assert options["grpc.max_concurrent_streams"] == 1000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_recv_ping_interval_without_data_ms"] == 10_000
    assert options["grpc.keepalive_time_ms"] == 60_000


def test_settings_reach_the_options() -> None:
    settings = Settings(
        grpc_max_concurrent_streams=50,
        grpc_keepalive_permit_without_calls=False,
        grpc_keepalive_min_ping_interval=2.5,
        grpc_keepalive_timeout=3,
    )
    options = dict(server_options(settings))
    assert options["grpc.max_concurrent_streams"] == 50
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert options["grpc.http2.min_recv_ping_interval_without_data_ms"] == 2500
    assert options["grpc.keepalive_timeout_ms"] == 3000
