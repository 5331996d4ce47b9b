"""Agent-firewall network calls of a session (AI Gateway era) and the `providers` list."""

from __future__ import annotations

from datetime import datetime

import strawberry

from aibridge_graphql.core.errors import BadUserInput
from aibridge_graphql.schema.ids import encode_cursor
from aibridge_graphql.schema.node import computed, resolver
from aibridge_graphql.schema.pagination import Forward, Page, PageInfo, forward_page, page_info
from aibridge_graphql.upstream import models as m

# Coder returns at most this many network call logs per session detail (docs/upstream.md).
NETWORK_CALL_LOGS_CAP = 1000
NETWORK_CURSOR = "NetworkCall"
ERA_NOTE = (
    "Null when the upstream does not report it: Coder releases before the AI Gateway API "
    "(mid-2026) never do, and newer ones omit it when the agent firewall is not in use."
)


@strawberry.type(description="A session's agent-firewall network calls, counted.")
class NetworkCallCounts:
    total: int = strawberry.field(description="Network calls the agent firewall saw.")
    blocked: int = strawberry.field(description="Of those, how many it blocked.")

    @classmethod
    def from_model(cls, raw: m.NetworkCalls | None) -> NetworkCallCounts | None:
        """None stays None: the era or the session has no firewall data."""
        return None if raw is None else cls(total=raw.total, blocked=raw.blocked)


@strawberry.type(description="One network call the agent firewall captured in a session.")
class NetworkCall:
    network_call_id: strawberry.ID = strawberry.field(description="The upstream log id.")
    firewall_session_id: str = strawberry.field(
        description="The agent-firewall session it belongs to (`Thread.agentFirewallSessionId`)."
    )
    sequence_number: int = strawberry.field(
        description="Its order in the firewall session (`Thread.agentFirewallSequenceNumber`)."
    )
    captured_at: datetime | None = strawberry.field(description="When the firewall saw it.")
    created_at: datetime | None = strawberry.field(description="When it was recorded.")
    proto: str = strawberry.field(description="The protocol, e.g. `https`.")
    method: str = strawberry.field(description="The request method, e.g. `GET`.")
    detail: str = strawberry.field(description="What was called, e.g. the URL or host.")
    allowed: bool = strawberry.field(description="False when the firewall blocked it.")
    matched_rule: str | None = strawberry.field(
        description="The firewall rule that decided it, if any."
    )

    @classmethod
    def from_model(cls, raw: m.NetworkCallLog) -> NetworkCall:
        return cls(
            network_call_id=strawberry.ID(raw.id),
            firewall_session_id=raw.session_id,
            sequence_number=raw.sequence_number,
            captured_at=raw.captured_at,
            created_at=raw.created_at,
            proto=raw.proto,
            method=raw.method,
            detail=raw.detail,
            allowed=raw.allowed,
            matched_rule=raw.matched_rule,
        )


def _edge_cursor(edge: NetworkCallEdge) -> str:
    return encode_cursor(NETWORK_CURSOR, str(edge.node.network_call_id))


@strawberry.type(description="An edge of a network call connection.")
class NetworkCallEdge:
    # Made when selected (or for `pageInfo`'s first and last).
    cursor: str = computed(_edge_cursor, "Opaque cursor of this edge.")
    node: NetworkCall = strawberry.field(description="The network call.")


@strawberry.type(
    description=(
        "A page of a session's network calls in the upstream's order. Every page comes from "
        "the one session-detail call (`GET /sessions/{id}`), which holds at most "
        f"{NETWORK_CALL_LOGS_CAP} calls per session, as Coder caps them."
    )
)
class NetworkCallConnection:
    edges: list[NetworkCallEdge] = strawberry.field(description="The edges of this page.")
    page_info: PageInfo = strawberry.field(description="Exact page information.")
    total_count: int = strawberry.field(
        description=f"How many calls the upstream returned (at most {NETWORK_CALL_LOGS_CAP})."
    )

    @resolver("The network calls of this page (the edges' nodes).")
    def nodes(self) -> list[NetworkCall]:
        return [edge.node for edge in self.edges]


def network_call_connection(logs: list[m.NetworkCallLog], args: Forward) -> NetworkCallConnection:
    """Page the session detail's logs locally: the upstream sends them all at once."""
    start = 0
    if args.after is not None:
        ids = [log.id for log in logs]
        if args.after not in ids:
            raise BadUserInput("The `after` cursor names no network call of this session.")
        start = ids.index(args.after) + 1
    page: Page[m.NetworkCallLog] = forward_page(logs[start : start + args.limit], args)
    edges = [NetworkCallEdge(node=NetworkCall.from_model(log)) for log in page.items]
    return NetworkCallConnection(
        edges=edges, page_info=page_info(edges, page), total_count=len(logs)
    )


@strawberry.type(description="A domain the session's agents called, and how often.")
class NetworkDomain:
    domain: str = strawberry.field(description="The domain.")
    count: int = strawberry.field(description="How many network calls went to it.")


@strawberry.type(
    description=(
        "An LLM provider configured in the AI Gateway (`GET /providers`). Older releases answer "
        "bare names: then only `name` is set."
    )
)
class Provider:
    name: str = strawberry.field(description="The provider's name (the `provider_name` filter).")
    type: str | None = strawberry.field(
        description="Its provider type, e.g. `openai`; null when the upstream sends names only."
    )
    display_name: str | None = strawberry.field(
        description="Its display name; null when the upstream sends names only."
    )
    icon: str | None = strawberry.field(
        description="Its icon URL or path; null when the upstream sends names only."
    )

    @classmethod
    def from_model(cls, raw: m.Provider) -> Provider:
        return cls(name=raw.name, type=raw.type, display_name=raw.display_name, icon=raw.icon)
