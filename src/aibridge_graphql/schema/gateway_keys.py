"""Coder's AI Gateway keys (enterprise, AI Gateway era): the secrets standalone AI Gateway
replicas authenticate into coderd with. A key's secret exists in one answer only, the
`createAIGatewayKey` payload; no other type has a field for it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from aibridge_graphql.upstream import models as m

KEYS_RULES = (
    " Coder lets only owners manage keys: anyone else is FORBIDDEN, as from Coder."
    " Coder's enterprise AI Gateway API only: on a Coder without it (the sessions era) it is "
    "null with UPSTREAM_UNSUPPORTED (`extensions.missing` names the route), with no upstream call."
)


@strawberry.type(description="An AI Gateway key as Coder lists it (never its secret).")
class AIGatewayKey:
    id: strawberry.ID = strawberry.field(description="The key's Coder UUID.")
    name: str = strawberry.field(description="Its unique name (lowercase, digits, hyphens).")
    key_prefix: str = strawberry.field(
        description="The secret's first 11 characters, to tell keys apart (not a credential)."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    last_used_at: datetime | None = strawberry.field(
        description="When a replica last authenticated with it; null while never used."
    )

    @classmethod
    def from_model(cls, raw: m.AIGatewayKey | m.CreatedAIGatewayKey) -> AIGatewayKey:
        last_used = raw.last_used_at if isinstance(raw, m.AIGatewayKey) else None
        return cls(
            id=strawberry.ID(str(raw.id)),
            name=raw.name,
            key_prefix=raw.key_prefix,
            created_at=raw.created_at,
            last_used_at=last_used,
        )
