"""The per-request upstream-call budget: a hard cap the `Loaders` consult before each call.

Not Coder's AI spend budgets (schema/spend.py), which are money. Protocol-neutral: every face
(GraphQL, gRPC, `/usage.csv`) gets one `CallBudget` per request in that request's `Loaders`
(core/loaders/request.py). What counts is a distinct upstream request the loaders send: a load
answered by the de-duplicating loaders or by a primed entity costs nothing, and the client's
retries of one request (bounded by `AIBRIDGE_RETRIES`) are that same request. The face turns
`CallBudgetExceeded` into its own error.
"""

from __future__ import annotations


class CallBudgetExceeded(Exception):
    """An upstream call was refused because the request has used its whole budget."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This request reached its budget of {limit} upstream calls; "
            "this part of the result was not fetched."
        )
        self.limit = limit


class CallBudget:
    """Counts one request's upstream calls and refuses those beyond `limit` (None: no limit)."""

    __slots__ = ("_limit", "_used")

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 0:
            raise ValueError("a call budget cannot be negative")
        self._limit = limit
        self._used = 0

    @property
    def limit(self) -> int | None:
        """The most calls this request may make; None for no limit."""
        return self._limit

    @property
    def used(self) -> int:
        """Calls spent so far (refused ones excluded)."""
        return self._used

    def spend(self) -> None:
        """Account for one upstream call about to be sent; raise when none is left."""
        if self._limit is not None and self._used >= self._limit:
            raise CallBudgetExceeded(self._limit)
        self._used += 1
