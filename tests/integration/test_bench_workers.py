"""`make bench`'s workers section end to end, as a smoke (a fifth of a second a point, no
warm-up; it measures nothing): the stand-in, its replay, `serve --workers 1` and `--workers 2`
start, every response of both views passes the body check, and the report prints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aibridge_graphql.standin.tokens import generate_token
from bench.harness import cli_path, seed
from bench.workers import VIEWS, measure_workers, report_workers


def test_the_workers_section_runs_both_gateways_over_both_views(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = generate_token()
    db = tmp_path / "standin.db"
    seed(db, 200, token)
    env = {**os.environ, "AIBRIDGE_LOG_LEVEL": "WARNING"}
    points = measure_workers(db, tmp_path, cli_path(), env, token, (0.2, 0.0), "2")
    assert [(p.view, p.workers) for p in points] == [
        (view, workers) for workers in ("1", "2") for view in VIEWS
    ]
    for p in points:
        assert p.point.good > 0, p
        assert p.point.bad == 0, p
        assert p.point.cpu_s > 0, p
    report_workers(points, 0.2)
    printed = capsys.readouterr().out
    assert "Throughput with workers (c16, 0.2 s a point" in printed
    assert "dashboard" in printed.splitlines()[-1]
    assert "25-row list" in printed.splitlines()[-1]
