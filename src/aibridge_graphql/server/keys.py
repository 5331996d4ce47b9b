"""The keys under which the app holds what every request shares: the pooled upstream client, the
settings, the pricer and the shutdown state (set by server/app.py, read by its handlers)."""

from __future__ import annotations

from aiohttp import web

from aibridge_graphql.core.pricing import Pricer
from aibridge_graphql.server.shutdown import Draining
from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream.client import UpstreamClient

CLIENT_KEY = web.AppKey("aibridge_upstream_client", UpstreamClient)
SETTINGS_KEY = web.AppKey("aibridge_settings", Settings)
PRICER_KEY = web.AppKey("aibridge_pricer", Pricer)
DRAINING_KEY = web.AppKey("aibridge_draining", Draining)
