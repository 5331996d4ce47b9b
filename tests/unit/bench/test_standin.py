"""bench/standin.py's verdicts: a goal is MET or MISSED on the median of the sizes it covers,
and n/a when its size was not run (`--sizes 2000,20000`), so a short run cannot claim more."""

from __future__ import annotations

from bench.standin import (
    DETAIL,
    SEED_GOAL,
    SESSIONS_PAGE,
    Goal,
    Results,
    Timing,
    goal_lines,
    parse_args,
)


def _results(ms_by_size: dict[int, float]) -> Results:
    results = Results()
    results.timings[(SESSIONS_PAGE, "sessions")] = {
        size: Timing([ms, ms, ms * 10], 1000) for size, ms in ms_by_size.items()
    }
    return results


def test_a_goal_at_every_size_is_judged_on_the_worst_median() -> None:
    goal = Goal(SESSIONS_PAGE, "sessions", None, 100, "flat")
    lines, ok = goal_lines([goal], _results({2_000: 20, 20_000: 99}), [2_000, 20_000])
    assert ok
    assert lines[0].startswith("  [MET]")
    assert "99.0 ms at 20,000" in lines[0]
    lines, ok = goal_lines([goal], _results({2_000: 20, 20_000: 101}), [2_000, 20_000])
    assert not ok
    assert lines[0].startswith("  [MISSED]")


def test_a_goal_at_a_size_not_run_is_neither_met_nor_missed() -> None:
    goals = [Goal(SESSIONS_PAGE, "sessions", 200_000, 300, "issue"), Goal(DETAIL, "x", None, 1, "")]
    lines, ok = goal_lines(goals, _results({2_000: 5}), [2_000])
    assert ok
    assert lines[0].startswith("  [n/a]")
    assert "size not run" in lines[0]
    assert lines[1].startswith("  [n/a]")
    assert lines[-1].startswith("  [n/a]")
    assert "seeding" in lines[-1]


def test_the_seeding_goal() -> None:
    size, limit = SEED_GOAL
    results = _results({size: 1})
    results.seed_seconds[size] = limit + 1
    lines, ok = goal_lines([], results, [size])
    assert not ok
    assert lines == [
        f"  [MISSED] seeding {size:,} interceptions < {limit:.0f} s: {limit + 1:.1f} s"
    ]


def test_sizes_option() -> None:
    assert parse_args(["--sizes", "20000,2_000", "--no-results"]).sizes == [2_000, 20_000]
    assert parse_args(["--no-results"]).sizes == [2_000, 20_000, 200_000, 1_000_000]
