"""Normalized upstream requests: the path and the sorted params, hashable (the loader key)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode
from uuid import UUID

from aibridge_graphql.upstream.search_query import (
    InterceptionFilter,
    SessionFilter,
    build_q,
    prefix_q,
)


@dataclass(frozen=True)
class UpstreamRequest:
    """A GET relative to the API base: `path` (already percent-encoded) and sorted string params.

    `root` requests (Coder's spend routes, which live outside the AI Gateway prefix) are relative
    to the configured deployment URL instead; their path always starts with `/api/v2/`.
    """

    path: str
    params: tuple[tuple[str, str], ...] = ()
    root: bool = False

    def __post_init__(self) -> None:
        # Root paths are joined to the deployment URL by string: only our own `/api/v2/...`
        # paths may be, so that no value can make one name another host or leave the API.
        if self.root and not self.path.startswith("/api/v2/"):
            raise ValueError("a root request's path must start with /api/v2/")

    @classmethod
    def make(
        cls, path: str, params: Mapping[str, str | int | None] | None = None, *, root: bool = False
    ) -> UpstreamRequest:
        """Normalize: drop `None` values, stringify, sort by key."""
        items = ((k, str(v)) for k, v in (params or {}).items() if v is not None)
        return cls(path=path, params=tuple(sorted(items)), root=root)

    @property
    def url_path(self) -> str:
        """The path plus the encoded query string, relative to the API base."""
        if not self.params:
            return self.path
        return f"{self.path}?{urlencode(self.params)}"


def _q(text: str) -> str | None:
    return text or None


def _offset(offset: int | None) -> int | None:
    return offset or None


def _text(value: UUID | str | None) -> str | None:
    return None if value is None else str(value)


def interceptions_request(
    search: InterceptionFilter | None,
    *,
    limit: int,
    after_id: UUID | str | None = None,
    offset: int | None = None,
) -> UpstreamRequest:
    """`GET /interceptions`."""
    return UpstreamRequest.make(
        "/interceptions",
        {
            "q": _q(build_q(search)),
            "limit": limit,
            "after_id": _text(after_id),
            "offset": _offset(offset),
        },
    )


def sessions_request(
    search: SessionFilter | None,
    *,
    limit: int,
    after_session_id: str | None = None,
    offset: int | None = None,
) -> UpstreamRequest:
    """`GET /sessions`."""
    return UpstreamRequest.make(
        "/sessions",
        {
            "q": _q(build_q(search)),
            "limit": limit,
            "after_session_id": after_session_id,
            "offset": _offset(offset),
        },
    )


# RFC 3986 pchar minus unreserved (which `quote` always keeps): sub-delims, ":" and "@". Coder's
# router (chi) routes on the raw path whenever it differs from Go's default encoding, and the
# handler never decodes the id, so an encoded ":" ("%3A") is "Session not found." upstream.
# These stay raw also because the production transport (aiohttp's yarl) would un-encode them
# anyway: this way the request key, the metrics and the wire agree. Residual edge: an id that
# mixes `!'()*` (Go escapes those) with characters that need encoding (a space) makes chi route
# on the raw path and reach the handler still encoded; no client encoding avoids that.
_PCHAR_SAFE = "!$&'()*+,;=:@"


def session_path(session_id: str) -> str:
    """`/sessions/<id>`, encoding only what a path segment needs (`/?#%`, spaces, non-ASCII)."""
    if not session_id:
        raise ValueError("session id must not be empty")
    if session_id in (".", ".."):
        # A dot segment would be resolved away by URL normalization and reach another route.
        return "/sessions/" + session_id.replace(".", "%2E")
    return "/sessions/" + quote(session_id, safe=_PCHAR_SAFE)


# What Go's net/url leaves unencoded in a path (`shouldEscape(c, encodePath)`): the unreserved
# characters and "$&+,/:;=@". Its default encoding of the id is the one chi decodes before routing.
_GO_PATH_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~$&+,/:;=@"
)


def session_path_exact(session_id: str) -> bool:
    """Whether Coder's handler receives exactly `session_id` from `session_path(session_id)`.

    chi routes on the decoded path when ours is Go's default encoding of it, else on the raw path,
    which the handler does not decode: then only an id sent unencoded arrives unchanged. A `/`, a
    dot segment, or `!'()*` next to a character that needs encoding reach no session by path.
    """
    try:
        segment = session_path(session_id).removeprefix("/sessions/")
        go_default = "".join(
            char if char in _GO_PATH_SAFE else "".join(f"%{b:02X}" for b in char.encode())
            for char in session_id
        )
    except (ValueError, UnicodeError):
        return False
    return segment in (go_default, session_id)


def session_threads_request(
    session_id: str,
    *,
    limit: int,
    after_id: UUID | str | None = None,
    before_id: UUID | str | None = None,
) -> UpstreamRequest:
    """`GET /sessions/{session_id}`: the session header and one page of its threads."""
    return UpstreamRequest.make(
        session_path(session_id),
        {"limit": limit, "after_id": _text(after_id), "before_id": _text(before_id)},
    )


def providers_request() -> UpstreamRequest:
    """`GET /providers` (AI Gateway era; not paginated)."""
    return UpstreamRequest.make("/providers")


def models_request(prefix: str | None, *, limit: int, offset: int | None = None) -> UpstreamRequest:
    """`GET /models` (prefix match on the model name)."""
    return UpstreamRequest.make(
        "/models", {"q": _q(prefix_q("model", prefix)), "limit": limit, "offset": _offset(offset)}
    )


def clients_request(
    prefix: str | None, *, limit: int, offset: int | None = None
) -> UpstreamRequest:
    """`GET /clients` (prefix match on the client name)."""
    return UpstreamRequest.make(
        "/clients", {"q": _q(prefix_q("client", prefix)), "limit": limit, "offset": _offset(offset)}
    )


def _segment(value: str) -> str:
    """One path segment of a spend route: everything but unreserved characters encoded."""
    if not value or value in (".", ".."):
        raise ValueError("a path segment must not be empty or a dot segment")
    return quote(value, safe="")


def user_ai_spend_request(user: str) -> UpstreamRequest:
    """`GET /api/v2/users/{user}/ai/spend` (`user`: id, username or `me`; outside the prefix)."""
    return UpstreamRequest.make(f"/api/v2/users/{_segment(user)}/ai/spend", root=True)


def groups_ai_spend_request(organization: str, group_ids: list[str]) -> UpstreamRequest:
    """`GET /api/v2/organizations/{org}/groups/ai/spend?group_ids=a,b` (outside the prefix)."""
    return UpstreamRequest.make(
        f"/api/v2/organizations/{_segment(organization)}/groups/ai/spend",
        {"group_ids": ",".join(group_ids)},
        root=True,
    )


def group_ai_budget_request(group_id: str) -> UpstreamRequest:
    """`/api/v2/groups/{group}/ai/budget` (PUT sets, DELETE clears; outside the prefix)."""
    return UpstreamRequest.make(f"/api/v2/groups/{_segment(group_id)}/ai/budget", root=True)


def user_ai_budget_override_request(user: str) -> UpstreamRequest:
    """`/api/v2/users/{user}/ai/budget/override` (PUT sets, DELETE clears; outside the prefix)."""
    return UpstreamRequest.make(f"/api/v2/users/{_segment(user)}/ai/budget/override", root=True)


AI_GATEWAY_KEYS_PATH = "/api/v2/ai-gateway/keys"


def ai_gateway_keys_request() -> UpstreamRequest:
    """`/api/v2/ai-gateway/keys` (GET lists, POST creates; AI Gateway era)."""
    return UpstreamRequest.make(AI_GATEWAY_KEYS_PATH, root=True)


def ai_gateway_key_request(key_id: str) -> UpstreamRequest:
    """`/api/v2/ai-gateway/keys/{key}` (DELETE removes one)."""
    return UpstreamRequest.make(f"{AI_GATEWAY_KEYS_PATH}/{_segment(key_id)}", root=True)
