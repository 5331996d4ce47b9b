"""GraphQL filter inputs, mapped to the upstream's typed `q` filters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import strawberry

from aibridge_graphql.core import pagination
from aibridge_graphql.core.inputs import checked_text
from aibridge_graphql.schema.engine.needs import FieldEstimate, connection, needs
from aibridge_graphql.upstream import search_query as q

_INITIATOR = "A user: Coder user UUID, username, or `me` for the caller."
_DATES = (
    "Dates are inclusive bounds on each interception's start time (RFC 3339; a time without an "
    "offset is taken as UTC)."
)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@strawberry.input(
    description=f"Filters of `interceptions` (the upstream `q` keys). {_DATES}",
)
class InterceptionFilter:
    initiator: str | None = strawberry.field(default=None, description=_INITIATOR)
    provider: str | None = strawberry.field(
        default=None, description="Runtime provider type, e.g. `openai`, `anthropic`."
    )
    provider_name: str | None = strawberry.field(
        default=None, description="A configured provider's name; unknown names are an error."
    )
    model: str | None = strawberry.field(default=None, description="Exact model name.")
    client: str | None = strawberry.field(
        default=None, description="Exact client name; `Unknown` matches interceptions without one."
    )
    started_after: datetime | None = strawberry.field(
        default=None, description="Only interceptions started at or after this time."
    )
    started_before: datetime | None = strawberry.field(
        default=None, description="Only interceptions started at or before this time."
    )

    def to_upstream(self) -> q.InterceptionFilter:
        return q.InterceptionFilter(
            initiator=checked_text("filter.initiator", self.initiator),
            provider=checked_text("filter.provider", self.provider),
            provider_name=checked_text("filter.providerName", self.provider_name),
            model=checked_text("filter.model", self.model),
            client=checked_text("filter.client", self.client),
            started_after=_utc(self.started_after),
            started_before=_utc(self.started_before),
        )


@strawberry.input(
    description=(
        f"Filters of `sessions` (the upstream `q` keys). {_DATES} Filters other than `initiator` "
        "and `sessionId` select interceptions, so a session's `threadCount`, `startedAt` and "
        "`endedAt` then cover only its matching interceptions, as in the REST API."
    ),
)
class SessionFilter:
    initiator: str | None = strawberry.field(default=None, description=_INITIATOR)
    provider: str | None = strawberry.field(
        default=None, description="Runtime provider type, e.g. `openai`, `anthropic`."
    )
    provider_name: str | None = strawberry.field(
        default=None, description="A configured provider's name; unknown names are an error."
    )
    model: str | None = strawberry.field(default=None, description="Exact model name.")
    client: str | None = strawberry.field(
        default=None, description="Exact client name; `Unknown` matches sessions without one."
    )
    session_id: str | None = strawberry.field(default=None, description="Exact session id.")
    started_after: datetime | None = strawberry.field(
        default=None, description="Only interceptions started at or after this time."
    )
    started_before: datetime | None = strawberry.field(
        default=None, description="Only interceptions started at or before this time."
    )

    def to_upstream(self) -> q.SessionFilter:
        return q.SessionFilter(
            initiator=checked_text("filter.initiator", self.initiator),
            provider=checked_text("filter.provider", self.provider),
            provider_name=checked_text("filter.providerName", self.provider_name),
            model=checked_text("filter.model", self.model),
            client=checked_text("filter.client", self.client),
            session_id=checked_text("filter.sessionId", self.session_id),
            started_after=_utc(self.started_after),
            started_before=_utc(self.started_before),
        )

    @property
    def selects_whole_sessions(self) -> bool:
        """True when only whole-session keys are set, so aggregates are unfiltered."""
        return pagination.selects_whole_sessions(self)


# The `SessionFilter` keys that select whole sessions (`selects_whole_sessions`), by their names
# in a document: what the call estimate reads of a `filter` argument before it is coerced.
_WHOLE_SESSION_KEYS = frozenset({"initiator", "sessionId"})


def _whole_sessions(estimate: FieldEstimate) -> bool:
    value = estimate.arg("filter")
    if not isinstance(value, Mapping):
        return True
    return all(v is None for k, v in value.items() if k not in _WHOLE_SESSION_KEYS)


# The lists these filter (`sessions` and `interceptions`, on Query and User): one call per page,
# what is selected of its items once per item; a session's aggregates are the whole session's
# unless the filter narrows them to some of its interceptions.
SESSIONS_CALLS = needs(connection("first", whole=_whole_sessions))
INTERCEPTIONS_CALLS = needs(connection("first"))
