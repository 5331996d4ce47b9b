"""CORS for browser pages on other origins (`AIBRIDGE_CORS_ORIGINS`, docs/cors.md).

Off unless origins are configured. Then, on the browser routes only (`/graphql` and the exports,
never `/metrics` or the probes):

- a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed origin
  is answered 204 here with the methods, headers and `Access-Control-Max-Age`; any other
  `OPTIONS` goes on to the router, which answers 405 as it always did;
- every response, streamed ones included, gets its CORS headers when it is prepared (aiohttp's
  `on_response_prepare`, before the first byte): `Access-Control-Allow-Origin` and
  `Access-Control-Expose-Headers` for an allowed origin, nothing for another one, and
  `Vary: Origin` either way, since the answer depends on `Origin`.

With `*` every origin gets `Access-Control-Allow-Origin: *` (the same answer for all, so no
`Vary`). `Access-Control-Allow-Credentials` is never sent: the caller's token travels in a header
its page sets, never in a cookie, so no origin can make the browser send ambient credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

from aibridge_graphql.core.scope import REQUEST_ID_HEADER
from aibridge_graphql.server.observability import TRACE_HEADERS
from aibridge_graphql.server.usage_csv import USAGE_HEADERS
from aibridge_graphql.settings import ANY_ORIGIN, Settings
from aibridge_graphql.upstream.client import TOKEN_HEADER

# Every request header the gateway reads: the credentials, the body's type, content negotiation,
# the response cache's opt-out, the request id and the trace context. APQ needs none (its hash
# rides in the body or the query string). A page sending any other header is refused by its
# browser, which is the point: the list says what a frontend may send.
ALLOWED_HEADERS: Final = (
    hdrs.ACCEPT.lower(),
    hdrs.AUTHORIZATION.lower(),
    hdrs.CACHE_CONTROL.lower(),
    TOKEN_HEADER.lower(),
    hdrs.CONTENT_TYPE.lower(),
    *TRACE_HEADERS,
    REQUEST_ID_HEADER.lower(),
)
# Response headers a page may read besides the CORS-safelisted ones (Content-Type, ...).
EXPOSED_HEADERS: Final = (REQUEST_ID_HEADER, *USAGE_HEADERS)
PREFLIGHT_STATUS: Final = 204
_PREFLIGHT_KEY = web.RequestKey("aibridge_cors_preflight", bool)


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Who may call which route from a browser on another origin, and for how long a preflight
    holds. `routes` maps each browser route's path to the methods it serves."""

    origins: frozenset[str]
    any_origin: bool
    max_age: int
    routes: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_settings(
        cls, settings: Settings, routes: Mapping[str, tuple[str, ...]]
    ) -> CorsPolicy | None:
        """The policy of `AIBRIDGE_CORS_ORIGINS` (already normalized), or None when it is off."""
        if not settings.cors_origins:
            return None
        any_origin = settings.cors_origins == (ANY_ORIGIN,)
        origins = frozenset() if any_origin else frozenset(settings.cors_origins)
        return cls(origins, any_origin, settings.cors_max_age, dict(routes))

    def allow_origin(self, origin: str | None) -> str | None:
        """The `Access-Control-Allow-Origin` value for a request from `origin`, or None.

        An exact, case-sensitive match: browsers send the origin serialized (lowercase, no
        default port), and the settings normalized the list the same way. `null` never matches.
        """
        if self.any_origin:
            return ANY_ORIGIN
        return origin if origin is not None and origin in self.origins else None


class Cors:
    """The preflight middleware and the response hook of one app (see the module docstring)."""

    def __init__(self, policy: CorsPolicy) -> None:
        self.policy = policy
        self._allowed_headers = ", ".join(ALLOWED_HEADERS)
        self._exposed_headers = ", ".join(EXPOSED_HEADERS)
        self._methods = {path: ", ".join(methods) for path, methods in policy.routes.items()}

    def install(self, app: web.Application) -> None:
        """Add the response hook (the middleware goes in the app's middleware list)."""
        app.on_response_prepare.append(self.on_response_prepare)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer an allowed origin's preflight; everything else goes on unchanged."""
        methods = self._methods.get(request.path)
        if (
            methods is not None
            and request.method == hdrs.METH_OPTIONS
            and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
            and hdrs.ORIGIN in request.headers
            and self.policy.allow_origin(request.headers[hdrs.ORIGIN]) is not None
        ):
            request[_PREFLIGHT_KEY] = True
            # The same answer whatever method and headers were asked for: the browser compares
            # them with the lists, and one answer per origin is what it caches for Max-Age.
            return web.Response(
                status=PREFLIGHT_STATUS,
                headers={
                    hdrs.ACCESS_CONTROL_ALLOW_METHODS: methods,
                    hdrs.ACCESS_CONTROL_ALLOW_HEADERS: self._allowed_headers,
                    hdrs.ACCESS_CONTROL_MAX_AGE: str(self.policy.max_age),
                },
            )
        return await handler(request)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Set the CORS headers of a browser route's response, before its headers are sent."""
        if request.path not in self._methods:
            return
        if not self.policy.any_origin:
            add_vary(response.headers, hdrs.ORIGIN)
        allowed = self.policy.allow_origin(request.headers.get(hdrs.ORIGIN))
        if allowed is None:
            return
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed
        if not request.get(_PREFLIGHT_KEY, False):
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = self._exposed_headers


def add_vary(headers: CIMultiDict[str], name: str) -> None:
    """Add `name` to the response's `Vary` (one header), unless it is there or `Vary` is `*`."""
    current = headers.get(hdrs.VARY)
    if current is None:
        headers[hdrs.VARY] = name
        return
    listed = {part.strip().lower() for part in current.split(",")}
    if name.lower() not in listed and "*" not in listed:
        headers[hdrs.VARY] = f"{current}, {name}"
