"""Helpers of the gRPC watches' tests: a small stand-in database that records are appended to as
Coder's data plane would (sessions, new threads, agentic actions), and server streams read on a
thread so that every wait for an event has a deadline.

The records go straight into the stand-in's SQLite file (`standin/records.py`), committed, so the
stand-in's next read (the gateway's next poll) sees them: a stopgap written before the stand-in's
own traffic API (standin/traffic.py) was on this branch.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

from aibridge_graphql.standin.records import (
    InterceptionRecord,
    TokenUsageRecord,
    UserPromptRecord,
    UserRecord,
    insert_interceptions,
)
from tests.support.standin_api import build_database

SECOND: Final = 1_000_000  # stand-in times are microseconds
WAIT_S: Final = 20.0
# The face's live settings in these tests: a poll a second (the minimum), a session ended after
# 3 s without activity (well after the poll that sees it added), backoff capped at 2 s.
POLL_S: Final = 1.0
IDLE_S: Final = 3.0
LIVE_SETTINGS: Final = {
    "live_poll_interval": POLL_S,
    "live_session_idle": IDLE_S,
    "live_max_backoff": 2.0,
}

ALICE = UserRecord("00000000-0000-4000-8000-00000000a11c", "alice", "a@x.invalid", "A", "", "owner")
BOB = UserRecord("00000000-0000-4000-8000-000000000b0b", "bob", "b@x.invalid", "B", "", "auditor")
MEMBER = UserRecord("00000000-0000-4000-8000-0000000000ee", "mem", "m@x.invalid", "M", "", "member")
TOKENS: Final = {
    ALICE.username: "AliceToken-abcdefghijklmnopqrstuv",
    BOB.username: "BobsTokens-abcdefghijklmnopqrstuv",
    MEMBER.username: "MemberTokn-abcdefghijklmnopqrstuv",
}


def now_us() -> int:
    """The wall clock in the stand-in's unit (live views compare it with `datetime.now`)."""
    return int(time.time() * SECOND)


@dataclass
class Appender:
    """Appends interceptions to a stand-in database, each ending now (ids from a counter)."""

    path: Path
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _id(self) -> str:
        return f"00000000-0000-4000-9000-{next(self._ids):012d}"

    def _record(
        self, user: UserRecord, session_id: str, root: str | None, parent: str | None, at: int
    ) -> InterceptionRecord:
        ident = self._id()
        n = int(ident[-6:])
        return InterceptionRecord(
            id=ident,
            api_key_id=None,
            initiator_id=user.id,
            provider="anthropic",
            provider_name="anthropic",
            model="claude-sonnet-4",
            client="claude-code",
            metadata={},
            started_at=at - SECOND // 5,
            ended_at=at,
            client_session_id=session_id,
            thread_parent_id=parent,
            thread_root_id=root,
            credential_kind="centralized",
            credential_hint="",
            token_usages=(TokenUsageRecord(self._id(), f"r{n}", 10 * n, n, 0, 0, None, at),),
            user_prompts=(UserPromptRecord(self._id(), f"r{n}", f"prompt {n}", None, at),),
        )

    def append(self, records: Iterable[InterceptionRecord]) -> None:
        """Insert and commit: visible to the stand-in's next read."""
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            insert_interceptions(conn, records)
            conn.commit()

    def thread(self, user: UserRecord, session_id: str) -> str:
        """A new thread (a root interception) in `session_id`, a new session if there is none;
        the thread's id."""
        record = self._record(user, session_id, None, None, now_us())
        self.append([record])
        return record.id

    def action(self, user: UserRecord, session_id: str, thread_id: str) -> str:
        """An agentic action (a child interception) of `thread_id`; its interception id."""
        record = self._record(user, session_id, thread_id, thread_id, now_us())
        self.append([record])
        return record.id


def live_database(path: Path) -> Appender:
    """Alice (owner), Bob (auditor) and a member, each with a session ended an hour ago."""
    appender = Appender(path)
    hour_ago = now_us() - 3600 * SECOND
    old = [
        appender._record(user, f"old-{user.username}", None, None, hour_ago + i * SECOND)
        for i, user in enumerate((ALICE, BOB, MEMBER))
    ]
    build_database(path, [(user, TOKENS[user.username]) for user in (ALICE, BOB, MEMBER)], old)
    return appender


_END: Final = object()


class StreamReader:
    """A server-streaming call read on a thread: events, then its end (OK or an RpcError)."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.events: list[Any] = []
        self.error: grpc.RpcError | None = None
        self.ended = False
        self._queue: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for event in self.call:
                self._queue.put(event)
        except grpc.RpcError as error:
            self._queue.put(error)
        else:
            self._queue.put(_END)

    def _take(self, deadline: float, what: str) -> Any:
        remaining = deadline - time.monotonic()
        try:
            item = self._queue.get(timeout=max(remaining, 0))
        except queue.Empty:
            raise AssertionError(f"no {what} within the wait; events: {self.events}") from None
        if item is _END or isinstance(item, grpc.RpcError):
            self.ended = True
            self.error = item if isinstance(item, grpc.RpcError) else None
        else:
            self.events.append(item)
        return item

    def until(self, check: Callable[[Any], bool], what: str, within: float = WAIT_S) -> Any:
        """Read events until one passes `check` (returned); fail on the end or the deadline."""
        deadline = time.monotonic() + within
        while True:
            item = self._take(deadline, what)
            if self.ended:
                raise AssertionError(f"the stream ended ({self.error!r}) before {what}")
            if check(item):
                return item

    def until_each(
        self, checks: Iterable[Callable[[Any], bool]], what: str, within: float = WAIT_S
    ) -> None:
        """Read events until each check has passed one (in any order: one poll's changes come
        in no order); fail on the end or the deadline."""
        deadline = time.monotonic() + within
        waiting = list(checks)
        while waiting:
            item = self._take(deadline, what)
            if self.ended:
                raise AssertionError(f"the stream ended ({self.error!r}) before {what}")
            waiting = [check for check in waiting if not check(item)]

    def end(self, within: float = WAIT_S) -> grpc.RpcError | None:
        """Read to the end of the stream; its error (None: completed OK)."""
        deadline = time.monotonic() + within
        while not self.ended:
            self._take(deadline, "end of the stream")
        return self.error

    def cancel(self) -> None:
        """Hang up (the client cancels the call)."""
        self.call.cancel()
