"""Automatic persisted queries: Apollo's APQ protocol over GET and POST, plus an allow-list mode.

A request's `extensions.persistedQuery` is `{"version": 1, "sha256Hash": "<hex>"}`:
- hash only, known → the stored query runs; unknown → `PersistedQueryNotFound`
  (`PERSISTED_QUERY_NOT_FOUND`), and the client sends the query with the hash again;
- query and hash → the hash must be the query's SHA-256 (`PERSISTED_QUERY_HASH_MISMATCH`), and
  the query is registered once it parsed and validated (invalid documents are never stored).
Registered queries live in a bounded in-process LRU (`AIBRIDGE_APQ_CACHE_SIZE`); a manifest file
(`AIBRIDGE_APQ_MANIFEST`) pre-registers operations, which are never evicted. With
`AIBRIDGE_APQ_STORE=redis` they are also written to the Redis at `AIBRIDGE_CACHE_URL` (for
`APQ_REDIS_TTL`), so a replica behind a load balancer runs a hash another one registered; a Redis
outage falls back to this process's LRU (the client then resends the query, as after eviction).
With `AIBRIDGE_APQ_PERSISTED_ONLY=true` only the manifest's operations run: a query without a
hash is `PERSISTED_QUERY_REQUIRED`, an unknown hash `PERSISTED_QUERY_NOT_IN_LIST`, and nothing
registers at run time (otherwise any caller could extend the allow-list).
GET requests may run queries only (Strawberry refuses other operation types over GET).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from aibridge_graphql.core.cache import ResponseCache
from aibridge_graphql.core.errors import BAD_USER_INPUT
from aibridge_graphql.core.scope import CURRENT_SCOPE

PERSISTED_QUERY_NOT_FOUND: Final = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED: Final = "PERSISTED_QUERY_NOT_SUPPORTED"
PERSISTED_QUERY_HASH_MISMATCH: Final = "PERSISTED_QUERY_HASH_MISMATCH"
PERSISTED_QUERY_REQUIRED: Final = "PERSISTED_QUERY_REQUIRED"
PERSISTED_QUERY_NOT_IN_LIST: Final = "PERSISTED_QUERY_NOT_IN_LIST"

_HASH = re.compile(r"[0-9a-f]{64}")
# A CDN must not cache a miss for a GET: the next GET after registration has to reach us.
_NO_CACHE = "private, no-cache, must-revalidate"
APOLLO_MANIFEST_FORMAT: Final = "apollo-persisted-query-manifest"
# Registered queries in Redis: refreshed by each registration, gone after a week unused.
APQ_REDIS_PREFIX: Final = "aibridge:apq:"
APQ_REDIS_TTL: Final = 7 * 24 * 3600.0


def sha256_hex(query: str) -> str:
    """The APQ id of a query: the hex SHA-256 of its UTF-8 text."""
    return hashlib.sha256(query.encode()).hexdigest()


class ManifestError(ValueError):
    """The persisted-query manifest cannot be used (unreadable, wrong shape, wrong hash)."""


def _manifest_entries(data: Any) -> list[tuple[str, str]]:
    if isinstance(data, dict) and data.get("format") == APOLLO_MANIFEST_FORMAT:
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ManifestError("an Apollo manifest needs an `operations` list")
        out = []
        for item in operations:
            if not isinstance(item, dict):
                raise ManifestError("each operation must be an object with `id` and `body`")
            out.append((item.get("id"), item.get("body")))
        return _strings(out)
    if isinstance(data, dict):
        return _strings(list(data.items()))
    raise ManifestError("expected an Apollo persisted-query manifest or a {hash: query} object")


def _strings(pairs: list[tuple[Any, Any]]) -> list[tuple[str, str]]:
    for key, body in pairs:
        if not isinstance(key, str) or not isinstance(body, str):
            raise ManifestError("operation ids and bodies must be strings")
    return pairs


def load_manifest(path: str | Path) -> dict[str, str]:
    """`{sha256: query}` from an Apollo persisted-query manifest or a plain `{hash: query}` file.

    Every id must be the SHA-256 of its body (the APQ id), so a typo fails at start, not later.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ManifestError(f"cannot read persisted-query manifest {path}: {error}") from None
    manifest: dict[str, str] = {}
    for key, body in _manifest_entries(data):
        if sha256_hex(body) != key.lower():
            raise ManifestError(f"manifest id {key!r} is not the SHA-256 of its query body")
        manifest[key.lower()] = body
    return manifest


class PersistedQueryStore:
    """Registered queries by hash: pinned manifest entries plus a bounded LRU of the rest."""

    def __init__(self, max_size: int, pinned: Mapping[str, str] | None = None) -> None:
        self._pinned = dict(pinned or {})
        self._lru: OrderedDict[str, str] = OrderedDict()
        self._max_size = max_size

    def get(self, sha256: str) -> str | None:
        """The query for a hash, marking it recently used; None when unknown or evicted."""
        if sha256 in self._pinned:
            return self._pinned[sha256]
        query = self._lru.get(sha256)
        if query is not None:
            self._lru.move_to_end(sha256)
        return query

    def put(self, sha256: str, query: str) -> None:
        """Register a query, evicting the least recently used one beyond the bound."""
        if sha256 in self._pinned:
            return
        self._lru[sha256] = query
        self._lru.move_to_end(sha256)
        while len(self._lru) > self._max_size:
            self._lru.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pinned) + len(self._lru)

    async def lookup(self, sha256: str) -> str | None:
        """`get`, as the extension asks every store."""
        return self.get(sha256)

    async def register(self, sha256: str, query: str) -> None:
        """`put`, as the extension asks every store."""
        self.put(sha256, query)


class QueryStore(Protocol):
    """Where the APQ extension finds and registers queries."""

    async def lookup(self, sha256: str) -> str | None:
        """The query for a hash, or None."""
        ...

    async def register(self, sha256: str, query: str) -> None:
        """Register a validated query under its hash."""
        ...


class SharedQueryStore:
    """The local store in front of a shared one (Redis): a hash registered by any replica runs
    on every replica; the shared store's failures are misses (it degrades, never raises)."""

    def __init__(self, local: PersistedQueryStore, shared: ResponseCache) -> None:
        self._local = local
        self._shared = shared

    async def lookup(self, sha256: str) -> str | None:
        """Local first, then the shared store (remembered locally once found)."""
        query = self._local.get(sha256)
        if query is not None:
            return query
        raw = await self._shared.get(APQ_REDIS_PREFIX + sha256)
        if raw is None:
            return None
        try:
            query = raw.decode()
        except UnicodeDecodeError:
            return None
        # Only a query whose hash matches is trusted: the shared store is not this process.
        if sha256_hex(query) != sha256:
            return None
        self._local.put(sha256, query)
        return query

    async def register(self, sha256: str, query: str) -> None:
        """Register locally and in the shared store."""
        self._local.put(sha256, query)
        await self._shared.set(APQ_REDIS_PREFIX + sha256, query.encode(), APQ_REDIS_TTL)


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _requested_hash(extension: Any) -> str:
    if not isinstance(extension, dict):
        raise _error("extensions.persistedQuery must be an object.", BAD_USER_INPUT)
    if extension.get("version") != 1:
        raise _error("Unsupported persisted query version.", BAD_USER_INPUT)
    sha = extension.get("sha256Hash")
    if not isinstance(sha, str) or not _HASH.fullmatch(sha.lower()):
        raise _error(
            "extensions.persistedQuery.sha256Hash must be 64 hexadecimal characters.",
            BAD_USER_INPUT,
        )
    return sha.lower()


class PersistedQueries(SchemaExtension):
    """The APQ protocol; must run before extensions that observe the operation (see module doc).

    Errors are raised before the operation starts, so they come back as a GraphQL error with
    HTTP 200, which is what Apollo Client's persisted-queries link expects.
    """

    def __init__(self, *, store: QueryStore, enabled: bool, persisted_only: bool) -> None:
        super().__init__()
        self._store = store
        self._enabled = enabled
        self._persisted_only = persisted_only

    def _count(self, result: str) -> None:
        scope = CURRENT_SCOPE.get()
        if scope is not None:
            scope.metrics.apq.labels(result).inc()
            scope.apq = result

    def _fail(self, message: str, code: str, result: str) -> GraphQLError:
        self._count(result)
        response = getattr(self.execution_context.context, "response", None)
        if response is not None:
            response.headers["Cache-Control"] = _NO_CACHE
        return _error(message, code)

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context
        extension = (context.operation_extensions or {}).get("persistedQuery")
        if extension is None:
            if self._persisted_only:
                raise self._fail(
                    "Only persisted operations are allowed: send extensions.persistedQuery "
                    "with the sha256Hash of a registered operation.",
                    PERSISTED_QUERY_REQUIRED,
                    "required",
                )
            yield
            return
        if not self._enabled and not self._persisted_only:
            raise self._fail(
                "PersistedQueryNotSupported", PERSISTED_QUERY_NOT_SUPPORTED, "not_supported"
            )
        try:
            sha = _requested_hash(extension)
        except GraphQLError as error:
            raise self._fail(error.message, BAD_USER_INPUT, "invalid") from None
        known = await self._store.lookup(sha)
        if not context.query:
            self._run_stored(sha, known)
            yield
            return
        if sha256_hex(context.query) != sha:
            raise self._fail(
                "provided sha does not match query", PERSISTED_QUERY_HASH_MISMATCH, "mismatch"
            )
        if known is not None:
            self._count("hit")
            yield
            return
        if self._persisted_only:
            raise self._not_in_list(sha)
        yield
        if context.graphql_document is not None and not context.pre_execution_errors:
            await self._store.register(sha, context.query)
            self._count("registered")

    def _run_stored(self, sha: str, known: str | None) -> None:
        if known is None:
            if self._persisted_only:
                raise self._not_in_list(sha)
            raise self._fail("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND, "miss")
        self._count("hit")
        self.execution_context.query = known

    def _not_in_list(self, sha: str) -> GraphQLError:
        return self._fail(
            f"Persisted query {sha} is not in the list of allowed operations.",
            PERSISTED_QUERY_NOT_IN_LIST,
            "not_in_list",
        )
