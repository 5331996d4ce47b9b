"""What the upstream offers: which API prefix answers and which management routes exist.

Coder serves AI Bridge under `/api/v2/ai-gateway` (today) or `/api/v2/aibridge` (the legacy
prefix, still an alias), and removed `GET /interceptions` in mid-2026 while adding
`GET /providers`. The gateway learns which at start, on every readiness probe and when its last
answer has grown stale, by asking the upstream **without credentials** (it holds none):

- `GET <prefix>/sessions`: a JSON 401 (`{"message": ...}`, Coder's API-key middleware) means the
  prefix serves the management API; a 404 means it does not (Coder's `Route not found.`); a 403
  is the licence check, which Coder runs before authentication on every route of the prefix.
- `GET <prefix>/interceptions` and `<prefix>/providers`: a management route answers exactly as
  `/sessions` did (the JSON 401); a route that does not exist falls through to the LLM proxy
  data plane under `<prefix>/*`, which answers otherwise (a plain-text 400 "no authentication
  key provided", or a JSON 404 when no proxy is mounted).

Unauthenticated probes see what every caller sees, whatever their role (members get 404 on
`/providers` after authentication, which says nothing about the server), and send nobody's
token to a route that may be the data plane. A user's own request status never decides
"unsupported": it is this comparison, made on routes whose answer precedes authorization.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import aiohttp
import httpx
from pydantic import ValidationError as PydanticValidationError

from aibridge_graphql.settings import LEGACY_API_BASE_PATH, PREFERRED_API_BASE_PATH, Settings
from aibridge_graphql.upstream.models import ErrorResponse

logger = logging.getLogger(__name__)

# Sent on probes only, so operators (and test doubles) can tell them from callers' requests.
PROBE_USER_AGENT = "aibridge-graphql capability probe"
# How long an answer holds before a request re-asks (readiness probes re-ask every time):
# a settled answer rarely changes (a Coder upgrade), an unsettled one may any moment.
_FRESH_FOR = {"ok": 300.0, "unlicensed": 5.0, "no-api": 5.0, "unreachable": 1.0}

Status = Literal["ok", "unlicensed", "no-api", "unreachable"]
Era = Literal["sessions", "ai-gateway"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """One detection's result; `None` for a route means "not known" (requests go through)."""

    status: Status
    base_path: str
    interceptions: bool | None = None
    providers: bool | None = None
    reason: str | None = None
    forced: bool = False

    @property
    def era(self) -> Era | None:
        """`sessions` while `GET /interceptions` exists, `ai-gateway` once it is gone."""
        if self.interceptions is None:
            return None
        return "sessions" if self.interceptions else "ai-gateway"

    def as_json(self) -> dict[str, Any]:
        """The readiness report's `api` object."""
        return {
            "basePath": self.base_path,
            "basePathForced": self.forced,
            "era": self.era,
            "interceptions": self.interceptions,
            "providers": self.providers,
        }


@dataclass(frozen=True, slots=True)
class _Answer:
    """A probe's answer: the status and Coder's error message when the body is Coder's JSON."""

    status: int
    message: str | None

    @property
    def management_401(self) -> bool:
        return self.status == 401 and self.message is not None


def _coder_message(response: httpx.Response) -> str | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return ErrorResponse.model_validate_json(response.content).message
    except PydanticValidationError:
        return None


class CapabilityDetector:
    """Detects and remembers the upstream's capabilities; points `http` at the prefix found."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self._root = str(settings.upstream_url).rstrip("/")
        self._forced = settings.api_base_path
        self._lock = asyncio.Lock()
        self._checked_at: float | None = None
        self._current = Capabilities(
            status="unreachable",
            base_path=self._forced or PREFERRED_API_BASE_PATH,
            forced=self._forced is not None,
        )

    @property
    def current(self) -> Capabilities:
        """The last detection's result (before any: unreachable, nothing known)."""
        return self._current

    def _fresh(self) -> bool:
        if self._checked_at is None:
            return False
        return time.monotonic() - self._checked_at < _FRESH_FOR[self._current.status]

    async def ensure(self) -> Capabilities:
        """The current capabilities, detecting first when none are known or they are stale."""
        if self._fresh():
            return self._current
        checked = self._checked_at
        async with self._lock:
            if self._checked_at != checked and self._fresh():
                return self._current  # another caller detected while we waited
            return await self._detect_locked()

    async def detect(self) -> Capabilities:
        """Ask the upstream now (readiness probes, start-up); never raises for its answers."""
        async with self._lock:
            return await self._detect_locked()

    async def _detect_locked(self) -> Capabilities:
        try:
            found = await self._probe_all()
        finally:
            self._checked_at = time.monotonic()
        if found != self._current:
            logger.info(
                "upstream API: %s at %s (interceptions=%s, providers=%s)",
                found.status,
                found.base_path,
                found.interceptions,
                found.providers,
            )
        self._current = found
        self._http.base_url = httpx.URL(self._root + found.base_path)
        return found

    async def _probe(self, path: str) -> _Answer | None:
        """One unauthenticated GET; None when there is no usable answer (down, 5xx)."""
        try:
            response = await self._http.get(
                self._root + path,
                headers={"Accept": "application/json", "User-Agent": PROBE_USER_AGENT},
            )
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            # aiohttp's own errors: the pooled transport passes some through untranslated.
            logger.debug("capability probe %s failed: %s", path, type(exc).__name__)
            return None
        if response.status_code >= 500:
            return None
        return _Answer(response.status_code, _coder_message(response))

    async def _probe_all(self) -> Capabilities:
        prefixes = (
            [self._forced] if self._forced else [PREFERRED_API_BASE_PATH, LEGACY_API_BASE_PATH]
        )
        forced = self._forced is not None
        for prefix in prefixes:
            baseline = await self._probe(prefix + "/sessions")
            if baseline is None:
                return replace(self._current, status="unreachable", reason=None)
            if baseline.status == 404:
                if forced:
                    # The operator named this prefix: trust it, knowing nothing of its routes.
                    return Capabilities(status="ok", base_path=prefix, forced=True)
                continue
            found = Capabilities(status="ok", base_path=prefix, forced=forced)
            if baseline.status == 403:
                # The licence check answers every route alike: nothing more can be learnt.
                return replace(found, status="unlicensed", reason=baseline.message or "Forbidden.")
            if not baseline.management_401:
                return found  # e.g. an authenticating proxy in front: routes stay unknown
            interceptions, providers = await asyncio.gather(
                self._probe(prefix + "/interceptions"), self._probe(prefix + "/providers")
            )
            return replace(
                found,
                interceptions=None if interceptions is None else interceptions.management_401,
                providers=None if providers is None else providers.management_401,
            )
        return Capabilities(
            status="no-api",
            base_path=prefixes[0],
            forced=forced,
            reason=f"No AI Bridge API answers at {' or '.join(prefixes)}.",
        )
