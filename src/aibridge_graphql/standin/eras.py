"""The two API eras the stand-in serves: Coder's sessions era and today's AI Gateway era.

What differs between them (docs/upstream.md): the prefixes, whether
`/interceptions` or `/providers` exist, the new fields, a few messages, the licence message and
how the `provider_name` filter is resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ApiEra = Literal["sessions", "ai-gateway"]
API_ERAS: tuple[ApiEra, ...] = ("sessions", "ai-gateway")
DEFAULT_API_ERA: ApiEra = "ai-gateway"
LEGACY_PREFIX = "/api/v2/aibridge"
AI_GATEWAY_PREFIX = "/api/v2/ai-gateway"


@dataclass(frozen=True)
class Era:
    """Everything era-specific the application needs."""

    name: ApiEra
    # The canonical prefix first; later ones are aliases serving the same routes.
    prefixes: tuple[str, ...]
    feature: str  # the humanized feature name in Coder's messages

    @property
    def ai_gateway(self) -> bool:
        """Whether this is the AI Gateway era (new fields and endpoints, no interceptions)."""
        return self.name == "ai-gateway"

    @property
    def premium_message(self) -> str:
        """RequireFeatureMW's 403 message, sent before authentication when unlicensed."""
        return f"{self.feature} is a Premium feature. Contact sales!"

    def internal_message(self, route: str) -> str:
        """The 500 message of a route (Coder's per-handler messages)."""
        what = {
            "interceptions": "interceptions",
            "sessions": "sessions",
            "models": "models",
            "clients": "clients",
            "providers": "providers",
        }.get(route)
        if route == "session":
            return "Internal error fetching session threads."
        if what is None:
            return "An internal server error occurred."
        return f"Internal error getting {self.feature} {what}."

    def search_message(self, what: str) -> str:
        """The 400 message of an invalid models/clients `q`."""
        return f"Invalid {self.feature} {what} search query."


def era(name: ApiEra) -> Era:
    """The era called `name`."""
    if name == "sessions":
        return Era("sessions", (LEGACY_PREFIX,), "AI Bridge")
    return Era("ai-gateway", (AI_GATEWAY_PREFIX, LEGACY_PREFIX), "AI Gateway")
