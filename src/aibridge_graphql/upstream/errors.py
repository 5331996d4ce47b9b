"""Typed upstream failures. Messages never hold the upstream URL, query string or a token."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError

from aibridge_graphql.upstream.models import ErrorResponse, ValidationError


class UpstreamError(Exception):
    """Base of every failure talking to the upstream."""


class UpstreamUnavailable(UpstreamError):
    """Connection failure, timeout, or 5xx after the retries are exhausted.

    `kind` is a bounded label for operators (`unreachable`, `timeout`, `http_5xx`, `failed`,
    `too_large`): the metric label and log reason, never text from the upstream.
    """

    def __init__(self, reason: str, status: int | None = None, *, kind: str = "failed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.kind = kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, status={self.status!r})"


class UpstreamOutcomeUnknown(UpstreamError):
    """A non-idempotent write may have reached the upstream, but its answer never arrived (the
    connection dropped, a read timed out, the deadline passed): it may or may not have been done.
    Never retried; the caller should read the state back before trying again."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class UpstreamResponseTooLarge(UpstreamUnavailable):
    """The body passed `max_bytes` while streaming (or its Content-Length said it would)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"upstream body over {max_bytes} bytes", kind="too_large")
        self.max_bytes = max_bytes


class DeadlineExceeded(UpstreamError):
    """The request's deadline passed before this upstream call (with its retries) finished."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"request deadline of {seconds:g}s passed")
        self.seconds = seconds


class UpstreamProtocolError(UpstreamError):
    """A 2xx body that is not the documented shape (the body itself is not kept in the message)."""


class UpstreamHTTPError(UpstreamError):
    """A non-2xx answer, keeping Coder's `{message, detail, validations}`."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: str | None = None,
        validations: list[ValidationError] | None = None,
    ) -> None:
        super().__init__(f"upstream HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.detail = detail
        self.validations: list[ValidationError] = list(validations or [])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class UpstreamBadRequest(UpstreamHTTPError):
    """400."""


class UpstreamUnauthorized(UpstreamHTTPError):
    """401."""


class UpstreamForbidden(UpstreamHTTPError):
    """403."""


class UpstreamNotFound(UpstreamHTTPError):
    """404."""


class UpstreamServerError(UpstreamHTTPError):
    """5xx that is not retried (or not retryable)."""


_BY_STATUS: dict[int, type[UpstreamHTTPError]] = {
    400: UpstreamBadRequest,
    401: UpstreamUnauthorized,
    403: UpstreamForbidden,
    404: UpstreamNotFound,
}


def error_for_status(status: int, body: Any) -> UpstreamHTTPError:
    """The typed error of a non-2xx response; a non-Coder body gets a generic message."""
    cls = _BY_STATUS.get(status) or (UpstreamServerError if status >= 500 else UpstreamHTTPError)
    try:
        parsed = ErrorResponse.model_validate(body)
    except PydanticValidationError:
        return cls(status, f"Upstream responded with HTTP {status}.")
    return cls(status, parsed.message, parsed.detail or None, list(parsed.validations))
