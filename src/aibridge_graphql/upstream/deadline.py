"""One deadline per request, shared by every upstream call, retry and backoff sleep of it.

Protocol-neutral: the GraphQL context builds one per HTTP request and hands it to the request's
`Loaders`; a gRPC face would build one from its own call deadline the same way. Times are on the
event loop's clock (what `asyncio.timeout_at` takes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aibridge_graphql.upstream.errors import DeadlineExceeded


class Deadline:
    """The loop time by which a request's upstream work must be done, and its budget in seconds."""

    __slots__ = ("_reported", "seconds", "when")

    def __init__(self, when: float, seconds: float) -> None:
        self.when = when
        self.seconds = seconds
        self._reported = False

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline `seconds` from now (needs a running loop)."""
        return cls(asyncio.get_running_loop().time() + seconds, seconds)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.when - asyncio.get_running_loop().time()

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.remaining() <= 0

    def first_report(self) -> bool:
        """True the first time it is asked: a request counts as over its deadline once."""
        first = not self._reported
        self._reported = True
        return first

    def exceeded(self) -> DeadlineExceeded:
        """The error for work this deadline cut short."""
        return DeadlineExceeded(self.seconds)

    def __repr__(self) -> str:
        return f"Deadline(seconds={self.seconds!r})"


@asynccontextmanager
async def within(deadline: Deadline | None) -> AsyncIterator[None]:
    """Run the block under `deadline` (no bound when None); its expiry is `DeadlineExceeded`.

    Refuses to start once the deadline has passed; a `TimeoutError` the block raises by itself
    (not this deadline's) propagates unchanged.
    """
    if deadline is None:
        yield
        return
    if deadline.expired:
        raise deadline.exceeded()
    scope = asyncio.timeout_at(deadline.when)
    try:
        async with scope:
            yield
    except TimeoutError:
        if scope.expired():
            raise deadline.exceeded() from None
        raise
