"""`make bench`'s workers section is on by default and takes the count to compare with one
process (bench/gateway.py, bench/workers.py); it runs nothing here."""

from __future__ import annotations

import pytest

from bench.gateway import parse_args
from bench.peer import Point
from bench.workers import WorkersPoint, ratios


def test_the_section_compares_auto_with_one_process_by_default() -> None:
    args = parse_args([])
    assert (args.workers, args.workers_seconds) == ("auto", 10.0)


def test_a_count_or_auto_is_taken_and_zero_seconds_skips_the_section() -> None:
    args = parse_args(["--workers", " 4 ", "--workers-seconds", "0"])
    assert (args.workers, args.workers_seconds) == ("4", 0.0)
    assert parse_args(["--workers", "AUTO"]).workers == "auto"


@pytest.mark.parametrize("value", ["1", "0", "two", "²"])
def test_anything_else_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(["--workers", value])
    assert stopped.value.code == 2
    assert "a whole number from 2, or auto" in capsys.readouterr().err


def point(view: str, workers: str, good: int) -> WorkersPoint:
    return WorkersPoint(view, workers, Point(good, 0, 1.0, 2.0, 10.0, 5.0), 1.0, 0.5)


def test_the_ratio_is_the_workers_throughput_over_one_process() -> None:
    points = [point("dashboard", "1", 100), point("dashboard", "auto (2)", 180)]
    assert ratios(points) == {"dashboard": 1.8}
