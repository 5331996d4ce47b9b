"""Live views: shared pollers turning upstream answers into change streams (docs/live.md)."""

from aibridge_graphql.core.live.hub import LiveHub, Subscription, Watch, Watching
from aibridge_graphql.core.live.views import (
    SPEND_THRESHOLDS,
    Change,
    SessionsView,
    SpendView,
    Timeline,
    TimelineView,
    View,
    spend_percent,
)

__all__ = [
    "SPEND_THRESHOLDS",
    "Change",
    "LiveHub",
    "SessionsView",
    "SpendView",
    "Subscription",
    "Timeline",
    "TimelineView",
    "View",
    "Watch",
    "Watching",
    "spend_percent",
]
