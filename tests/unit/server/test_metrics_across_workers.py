"""`/metrics` under `serve --workers N`: what one scrape shows of several processes' series, each
merged as its kind asks (prometheus_client's multiprocess mode; docs/operations.md#metrics).

Two real interpreters write as workers do (the mode is chosen when prometheus_client is imported,
so it cannot be switched on in this process); this process reads their files as `/metrics` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from aibridge_graphql.core.metrics import MULTIPROCESS_DIR_ENV, exposition_registry

WORKER = """
import os
import sys
from aibridge_graphql.core.metrics import GatewayMetrics
from aibridge_graphql.server.looplag import LoopLagMonitor

metrics = GatewayMetrics()
monitor = LoopLagMonitor(metrics.registry)
in_flight, lag, operations = sys.argv[1:]
metrics.in_flight.inc(float(in_flight))
monitor.observe(float(lag))
for _ in range(int(operations)):
    metrics.observe_operation("Dashboard", [], 0.01)
print(os.getpid())
"""


def run_worker(directory: Path, in_flight: int, lag: float, operations: int) -> int:
    """One process writing as a worker does; its pid (its files are named after it)."""
    env = {**os.environ, MULTIPROCESS_DIR_ENV: str(directory)}
    args = [str(in_flight), str(lag), str(operations)]
    process = subprocess.run(
        [sys.executable, "-c", WORKER, *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert process.returncode == 0, process.stderr
    pid = int(process.stdout)
    assert (directory / f"counter_{pid}.db").exists()
    return pid


def scrape(directory: Path) -> dict[str, float]:
    """Every sample of a scrape that merges `directory`, by name and labels."""
    text = generate_latest(exposition_registry(CollectorRegistry(), str(directory))).decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_one_scrape_merges_every_worker_each_series_as_its_kind_asks(tmp_path: Path) -> None:
    first = run_worker(tmp_path, in_flight=2, lag=0.3, operations=3)
    second = run_worker(tmp_path, in_flight=1, lag=0.1, operations=4)
    assert first != second

    merged = scrape(tmp_path)
    operations = "aibridge_graphql_operation_duration_seconds_count{operation=Dashboard,outcome=ok}"
    assert merged[operations] == 7  # counted by both, summed
    assert merged["aibridge_http_requests_in_flight{}"] == 3  # summed over live workers
    assert merged["aibridge_event_loop_lag_max_seconds{}"] == 0.3  # the largest
    assert merged["aibridge_event_loop_lag_seconds_count{}"] == 2  # every sample
    assert not any("pid=" in name for name in merged), "no per-worker series"

    # The master reaps a worker: its requests are no longer in flight, its counts stay.
    mark_process_dead(first, str(tmp_path))  # type: ignore[no-untyped-call]
    after = scrape(tmp_path)
    assert after["aibridge_http_requests_in_flight{}"] == 1
    assert after[operations] == 7
    assert after["aibridge_event_loop_lag_max_seconds{}"] == 0.3


def test_a_single_process_serves_its_own_registry() -> None:
    own = CollectorRegistry()
    assert exposition_registry(own, None) is own
