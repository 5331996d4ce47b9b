"""What a live view polls and how it turns two answers into changes (docs/live.md).

A `View` names one upstream request (its `key`: equal views share one poller) and fetches it with
a tick's loaders; its `Tracker` compares each answer with the last and says what changed. Kinds:

- sessions: `ADDED` (started after the view's first poll), `UPDATED` (a session's row changed:
  activity, tokens, threads, network calls), `ENDED` (seen unchanged for `idle_after`), and
  `EXISTING` (the first poll's rows, to a subscriber that asked for them);
- timeline: `ADDED`/`UPDATED` threads, then `ENDED` once nothing changed for `idle_after` (the
  view is then complete);
- spend: `CURRENT` (the status when subscribing), `CHANGED` (spend or effective budget), and
  `THRESHOLD` when spend reaches 85 % or 100 % of the budget (where Coder notifies).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aibridge_graphql.core.loaders import THREADS_LIMIT_MAX, Loaders
from aibridge_graphql.upstream import models as m
from aibridge_graphql.upstream.requests import (
    UpstreamRequest,
    session_threads_request,
    sessions_request,
    user_ai_spend_request,
)
from aibridge_graphql.upstream.search_query import SessionFilter

# Percent of the effective budget at which Coder notifies a user (and so do we).
SPEND_THRESHOLDS = (85, 100)


@dataclass(frozen=True, slots=True)
class Change:
    """One event of a view: its kind, what it is about (`key`) and the upstream record."""

    kind: str
    key: Hashable
    value: Any
    # The session header a timeline change belongs to (its `value` is then a thread or None).
    session: Any = None
    threshold: int | None = None


class Tracker(Protocol):
    """A view's memory of its last answer (one per poller)."""

    complete: bool

    def update(self, answer: Any, now: datetime) -> list[Change]:
        """The changes since the previous answer (none on the first: it is the baseline)."""

    def existing(self) -> list[Change]:
        """What a subscriber that asked for the current state gets first."""


class View(Protocol):
    """One upstream request polled for every subscriber of it."""

    @property
    def key(self) -> Hashable:
        """Equal keys (with equal callers) share one poller."""

    @property
    def name(self) -> str:
        """A bounded label for metrics (`sessions`, `timeline`, `spend`)."""

    async def fetch(self, loaders: Loaders) -> Any:
        """The upstream answer, fetched with one tick's loaders."""

    def tracker(self) -> Tracker:
        """A fresh memory for a new poller."""


# Coder has no end marker for a session: in-flight interceptions are not served, so a session
# simply stops growing. "Ended" is therefore what the poller observes: no change for
# `idle_after`, on the gateway's clock (the upstream's timestamps may be skewed, or synthetic).
# Only the first poll reads them: a row whose last activity is already `idle_after` old counts
# as ended from the start, and gets no ENDED event.


def _idle(last: datetime, now: datetime, idle_after: timedelta) -> bool:
    return now - last >= idle_after


def _last_activity(row: m.Session | m.SessionThreadsResponse) -> datetime:
    times = [row.started_at, row.ended_at, getattr(row, "last_active_at", None)]
    return max(t for t in times if t is not None)


# -- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionsView:
    """The first `limit` sessions of `GET /sessions` matching `search` (most recently active
    first, so any session with new activity rises into it)."""

    search: SessionFilter
    limit: int
    idle_after: timedelta
    name: str = "sessions"

    @property
    def request(self) -> UpstreamRequest:
        """The one upstream request every poll makes."""
        return sessions_request(self.search, limit=self.limit)

    @property
    def key(self) -> Hashable:
        return ("sessions", self.request, self.idle_after)

    async def fetch(self, loaders: Loaders) -> m.ListSessionsResponse:
        return await loaders.sessions_page(self.search, limit=self.limit)

    def tracker(self) -> SessionsTracker:
        return SessionsTracker(self.idle_after)


@dataclass(slots=True)
class _Seen:
    row: Any
    changed_at: datetime  # when a poll last saw it change (or first saw it)
    ended: bool


@dataclass(slots=True)
class SessionsTracker:
    """Sessions by (session id, initiator id), as last seen."""

    idle_after: timedelta
    complete: bool = False
    _seen: dict[tuple[str, str], _Seen] | None = None
    _baseline_start: datetime | None = None

    def update(self, answer: m.ListSessionsResponse, now: datetime) -> list[Change]:
        rows = {(row.id, str(row.initiator.id)): row for row in answer.sessions}
        previous = self._seen
        if previous is None:
            self._baseline_start = max((row.started_at for row in rows.values()), default=now)
            self._seen = {
                key: _Seen(row, now, _idle(_last_activity(row), now, self.idle_after))
                for key, row in rows.items()
            }
            return []
        changes: list[Change] = []
        seen: dict[tuple[str, str], _Seen] = {}
        for key, row in rows.items():
            old = previous.get(key)
            if old is None or old.row != row:
                kind = "UPDATED"
                if old is None and self._baseline_start and row.started_at > self._baseline_start:
                    kind = "ADDED"
                changes.append(Change(kind, key, row))
                seen[key] = _Seen(row, now, ended=False)
                continue
            if not old.ended and _idle(old.changed_at, now, self.idle_after):
                changes.append(Change("ENDED", key, row))
                old.ended = True
            seen[key] = old
        self._seen = seen
        return changes

    def existing(self) -> list[Change]:
        return [Change("EXISTING", key, seen.row) for key, seen in (self._seen or {}).items()]


# -- one session's timeline --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    """A session's header and all its threads (oldest first), from `GET /sessions/{id}` pages."""

    session: m.SessionThreadsResponse
    threads: Sequence[m.Thread]


@dataclass(frozen=True, slots=True)
class TimelineView:
    """One session's threads: every page of `GET /sessions/{id}` (200 threads a call)."""

    session_id: str
    idle_after: timedelta
    name: str = "timeline"

    @property
    def key(self) -> Hashable:
        return ("timeline", session_threads_request(self.session_id, limit=1), self.idle_after)

    async def fetch(self, loaders: Loaders) -> Timeline:
        threads: list[m.Thread] = []
        after = None
        while True:
            page = await loaders.threads_page(
                self.session_id, limit=THREADS_LIMIT_MAX, after_id=after
            )
            threads.extend(page.threads)
            if len(page.threads) < THREADS_LIMIT_MAX:
                return Timeline(page, threads)
            after = page.threads[-1].id

    def tracker(self) -> TimelineTracker:
        return TimelineTracker(self.idle_after)


@dataclass(slots=True)
class TimelineTracker:
    """Threads by id, as last seen; complete once nothing changed for `idle_after`."""

    idle_after: timedelta
    complete: bool = False
    _threads: dict[Any, m.Thread] | None = None
    _session: m.SessionThreadsResponse | None = None
    _changed_at: datetime | None = None

    def update(self, answer: Timeline, now: datetime) -> list[Change]:
        header = answer.session
        current = {thread.id: thread for thread in answer.threads}
        previous, changed = self._threads, header != self._session
        self._threads, self._session = current, header
        changes: list[Change] = []
        if previous is not None:
            for thread_id, thread in current.items():
                old = previous.get(thread_id)
                if old is None:
                    changes.append(Change("ADDED", thread_id, thread, session=header))
                elif old != thread:
                    changes.append(Change("UPDATED", thread_id, thread, session=header))
        if self._changed_at is None or changes or changed:
            self._changed_at = now
        elif _idle(self._changed_at, now, self.idle_after):
            self.complete = True
            changes.append(Change("ENDED", header.id, None, session=header))
        return changes

    def existing(self) -> list[Change]:
        header = self._session
        return [
            Change("EXISTING", thread_id, thread, session=header)
            for thread_id, thread in (self._threads or {}).items()
        ]


# -- spend against budget ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpendView:
    """A user's AI spend status (`GET /api/v2/users/{user}/ai/spend`, ai-gateway era)."""

    user: str
    name: str = "spend"

    @property
    def key(self) -> Hashable:
        return ("spend", user_ai_spend_request(self.user))

    async def fetch(self, loaders: Loaders) -> m.UserAISpendStatus:
        return await loaders.user_ai_spend(self.user)

    def tracker(self) -> SpendTracker:
        return SpendTracker()


def spend_percent(status: m.UserAISpendStatus) -> float | None:
    """Spend as a percentage of the effective budget (None without one, or with a zero one)."""
    budget = status.effective_budget
    if budget is None or budget.spend_limit_micros <= 0:
        return None
    return 100 * status.current_spend_micros / budget.spend_limit_micros


@dataclass(slots=True)
class SpendTracker:
    """The last status; `THRESHOLD` changes when spend crosses 85 % or 100 % upwards."""

    complete: bool = False
    _status: m.UserAISpendStatus | None = field(default=None)

    def update(self, answer: m.UserAISpendStatus, now: datetime) -> list[Change]:
        previous, self._status = self._status, answer
        if previous is None or previous == answer:
            return []
        changes = [Change("CHANGED", "spend", answer)]
        before, after = spend_percent(previous), spend_percent(answer)
        if after is not None:
            for threshold in SPEND_THRESHOLDS:
                if after >= threshold and (before is None or before < threshold):
                    changes.append(
                        Change("THRESHOLD", ("threshold", threshold), answer, threshold=threshold)
                    )
        return changes

    def existing(self) -> list[Change]:
        return [] if self._status is None else [Change("CURRENT", "spend", self._status)]
