"""The pooled AI Bridge REST client: one `httpx.AsyncClient` per process, retries, typed errors.

Credentials go only to the configured upstream: redirects are not followed (a 3xx is an error, so a
redirect to another host never receives the token) and `trust_env=False` keeps proxy variables from
routing the token through a host nobody configured.

Retries (idempotent methods only: GET, and the PUT/DELETE writes): connection failures (connect
errors and connect timeouts, a dropped connection or a truncated body, read/write errors) and
502/503/504, with exponential backoff and jitter, up to `settings.retries` extra attempts; an
answer aiohttp cannot parse at all fails at once. A read timeout is not retried: the upstream is
slow, not gone, and retrying would multiply the wait; it maps to `UpstreamUnavailable` at once.

Writes (`send_json`): PUT and DELETE are idempotent (setting or clearing the same value twice
ends in the same state), so they retry like reads. A POST never retries, and once it may have
left (anything after the connection was made: a dropped connection, a read timeout, the deadline,
a gateway's 502/504) it is `UpstreamOutcomeUnknown`, not `UpstreamUnavailable`: the upstream may
have done it. Only a failure to connect at all is "not done". (aiohttp itself resends an
idempotent request once when a reused pooled connection turns out closed; never a POST.)

The hot path (`_attempt`) bypasses `httpx.AsyncClient.send`, which would run its auth and redirect
machinery and feed every response to the cookie jar (which accepts nothing, but parsing for it cost
~9% of a `{ models }` request). With the default pool it sends straight through the aiohttp session
(`_exchange_aiohttp`): even the leanest httpx transport over aiohttp we could write cost 1.7-2x the
CPU of a plain `ClientSession.get` per call, this path ~1.2x (`python -m bench.upstream_call`; the
rest is the slots, observation and retry loop). A transport passed in (tests, instrumentation) gets
an `httpx.Request` built as `build_request` would (`_exchange_httpx`). Either way the request
carries exactly the httpx client's default headers merged with ours, to the same URL, under the
client's timeouts, and aiohttp's errors are translated to httpx's, so both paths retry and fail
alike.

Concurrency: besides each GraphQL request's own cap (the loaders'), one process-wide semaphore
(`settings.upstream_global_concurrency`) bounds the attempts in flight to the upstream at once.

Bounds: bodies are streamed and read up to `settings.max_upstream_body_bytes` (the connection is
dropped as soon as a body passes it, or at once when its Content-Length does), and a call given a
`Deadline` runs every attempt and backoff sleep under it, never starting a retry that cannot finish.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport
from multidict import CIMultiDict
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from aibridge_graphql.settings import Settings
from aibridge_graphql.upstream import projection
from aibridge_graphql.upstream.capabilities import CapabilityDetector
from aibridge_graphql.upstream.deadline import Deadline, within
from aibridge_graphql.upstream.errors import (
    DeadlineExceeded,
    UpstreamHTTPError,
    UpstreamOutcomeUnknown,
    UpstreamProtocolError,
    UpstreamResponseTooLarge,
    UpstreamUnavailable,
    error_for_status,
)
from aibridge_graphql.upstream.observe import (
    Attempt,
    observed_attempt,
    report_deadline,
    report_failure,
)
from aibridge_graphql.upstream.requests import UpstreamRequest

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
V = TypeVar("V")

TOKEN_HEADER = "Coder-Session-Token"  # noqa: S105 - a header name
RETRY_STATUSES = frozenset({502, 503, 504})
_RETRY_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)
# Every failure of a request that is not an HTTP status: httpx's, and the aiohttp errors the
# transport does not translate (e.g. a malformed response).
_TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError)
_STRINGS = TypeAdapter(list[str])
_JSON = TypeAdapter(Any)
# Idle pooled connections are dropped after this long (httpx's default), before a typical
# server-side idle timeout closes them under a request.
_KEEPALIVE_EXPIRY = 5.0
# The least time worth starting a retry with (a loopback answer takes ~1 ms, a WAN one ~100).
_MIN_ATTEMPT_SECONDS = 0.1

OnResponse = Callable[[UpstreamRequest, "int | None", float], None]
# Failures before any byte could reach the upstream: a write that failed so was not done.
_NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Statuses a proxy answers when it lost (or never had) the upstream's answer to a forwarded call.
_LOST_ANSWER_STATUSES = frozenset({502, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE"})
_WRITE_METHODS = frozenset({"PUT", "DELETE", "POST"})


@dataclass(frozen=True, slots=True)
class _Call:
    """The method and JSON body of one upstream call (a read: GET with no body)."""

    method: str = "GET"
    body: bytes | None = None

    @property
    def idempotent(self) -> bool:
        return self.method in IDEMPOTENT_METHODS


_GET = _Call()


@dataclass(slots=True)
class _Progress:
    """Whether an attempt reached the exchange (a write may then have reached the upstream)."""

    exchanging: bool = False


@dataclass(frozen=True)
class Credentials:
    """The caller's Coder session token; its repr/str never show it."""

    token: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(token=***)"

    __str__ = __repr__

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Credentials | None:
        """From `Coder-Session-Token` or `Authorization: Bearer <t>` (names case-insensitive)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        token = lowered.get(TOKEN_HEADER.lower(), "").strip()
        if token:
            return cls(token)
        scheme, _, value = lowered.get("authorization", "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value and " " not in value:
            return cls(value)
        return None


def _parsed(request: UpstreamRequest, content: bytes, parse: Callable[[bytes], V], what: str) -> V:
    """`parse(content)`, a failure being `UpstreamProtocolError` (which never quotes the body)."""
    try:
        return parse(content)
    except PydanticValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            what = "JSON"
        raise UpstreamProtocolError(f"upstream {request.path}: body is not {what}") from None


class AiohttpPool:
    """One aiohttp session (its connection pool) with the settings' limits, made on first use.

    httpcore's pool re-scans every connection on each request: with a fan-out of 20 upstream
    calls it cost twice the CPU of aiohttp's pool (make bench), on the gateway's hot path.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The session, created in the running loop on the first call (aiohttp needs a loop)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._settings.max_connections,
                limit_per_host=0,
                keepalive_timeout=_KEEPALIVE_EXPIRY,
                ssl=httpx.create_ssl_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # A cookie the upstream sets for one caller must never ride on another's request.
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session and its connections (idempotent)."""
        if self._session is not None:
            await self._session.close()


def pooled_transport(
    settings: Settings, pool: AiohttpPool | None = None
) -> httpx.AsyncBaseTransport:
    """httpx's client over aiohttp's connection pool (`pool`'s, or a new one's)."""
    return AiohttpTransport(client=(pool or AiohttpPool(settings)).session)


@functools.lru_cache(maxsize=4096)
def _parsed_url(url: str) -> httpx.URL:
    """`httpx.URL(url)`, parsed once per distinct URL: parsing (and validating the host) cost
    ~4% of a dashboard's CPU, and views repeat their URLs. `httpx.URL` is immutable."""
    return httpx.URL(url)


def _joined(base: str, request: UpstreamRequest) -> str:
    # `base`: the deployment URL (no trailing slash) for root requests, else the API base URL.
    return base + (request.url_path if request.root else request.url_path.lstrip("/"))


@functools.lru_cache(maxsize=4096)
def _wire_url(base: str, request: UpstreamRequest) -> yarl.URL:
    """The URL httpx would send for `request`, as aiohttp sends it (`encoded=False`, as
    httpx_aiohttp passes it: the wire is the same on both paths). Keyed by the request, so
    its query string is not even encoded again; `yarl.URL` is immutable."""
    return yarl.URL(str(httpx.URL(_joined(base, request))))


def _httpx_error(exc: aiohttp.ClientError) -> Exception:
    """The httpx error an aiohttp failure amounts to (what `_send` retries and maps)."""
    if isinstance(exc, aiohttp.SocketTimeoutError):  # no data within the read timeout
        return httpx.ReadTimeout(str(exc))
    if isinstance(exc, aiohttp.ServerTimeoutError):  # connecting, or waiting for a pooled one
        return httpx.ConnectTimeout(str(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc))
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return httpx.ReadError(str(exc))
    if isinstance(exc, aiohttp.InvalidUrlClientError | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(str(exc))
    return exc  # e.g. a malformed response: a failure, not retried


@dataclass(frozen=True, slots=True)
class _Answer:
    """An attempt's status and body (None: not read, a retried status or an oversized error)."""

    status: int
    content: bytes | None


def _time_for_another(deadline: Deadline | None, delay: float) -> bool:
    # A retry that cannot even start before the deadline would only turn a real failure into
    # DEADLINE_EXCEEDED; leave it some time to answer too.
    return deadline is None or deadline.remaining() > delay + _MIN_ATTEMPT_SECONDS


def _backoff(base: float, attempt: int) -> float:
    # Exponential with +-50% jitter so concurrent retries do not synchronize.
    jitter: float = 0.5 + random.random()
    return base * (2.0**attempt) * jitter


class UpstreamClient:
    """Calls to the AI Bridge API (and Coder's routes beside it) with one pooled connection set."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        on_response: OnResponse | None = None,
    ) -> None:
        self._settings = settings
        self._on_response = on_response
        # The deployment URL as configured (no prefix): root requests are relative to it.
        self._root = str(settings.upstream_url).rstrip("/")
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.pool_timeout,
        )
        # The default pool is used directly on the hot path (module doc); probes go through httpx.
        self._pool = None if transport is not None else AiohttpPool(settings)
        self._transport = transport or pooled_transport(settings, self._pool)
        self._http = httpx.AsyncClient(
            base_url=settings.api_base_url,
            timeout=timeout,
            # A cookie the upstream sets for one caller must never ride on another's request.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            follow_redirects=False,
            trust_env=False,
            transport=self._transport,
        )
        # Built once: what `build_request` would merge into every request (timeouts, defaults).
        self._extensions = {"timeout": self._http.timeout.as_dict()}
        self._default_headers = httpx.Headers(self._http.headers)
        # The same defaults for aiohttp, in their own spelling (`Accept`, `User-Agent`, ...).
        self._wire_headers = CIMultiDict(
            (name.decode("ascii"), value.decode("latin-1"))
            for name, value in self._default_headers.raw
        )
        # aiohttp's equivalent of httpx's timeouts (as httpx_aiohttp maps them).
        self._aiohttp_timeout = aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        )
        self._api_base = self._http.base_url
        self._api_base_text = str(self._api_base)
        # Every attempt of the process holds one of these while it is in flight.
        self._global_slots = asyncio.Semaphore(settings.upstream_global_concurrency)
        # Which prefix and routes the upstream serves; it re-points `_http` at the prefix found.
        self.capabilities = CapabilityDetector(settings, self._http)

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying pooled client (for its timeout/limits; never send credentials with it)."""
        return self._http

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
        if self._pool is not None:
            # Its session may exist without httpx's transport having used (and so closed) it.
            await self._pool.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @staticmethod
    def _headers(credentials: Credentials | None) -> dict[str, str]:
        # Only the caller's token goes upstream; an observer may add correlation headers.
        headers = {"Accept": "application/json"}
        if credentials is not None:
            headers[TOKEN_HEADER] = credentials.token
        return headers

    def _observe(self, request: UpstreamRequest, status: int | None, started: float) -> None:
        if self._on_response is not None:
            self._on_response(request, status, time.perf_counter() - started)

    async def _read_capped(self, declared: str | None, chunks: AsyncIterator[bytes]) -> bytes:
        """The (decoded) body, read chunk by chunk; past the cap it stops reading at once.

        The caller closes the response: aiohttp then drops the connection, since the body was
        not read to its end, so the rest is never received.
        """
        cap = self._settings.max_upstream_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise UpstreamResponseTooLarge(cap)
        # Chunks, joined once at the end: a growing buffer would be reallocated (copied) as it
        # grows, and its freed large blocks stay in the process's heap (RSS) afterwards.
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > cap:
                # Free them now: the error's traceback keeps this frame (and would keep the
                # chunks) alive for as long as the error lives, until a GC pass at the earliest.
                parts.clear()
                raise UpstreamResponseTooLarge(cap)
            parts.append(chunk)
        return b"".join(parts)

    async def _answer(
        self, status: int, declared: str | None, chunks: AsyncIterator[bytes]
    ) -> _Answer:
        """The status and body under the cap (not read at all for a status that is retried)."""
        if status in RETRY_STATUSES:
            return _Answer(status, None)
        try:
            return _Answer(status, await self._read_capped(declared, chunks))
        except UpstreamResponseTooLarge:
            if 200 <= status < 300:
                raise
            return _Answer(status, None)  # an error body: its status says enough

    def _base(self, request: UpstreamRequest) -> str:
        """What `request` is relative to; the API base is read each time (the capability
        detector re-points it), its text kept until it does."""
        if request.root:  # a fixed `/api/v2/...` of ours, under the configured deployment URL
            return self._root
        base = self._http.base_url
        if base is not self._api_base:
            self._api_base, self._api_base_text = base, str(base)
        return self._api_base_text

    def _request(
        self, request: UpstreamRequest, headers: Mapping[str, str], call: _Call = _GET
    ) -> httpx.Request:
        """The request `build_request` would build (same URL, headers, timeouts), parsed once."""
        merged = self._default_headers.copy()
        merged.update(headers)
        url = _parsed_url(_joined(self._base(request), request))
        return httpx.Request(
            call.method, url, headers=merged, content=call.body, extensions=self._extensions
        )

    async def _attempt(
        self,
        request: UpstreamRequest,
        headers: dict[str, str],
        call: _Call = _GET,
        progress: _Progress | None = None,
    ) -> _Answer:
        """One call, its body read under the cap (not at all for a status that is retried)."""
        async with self._global_slots:
            if progress is not None:
                progress.exchanging = True
            return await self._attempt_in_slot(request, headers, call)

    async def _attempt_in_slot(
        self, request: UpstreamRequest, headers: dict[str, str], call: _Call
    ) -> _Answer:
        started = time.perf_counter()
        sent: Attempt | None = None
        try:
            # The current observer (metrics, tracing) may add headers per attempt.
            with observed_attempt(request, headers, call.method) as sent:
                if self._pool is None:
                    return await self._exchange_httpx(request, sent, call)
                return await self._exchange_aiohttp(self._pool, request, sent, call)
        finally:
            self._observe(request, None if sent is None else sent.status, started)

    async def _exchange_httpx(
        self, request: UpstreamRequest, sent: Attempt, call: _Call
    ) -> _Answer:
        # Straight to the transport: no cookie jar ever sees the response (module doc).
        response = await self._transport.handle_async_request(
            self._request(request, sent.headers, call)
        )
        try:
            sent.status = response.status_code
            declared = response.headers.get("content-length")
            return await self._answer(sent.status, declared, response.aiter_bytes())
        finally:
            await response.aclose()

    async def _exchange_aiohttp(
        self, pool: AiohttpPool, request: UpstreamRequest, sent: Attempt, call: _Call
    ) -> _Answer:
        # httpx's defaults under ours, case-insensitively, as `httpx.Headers.update` merges them.
        headers = self._wire_headers.copy()
        headers.update(sent.headers)
        try:
            async with pool.session().request(
                call.method,
                _wire_url(self._base(request), request),
                data=call.body,
                headers=headers,
                allow_redirects=False,  # a redirect elsewhere must not receive the token
                timeout=self._aiohttp_timeout,
            ) as response:
                sent.status = response.status
                declared = response.headers.get("Content-Length")
                # Leaving the block releases the connection, or drops it if the body is unread.
                return await self._answer(sent.status, declared, response.content.iter_any())
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc) from exc

    async def _send(
        self,
        request: UpstreamRequest,
        headers: dict[str, str],
        *,
        retries: int,
        deadline: Deadline | None,
        call: _Call = _GET,
    ) -> _Answer:
        if not call.idempotent:
            return await self._send_once(request, headers, call, deadline)
        attempt = 0
        while True:
            try:
                async with within(deadline):
                    answer = await self._attempt(request, headers, call)
            except _RETRY_EXCEPTIONS as exc:
                failure = UpstreamUnavailable(
                    f"upstream unreachable ({type(exc).__name__})", kind="unreachable"
                )
            except httpx.TimeoutException as exc:
                # Slow, not gone: retrying would multiply the wait.
                raise UpstreamUnavailable(
                    f"upstream timed out ({type(exc).__name__})", kind="timeout"
                ) from None
            except _TRANSPORT_ERRORS as exc:
                raise UpstreamUnavailable(
                    f"upstream request failed ({type(exc).__name__})"
                ) from None
            else:
                if answer.status not in RETRY_STATUSES:
                    return answer
                failure = UpstreamUnavailable(
                    f"upstream answered HTTP {answer.status}", status=answer.status, kind="http_5xx"
                )
            delay = _backoff(self._settings.retry_backoff, attempt)
            if attempt >= retries or not _time_for_another(deadline, delay):
                raise failure
            logger.debug("retrying upstream %s after %s", request.path, failure.reason)
            async with within(deadline):
                await asyncio.sleep(delay)
            attempt += 1

    async def _send_once(
        self,
        request: UpstreamRequest,
        headers: dict[str, str],
        call: _Call,
        deadline: Deadline | None,
    ) -> _Answer:
        """A non-idempotent call: one attempt; a failure once it may have left is "unknown"."""
        progress = _Progress()
        unknown = f"upstream {call.method} outcome unknown"
        try:
            async with within(deadline):
                answer = await self._attempt(request, headers, call, progress)
        except DeadlineExceeded:
            if progress.exchanging:
                raise UpstreamOutcomeUnknown(f"{unknown} (deadline)") from None
            raise
        except _NOT_SENT as exc:
            raise UpstreamUnavailable(
                f"upstream unreachable ({type(exc).__name__})", kind="unreachable"
            ) from None
        except _TRANSPORT_ERRORS as exc:
            raise UpstreamOutcomeUnknown(f"{unknown} ({type(exc).__name__})") from None
        if answer.status in _LOST_ANSWER_STATUSES:
            raise UpstreamOutcomeUnknown(f"{unknown} (HTTP {answer.status})", status=answer.status)
        if answer.status in RETRY_STATUSES:  # 503: the upstream refused it, nothing was done
            raise UpstreamUnavailable(
                f"upstream answered HTTP {answer.status}", status=answer.status, kind="http_5xx"
            )
        return answer

    async def _content(
        self,
        request: UpstreamRequest,
        credentials: Credentials | None,
        deadline: Deadline | None,
        call: _Call = _GET,
    ) -> bytes:
        """The body of a 2xx answer; any other status raises its typed `UpstreamError`.

        Failures an operator should see (not the caller's mistakes) are reported once per call.
        """
        headers = self._headers(credentials)
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        try:
            answer = await self._send(
                request,
                headers,
                retries=self._settings.retries,
                deadline=deadline,
                call=call,
            )
        except UpstreamUnavailable as exc:
            report_failure(request, exc.kind, exc.reason)
            raise
        except UpstreamOutcomeUnknown as exc:
            report_failure(request, "outcome_unknown", exc.reason)
            raise
        except DeadlineExceeded as exc:
            first = deadline.first_report() if deadline is not None else False
            report_deadline(request, exc.seconds, first)
            raise
        status = answer.status
        if 200 <= status < 300 and answer.content is not None:
            return answer.content
        try:
            body: Any = _JSON.validate_json(answer.content) if answer.content else None
        except PydanticValidationError:
            body = None
        error = error_for_status(status, body)
        if status >= 500:
            report_failure(request, "http_5xx", f"HTTP {status}")
        else:
            # The caller's mistake (bad input, no access): not an operator's concern.
            logger.debug("upstream %s answered %s", request.path, status)
        raise error

    def _parsed(
        self,
        request: UpstreamRequest,
        content: bytes,
        parse: Callable[[bytes], V],
        what: str,
    ) -> V:
        try:
            return _parsed(request, content, parse, what)
        except UpstreamProtocolError:
            report_failure(request, "bad_body", what)
            raise

    async def get_bytes(
        self,
        request: UpstreamRequest,
        credentials: Credentials | None,
        *,
        deadline: Deadline | None = None,
    ) -> bytes:
        """The raw body of a 2xx answer (what the response cache stores); typed errors else."""
        return await self._content(request, credentials, deadline)

    async def send_json(
        self,
        method: str,
        request: UpstreamRequest,
        body: Any,
        credentials: Credentials | None,
        *,
        deadline: Deadline | None = None,
    ) -> bytes:
        """A write (`PUT`, `DELETE`, `POST`) with `body` as JSON (None: no body); the raw body
        of its 2xx answer (empty for a 204). PUT/DELETE retry like reads; a POST never does, and
        one that may have reached the upstream without an answer is `UpstreamOutcomeUnknown`."""
        if method not in _WRITE_METHODS:
            raise ValueError(f"not a write method: {method!r}")
        content = None if body is None else _JSON.dump_json(body)
        return await self._content(request, credentials, deadline, _Call(method, content))

    def parse_json(self, request: UpstreamRequest, content: bytes) -> Any:
        """A body as JSON; anything else is `UpstreamProtocolError`."""
        return self._parsed(request, content, _JSON.validate_json, "JSON")

    def parse_model(
        self,
        request: UpstreamRequest,
        content: bytes,
        model_type: type[T],
        skip_records: frozenset[str] = frozenset(),
    ) -> T:
        """A body as `model_type`, without the record lists in `skip_records` (projection.py); a
        body of another shape is `UpstreamProtocolError`."""
        # Straight from bytes: pydantic-core parses and validates in one pass.
        return self._parsed(
            request,
            content,
            functools.partial(projection.parse_json, model_type, skip=skip_records),
            f"a valid {model_type.__name__}",
        )

    def parse_with(
        self, request: UpstreamRequest, content: bytes, adapter: TypeAdapter[V], what: str
    ) -> V:
        """A body as `adapter`'s type (e.g. a JSON array of models, `what` in the error);
        another shape is `UpstreamProtocolError`."""
        return self._parsed(request, content, adapter.validate_json, what)

    def parse_strings(self, request: UpstreamRequest, content: bytes) -> list[str]:
        """A body as a JSON array of strings (`GET /models`, `GET /clients`)."""
        return self._parsed(request, content, _STRINGS.validate_json, "a list of strings")

    async def get_json(
        self,
        request: UpstreamRequest,
        credentials: Credentials | None,
        *,
        deadline: Deadline | None = None,
    ) -> Any:
        """GET the request and return the decoded JSON body; raises the typed `UpstreamError`s."""
        return self.parse_json(request, await self._content(request, credentials, deadline))

    async def get_model(
        self,
        request: UpstreamRequest,
        credentials: Credentials | None,
        model_type: type[T],
        *,
        deadline: Deadline | None = None,
    ) -> T:
        """GET and parse into `model_type`; a body of another shape is `UpstreamProtocolError`."""
        content = await self._content(request, credentials, deadline)
        return self.parse_model(request, content, model_type)

    async def list_strings(
        self,
        request: UpstreamRequest,
        credentials: Credentials | None,
        *,
        deadline: Deadline | None = None,
    ) -> list[str]:
        """`GET /models` or `GET /clients`: a JSON array of strings."""
        return self.parse_strings(request, await self._content(request, credentials, deadline))

    async def ping(self) -> bool:
        """Readiness: any answer below 500 to an unauthenticated `GET /models` means reachable."""
        request = UpstreamRequest.make("/models")
        started = time.perf_counter()
        headers = {"Accept": "application/json"}
        built = self._http.build_request("GET", request.path, headers=headers)
        try:
            # The status is the answer: the body is never read (nor its size trusted).
            response = await self._http.send(built, stream=True)
            await response.aclose()
        except _TRANSPORT_ERRORS:
            self._observe(request, None, started)
            return False
        self._observe(request, response.status_code, started)
        return response.status_code < 500


__all__ = [
    "TOKEN_HEADER",
    "Credentials",
    "OnResponse",
    "UpstreamClient",
    "UpstreamHTTPError",
]
