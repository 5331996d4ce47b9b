"""What each live view calls a change: two answers in, events out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aibridge_graphql.core.live.views import (
    SessionsTracker,
    SpendTracker,
    Timeline,
    TimelineTracker,
)
from aibridge_graphql.upstream import models as m

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IDLE = timedelta(minutes=5)
USER = {"id": "00000000-0000-4000-8000-00000000000a", "username": "ana", "name": "Ana"}


def session(session_id: str, *, start: datetime, end: datetime, tokens: int = 10) -> m.Session:
    return m.Session(
        id=session_id,
        initiator=m.MinimalUser(**USER),  # type: ignore[arg-type]
        providers=["anthropic"],
        models=["claude"],
        started_at=start,
        ended_at=end,
        last_active_at=end,
        threads=1,
        token_usage_summary=m.SessionTokenUsageSummary(input_tokens=tokens, output_tokens=0),
    )


def sessions(*rows: m.Session) -> m.ListSessionsResponse:
    return m.ListSessionsResponse(count=len(rows), sessions=list(rows))


def kinds(changes: list[Any]) -> list[tuple[str, Any]]:
    return [
        (change.kind, change.key[0] if isinstance(change.key, tuple) else change.key)
        for change in changes
    ]


def test_the_first_answer_is_the_baseline_and_what_existing_subscribers_get() -> None:
    tracker = SessionsTracker(IDLE)
    a = session("a", start=T0, end=T0 + timedelta(minutes=1))
    assert tracker.update(sessions(a), T0 + timedelta(minutes=2)) == []
    assert [(c.kind, c.value) for c in tracker.existing()] == [("EXISTING", a)]


def test_sessions_are_added_updated_and_ended_once() -> None:
    tracker = SessionsTracker(IDLE)
    a = session("a", start=T0, end=T0 + timedelta(minutes=1))
    tracker.update(sessions(a), T0 + timedelta(minutes=2))
    b = session("b", start=T0 + timedelta(minutes=3), end=T0 + timedelta(minutes=3))
    a2 = session("a", start=T0, end=T0 + timedelta(minutes=3), tokens=20)
    seen = T0 + timedelta(minutes=4)
    assert kinds(tracker.update(sessions(b, a2), seen)) == [("ADDED", "b"), ("UPDATED", "a")]
    # Nothing new: nothing, until the polls saw neither change for IDLE; then ENDED, once.
    assert tracker.update(sessions(b, a2), seen + IDLE - timedelta(seconds=1)) == []
    assert kinds(tracker.update(sessions(b, a2), seen + IDLE)) == [("ENDED", "b"), ("ENDED", "a")]
    assert tracker.update(sessions(b, a2), seen + 2 * IDLE) == []
    # New activity after its end makes it UPDATED again.
    b2 = session("b", start=b.started_at, end=seen + 2 * IDLE)
    assert kinds(tracker.update(sessions(b2, a2), seen + 2 * IDLE)) == [("UPDATED", "b")]


def test_ended_is_what_the_polls_saw_not_the_upstream_timestamps() -> None:
    # Records stamped long ago (a skewed clock, synthetic data) still end only after IDLE.
    tracker = SessionsTracker(IDLE)
    tracker.update(sessions(), T0)
    old = T0 - timedelta(days=30)
    late = session("late", start=old, end=old)
    assert kinds(tracker.update(sessions(late), T0)) == [("UPDATED", "late")]
    assert tracker.update(sessions(late), T0 + timedelta(minutes=1)) == []
    assert kinds(tracker.update(sessions(late), T0 + IDLE)) == [("ENDED", "late")]


def test_a_session_active_at_the_baseline_ends_after_idle() -> None:
    tracker = SessionsTracker(IDLE)
    active = session("active", start=T0, end=T0)
    tracker.update(sessions(active), T0 + timedelta(seconds=10))
    assert kinds(tracker.update(sessions(active), T0 + timedelta(seconds=10) + IDLE)) == [
        ("ENDED", "active")
    ]


def test_a_session_that_started_earlier_rising_into_the_view_is_updated_not_added() -> None:
    tracker = SessionsTracker(IDLE)
    tracker.update(sessions(session("new", start=T0, end=T0)), T0)
    old = session("old", start=T0 - timedelta(days=1), end=T0 + timedelta(minutes=1))
    assert kinds(tracker.update(sessions(old), T0 + timedelta(minutes=1))) == [("UPDATED", "old")]


def test_sessions_idle_at_the_baseline_are_never_reported_ended() -> None:
    tracker = SessionsTracker(IDLE)
    stale = session("stale", start=T0 - timedelta(days=2), end=T0 - timedelta(days=1))
    tracker.update(sessions(stale), T0)
    assert tracker.update(sessions(stale), T0 + 2 * IDLE) == []


def thread(thread_id: int, *, end: datetime, tokens: int = 1) -> m.Thread:
    return m.Thread(
        id=UUID(int=thread_id),
        model="claude",
        provider="anthropic",
        started_at=T0,
        ended_at=end,
        token_usage=m.ThreadsTokenUsage(input_tokens=tokens),
    )


def timeline(*threads: m.Thread) -> Timeline:
    end = max(t.ended_at for t in threads if t.ended_at is not None)
    header = m.SessionThreadsResponse(
        id="s",
        initiator=m.MinimalUser(**USER),  # type: ignore[arg-type]
        providers=[],
        models=[],
        started_at=T0,
        ended_at=end,
        token_usage_summary=m.ThreadsTokenUsage(
            input_tokens=sum(t.token_usage.input_tokens for t in threads)
        ),
        threads=list(threads),
    )
    return Timeline(header, list(threads))


def test_a_timeline_reports_new_and_grown_threads_then_ends_and_completes() -> None:
    tracker = TimelineTracker(IDLE)
    one = thread(1, end=T0)
    assert tracker.update(timeline(one), T0) == []
    assert not tracker.complete
    two = thread(2, end=T0 + timedelta(minutes=1))
    one_grown = thread(1, end=T0 + timedelta(minutes=1), tokens=5)
    seen = T0 + timedelta(minutes=1)
    changes = tracker.update(timeline(one_grown, two), seen)
    assert [(c.kind, c.key) for c in changes] == [("UPDATED", UUID(int=1)), ("ADDED", UUID(int=2))]
    assert all(c.session.id == "s" for c in changes)
    assert tracker.update(timeline(one_grown, two), seen + IDLE - timedelta(seconds=1)) == []
    [ended] = tracker.update(timeline(one_grown, two), seen + IDLE)
    assert (ended.kind, ended.value) == ("ENDED", None)
    assert tracker.complete


def test_a_quiet_timeline_ends_after_idle_from_the_first_poll() -> None:
    tracker = TimelineTracker(IDLE)
    assert tracker.update(timeline(thread(1, end=T0 - timedelta(days=9))), T0) == []
    assert [c.kind for c in tracker.existing()] == ["EXISTING"]
    [ended] = tracker.update(timeline(thread(1, end=T0 - timedelta(days=9))), T0 + IDLE)
    assert ended.kind == "ENDED"
    assert tracker.complete


def spend(micros: int, limit: int | None) -> m.UserAISpendStatus:
    budget = None if limit is None else {"spend_limit_micros": limit, "limit_source": "group"}
    return m.UserAISpendStatus.model_validate(
        {
            "user_id": USER["id"],
            "effective_budget": budget,
            "current_spend_micros": micros,
            "period_start": T0.isoformat(),
            "period_end": (T0 + timedelta(days=30)).isoformat(),
        }
    )


def test_spend_reports_changes_and_each_threshold_crossed_upwards_once() -> None:
    tracker = SpendTracker()
    assert tracker.update(spend(100, 1000), T0) == []
    assert [c.kind for c in tracker.existing()] == ["CURRENT"]
    assert tracker.update(spend(100, 1000), T0) == []
    assert [(c.kind, c.threshold) for c in tracker.update(spend(800, 1000), T0)] == [
        ("CHANGED", None)
    ]
    # One jump over both thresholds reports both.
    assert [(c.kind, c.threshold) for c in tracker.update(spend(1200, 1000), T0)] == [
        ("CHANGED", None),
        ("THRESHOLD", 85),
        ("THRESHOLD", 100),
    ]
    assert [c.kind for c in tracker.update(spend(1300, 1000), T0)] == ["CHANGED"]
    # A raised budget drops it below 85 %; reaching 85 % of the new one reports it again.
    assert [c.kind for c in tracker.update(spend(1300, 10_000), T0)] == ["CHANGED"]
    assert [(c.kind, c.threshold) for c in tracker.update(spend(8500, 10_000), T0)] == [
        ("CHANGED", None),
        ("THRESHOLD", 85),
    ]


def test_spend_without_a_budget_has_no_threshold() -> None:
    tracker = SpendTracker()
    tracker.update(spend(0, None), T0)
    assert [c.kind for c in tracker.update(spend(10**9, None), T0)] == ["CHANGED"]
