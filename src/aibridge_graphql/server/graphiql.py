"""GraphiQL offline: serve the 8 files of the GraphiQL page from `web/node_modules`.

Strawberry's page loads react, react-dom, js-cookie, graphiql and the explorer plugin from a CDN
with SRI hashes. `npm ci --prefix web` installs byte-identical copies (the hashes match), so the
page keeps its `integrity` attributes and only the URLs change. Without the files, the CDN is used.
The page opens on the README's dashboard query, with the token header in its Headers pane (the
demo's admin token, or a placeholder to replace), instead of Strawberry's welcome text. It runs
subscriptions over SSE with graphql-sse's client (the 8th file): GraphiQL's own fetcher knows
only WebSocket for them, which the gateway refuses (docs/live.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web
from strawberry.http.ides import get_graphql_ide_html

from aibridge_graphql.settings import Settings

logger = logging.getLogger("aibridge_graphql.server.graphiql")

CDN_PREFIX: Final = "https://unpkg.com/"
ASSETS_PREFIX: Final = "/graphiql-assets"
# Versioned URLs never change content, so browsers may keep them for a year.
CACHE_CONTROL: Final = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """One file of the GraphiQL page: its npm package, version and path inside the package."""

    package: str
    version: str
    path: str
    content_type: str

    @property
    def name(self) -> str:
        """The URL path after the CDN host (and the local prefix), e.g. `react@18.2.0/umd/…`."""
        return f"{self.package}@{self.version}/{self.path}"

    def file(self, node_modules: Path) -> Path:
        """Where `npm ci` puts the file."""
        return node_modules / self.package / self.path


_JS: Final = "application/javascript; charset=utf-8"
_CSS: Final = "text/css; charset=utf-8"

# graphql-sse's browser build (its UMD global is `graphqlSse`), added to the page for
# subscriptions. Strawberry's page does not pin it, so its SRI hash is pinned here (a test
# checks it against `web/node_modules`).
SSE_CLIENT: Final = Asset("graphql-sse", "2.6.1", "umd/graphql-sse.min.js", _JS)
SSE_CLIENT_INTEGRITY: Final = (
    "sha384-UsvndtFvDnjGmKs11OV8EvlC6rGNPfLJL0VuJCUUWVglJHD4sFt9jcb48vhqaMtj"
)

# Exactly the files Strawberry's graphiql.html references (checked against its SRI hashes), and
# the SSE client.
ASSETS: Final[tuple[Asset, ...]] = (
    Asset("react", "18.2.0", "umd/react.production.min.js", _JS),
    Asset("react-dom", "18.2.0", "umd/react-dom.production.min.js", _JS),
    Asset("js-cookie", "3.0.5", "dist/js.cookie.min.js", _JS),
    Asset("graphiql", "3.8.3", "graphiql.min.css", _CSS),
    Asset("@graphiql/plugin-explorer", "1.0.2", "dist/style.css", _CSS),
    Asset("graphiql", "3.8.3", "graphiql.min.js", _JS),
    Asset("@graphiql/plugin-explorer", "1.0.2", "dist/index.umd.js", _JS),
    SSE_CLIENT,
)
_BY_NAME: Final = {asset.name: asset for asset in ASSETS}

# The README's dashboard query ("Example queries"); the demo prints it too.
EXAMPLE_QUERY: Final = """\
query Dashboard {
  sessions(first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      sessionId client models lastActiveAt lastPrompt threadCount
      initiator { username }
      tokenUsage { inputTokens outputTokens }
      threads(first: 3) { nodes { threadId model prompt } }
    }
  }
}
"""
# What `serve` shows in the Headers pane: where the caller's token goes.
PLACEHOLDER_HEADERS: Final = json.dumps({"Coder-Session-Token": "<your Coder session token>"})

_EXAMPLE_QUERY_JS: Final = re.compile(r"const EXAMPLE_QUERY = `[^`]*`;")
_HEADERS_STATE_JS: Final = "React.useState(parameters.headers)"

# Strawberry's fetcher: queries over HTTP, subscriptions over WebSocket (`subscriptionUrl`).
_FETCHER_JS: Final = re.compile(r"const fetcher = GraphiQL\.createFetcher\(\{[^}]*\}\);")
_HEAD_END: Final = "</head>"
_SSE_CLIENT_TAG: Final = (
    f'  <script crossorigin src="{CDN_PREFIX}{SSE_CLIENT.name}"\n'
    f'      integrity="{SSE_CLIENT_INTEGRITY}"></script>\n  '
)
# Queries and mutations as before; a subscription over SSE (graphql-sse, distinct connections),
# with the same headers: Strawberry's (a CSRF token) and the Headers pane's (the Coder token).
# No retries: a dropped stream shows its error, and running again starts afresh.
_SSE_FETCHER_JS: Final = """\
const httpFetcher = GraphiQL.createFetcher({ url: fetchURL, headers: defaultHeaders });

      // The operation the server will run (named, or the only one) is a subscription.
      function isSubscription(params, options) {
        const document = options && options.documentAST;
        const operations = document
          ? document.definitions.filter((node) => node.kind === "OperationDefinition")
          : [];
        const operation = params.operationName
          ? operations.find((node) => node.name && node.name.value === params.operationName)
          : operations.length === 1 ? operations[0] : undefined;
        return Boolean(operation) && operation.operation === "subscription";
      }

      function fetcher(params, options) {
        if (!isSubscription(params, options)) return httpFetcher(params, options);
        const client = graphqlSse.createClient({
          url: fetchURL,
          headers: { ...defaultHeaders, ...(options && options.headers) },
          retryAttempts: 0,
        });
        return client.iterate(params);
      }"""

_TAG: Final = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
_URL: Final = re.compile(r'(?:src|href)="' + re.escape(CDN_PREFIX) + r'([^"]+)"')
_INTEGRITY: Final = re.compile(r'integrity="([^"]+)"')


def sri_hash(path: Path) -> str:
    """The Subresource Integrity value (`sha384-…`) of a file."""
    digest = hashlib.sha384(path.read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


def page_integrity(html: str | None = None) -> dict[str, str]:
    """Each CDN asset of the GraphiQL page (name after the CDN host) → its `integrity` value."""
    html = html if html is not None else with_sse_subscriptions(get_graphql_ide_html("graphiql"))
    found: dict[str, str] = {}
    for tag in _TAG.findall(html):
        url, integrity = _URL.search(tag), _INTEGRITY.search(tag)
        if url and integrity:
            found[url.group(1)] = integrity.group(1)
    return found


def assets_complete(node_modules: Path, expected: Mapping[str, str] | None = None) -> bool:
    """Whether every asset is installed, byte-identical to what the page's SRI hashes pin.

    Only the 8 files are needed (a container image may copy nothing else); a file the page does
    not pin, or one that differs (another version), means the CDN is used instead.
    """
    expected = page_integrity() if expected is None else expected
    for asset in ASSETS:
        path = asset.file(node_modules)
        if asset.name not in expected or not path.is_file():
            return False
        if sri_hash(path) != expected[asset.name]:
            logger.warning("GraphiQL asset %s differs from the page's SRI hash", asset.name)
            return False
    return True


def _candidates(settings: Settings) -> Iterable[Path]:
    if settings.graphiql_assets_dir:
        configured = Path(settings.graphiql_assets_dir)
        # Accept the node_modules folder itself or the folder holding it (e.g. `web`).
        yield configured
        yield configured / "node_modules"
        return
    # src/aibridge_graphql/server/graphiql.py: the repository root is parents[3].
    yield Path(__file__).resolve().parents[3] / "web" / "node_modules"
    yield Path.cwd() / "web" / "node_modules"


def find_assets_dir(settings: Settings, expected: Mapping[str, str] | None = None) -> Path | None:
    """The `node_modules` folder holding all GraphiQL assets, or None (then the CDN is used)."""
    expected = page_integrity() if expected is None else expected
    for candidate in _candidates(settings):
        if assets_complete(candidate, expected):
            return candidate.resolve()
    if settings.graphiql_assets_dir:
        logger.warning(
            "AIBRIDGE_GRAPHIQL_ASSETS_DIR holds no complete GraphiQL assets; using the CDN"
        )
    return None


def rewrite_graphiql_html(html: str, assets_prefix: str = ASSETS_PREFIX) -> str:
    """Point the page's CDN URLs of the known assets at `assets_prefix`; SRI attributes stay."""
    prefix = assets_prefix.rstrip("/")
    for asset in ASSETS:
        html = html.replace(f"{CDN_PREFIX}{asset.name}", f"{prefix}/{asset.name}")
    return html


def _js_string(text: str) -> str:
    # A JSON string is a JS string literal; `</` would end the inline <script> early.
    return json.dumps(text).replace("</", "<\\/")


def with_defaults(html: str, query: str, headers: str) -> str:
    """Open Strawberry's GraphiQL page on `query`, with `headers` (JSON text) in its Headers pane.

    A `?query=`-style shared URL (`q`, `headers` parameters) still wins. When the page's script no
    longer has the expected shape (another Strawberry), the page is left as it is, and logged.
    """
    if not _EXAMPLE_QUERY_JS.search(html) or _HEADERS_STATE_JS not in html:
        logger.warning("Strawberry's GraphiQL page changed shape; it opens on its own defaults")
        return html
    defaults = (
        f"const EXAMPLE_QUERY = {_js_string(query)};\n"
        f"      const DEFAULT_HEADERS = {_js_string(headers)};"
    )
    html = _EXAMPLE_QUERY_JS.sub(lambda _: defaults, html, count=1)
    return html.replace(
        _HEADERS_STATE_JS, "React.useState(parameters.headers || DEFAULT_HEADERS)", 1
    )


def with_sse_subscriptions(html: str) -> str:
    """Make Strawberry's GraphiQL page run subscriptions over SSE with graphql-sse's client.

    When the page's script no longer has the expected shape, it is left as it is, and logged.
    """
    if not _FETCHER_JS.search(html) or _HEAD_END not in html:
        logger.warning("Strawberry's GraphiQL page changed shape; it runs no subscription")
        return html
    html = _FETCHER_JS.sub(lambda _: _SSE_FETCHER_JS, html, count=1)
    return html.replace(_HEAD_END, _SSE_CLIENT_TAG + _HEAD_END, 1)


def _asset_handler(node_modules: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve_asset(request: web.Request) -> web.StreamResponse:
        # An allow-list lookup: anything else, `..` included, is simply not found.
        asset = _BY_NAME.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        return web.FileResponse(
            asset.file(node_modules),
            headers={"Content-Type": asset.content_type, "Cache-Control": CACHE_CONTROL},
        )

    return serve_asset


def add_graphiql_asset_routes(
    app: web.Application,
    assets_dir: Path | None,
    assets_prefix: str = ASSETS_PREFIX,
    *,
    expected: Mapping[str, str] | None = None,
) -> bool:
    """Serve the allow-listed assets under `assets_prefix`; False (no route) when absent."""
    if assets_dir is None or not assets_complete(assets_dir, expected):
        return False
    _add_route(app, assets_dir, assets_prefix)
    return True


def _add_route(app: web.Application, assets_dir: Path, assets_prefix: str) -> None:
    app.router.add_get(assets_prefix.rstrip("/") + "/{name:.+}", _asset_handler(assets_dir))


@dataclass(frozen=True)
class OfflineGraphiQL:
    """The two hooks `create_app` takes (`ide_html=`, `setup=`) to serve GraphiQL offline."""

    assets_dir: Path | None
    assets_prefix: str = ASSETS_PREFIX
    default_query: str = EXAMPLE_QUERY
    default_headers: str = PLACEHOLDER_HEADERS

    @property
    def enabled(self) -> bool:
        """Whether the local assets are used (else the page keeps its CDN URLs)."""
        return self.assets_dir is not None

    def ide_html(self, html: str) -> str:
        """The GraphiQL page on the example query, running subscriptions over SSE, at the local
        assets when they are installed."""
        html = with_sse_subscriptions(with_defaults(html, self.default_query, self.default_headers))
        return rewrite_graphiql_html(html, self.assets_prefix) if self.enabled else html

    def setup(self, app: web.Application) -> None:
        """Add the asset route to `app` when the assets are installed (checked once, before)."""
        if self.assets_dir is not None:
            _add_route(app, self.assets_dir, self.assets_prefix)


def offline_graphiql(
    settings: Settings, *, default_headers: str = PLACEHOLDER_HEADERS
) -> OfflineGraphiQL:
    """Find the installed assets (or not) once, for `create_app(ide_html=…, setup=[…])`.

    `default_headers` (JSON text) fills the Headers pane: the demo passes its admin token.
    """
    assets_dir = find_assets_dir(settings) if settings.graphiql else None
    if settings.graphiql and assets_dir is None:
        logger.info("GraphiQL assets not installed (make install with npm); loading from the CDN")
    return OfflineGraphiQL(assets_dir, default_headers=default_headers)
