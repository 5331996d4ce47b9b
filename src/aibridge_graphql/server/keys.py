"""The keys under which the app holds what every request shares: the pooled upstream client, the
settings, the pricer, the live views' hub and the shutdown state (set by server/app.py, read by
its handlers); and the mark of a request answered with a stream."""

from __future__ import annotations

from aiohttp import web

from aibridge_graphql.core.live import LiveHub
from aibridge_graphql.core.pricing import Pricer
from aibridge_graphql.server.shutdown import Draining
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient

CLIENT_KEY = web.AppKey("aibridge_upstream_client", UpstreamClient)
SETTINGS_KEY = web.AppKey("aibridge_settings", Settings)
PRICER_KEY = web.AppKey("aibridge_pricer", Pricer)
DRAINING_KEY = web.AppKey("aibridge_draining", Draining)
LIVE_KEY = web.AppKey("aibridge_live_hub", LiveHub)
# Set on a request answered with a stream (a subscription): its client ending it is normal.
STREAMING_KEY = web.RequestKey("aibridge_streaming", bool)
