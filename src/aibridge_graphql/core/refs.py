"""Typed references to upstream entities: the keys of the by-id loaders and of global IDs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class InterceptionRef:
    """What identifies an interception for a lookup: its id, initiator and exact start time."""

    id: UUID
    initiator_id: UUID
    started_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRef:
    """A session is one (session id, initiator) pair, as the upstream groups them."""

    session_id: str
    initiator_id: UUID


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """A thread lives in one session; the initiator lets its session resolve in one call."""

    session: SessionRef
    thread_id: UUID


@dataclass(frozen=True, slots=True)
class UserRef:
    """A user: the global ID is the raw Coder UUID."""

    id: UUID
