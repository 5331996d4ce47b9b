"""The benchmarks' reports as files (bench/report.py), which docs/benchmarks.md links.

What a run prints still reaches stdout; a finished run also writes it, under a header naming the
command and the commit, to `--results` (default bench/results/<name>.txt); a crashed run writes
nothing, so the file keeps the last finished run.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from bench.report import RESULTS_DIR, add_results_option, recorded


def test_a_finished_run_is_printed_and_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out" / "fake.txt"
    with recorded(path, "bench.fake", ["--seconds", "3"]):
        print("view  req/s")
        print("  [MISSED] a goal", flush=True)
    printed = capsys.readouterr().out
    assert printed.startswith("view  req/s\n  [MISSED] a goal\n")
    written = path.read_text(encoding="utf-8")
    head, _, body = written.partition("\n\n")
    assert head.splitlines()[0] == "# python -m bench.fake --seconds 3"
    assert ", commit " in head.splitlines()[1]
    assert "load average" in head
    assert body == "view  req/s\n  [MISSED] a goal\n"


def _crashing_run(path: Path) -> None:
    with recorded(path, "bench.fake", []):
        print("half a report")
        raise RuntimeError("the stand-in died")


def test_a_crashed_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fake.txt"
    path.write_text("the last finished run\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="stand-in died"):
        _crashing_run(path)
    assert path.read_text(encoding="utf-8") == "the last finished run\n"


def test_the_option_defaults_to_the_results_folder_and_can_be_turned_off(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_results_option(parser, "peer")
    assert parser.parse_args([]).results == RESULTS_DIR / "peer.txt"
    assert parser.parse_args(["--results", str(tmp_path / "x")]).results == tmp_path / "x"
    assert parser.parse_args(["--no-results"]).results is None
    with recorded(None, "bench.peer", []):
        print("nowhere")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("module", ["gateway", "peer", "soak", "standin"])
def test_each_benchmark_takes_the_option(module: str) -> None:
    bench = importlib.import_module(f"bench.{module}")
    assert bench.parse_args([]).results == RESULTS_DIR / f"{module}.txt"
    assert bench.parse_args(["--no-results"]).results is None
