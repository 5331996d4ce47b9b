"""Authentication as Coder's `httpmw.ExtractAPIKey` does it, and the caller it yields.

The token is read from, in order: the `coder_session_token` cookie, the `coder_session_token`
query parameter, the `Coder-Session-Token` header, then (as newer Coder versions accept, RFC 6750)
`Authorization: Bearer <token>` and the `access_token` query parameter. Failures are 401s with
Coder's bodies and its `WWW-Authenticate` challenge.
"""

from __future__ import annotations

import hmac
import sqlite3
import time
from dataclasses import dataclass

from aiohttp import web

from aibridge_graphql.standin.errors import ApiError
from aibridge_graphql.standin.goparse import go_quote
from aibridge_graphql.standin.params import first_value

SESSION_TOKEN_COOKIE = "coder_session_token"  # noqa: S105 (a name, not a secret)
SESSION_TOKEN_HEADER = "Coder-Session-Token"  # noqa: S105
SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
# Roles that may read every interception (Coder's RBAC: owner and site-wide auditor).
READ_ALL_ROLES = frozenset({"owner", "auditor"})


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request."""

    user_id: str
    username: str
    role: str

    @property
    def authorized(self) -> bool:
        """Whether the authorize filter lets this caller read AI Bridge interceptions."""
        return self.role in READ_ALL_ROLES


def token_from_request(request: web.Request) -> str:
    """The session token of a request, or "" when it carries none."""
    cookie = request.cookies.get(SESSION_TOKEN_COOKIE, "")
    if cookie:
        return cookie
    query = first_value(request.query, SESSION_TOKEN_COOKIE)
    if query:
        return query
    header = request.headers.get(SESSION_TOKEN_HEADER, "")
    if header:
        return header
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return first_value(request.query, "access_token").strip()


def www_authenticate(request: web.Request, error: ApiError) -> str:
    """Coder's RFC 6750 challenge for a 401 (buildWWWAuthenticateHeader).

    Coder picks the "expired" wording whenever the message or detail mentions "expired", which
    its signed-out message always does.
    """
    metadata = f"{request.scheme}://{request.host}/.well-known/oauth-protected-resource"
    expired = "expired" in error.message or "expired" in error.detail
    description = "The access token has expired" if expired else "The access token is invalid"
    return (
        f'Bearer realm="coder", error="invalid_token", error_description="{description}", '
        f"resource_metadata={go_quote(metadata)}"
    )


def _go_bytes(text: str) -> bytes:
    """The bytes Go sees: aiohttp decodes header bytes that are not UTF-8 to surrogates."""
    return text.encode("utf-8", "surrogateescape")


def split_api_token(token: str) -> tuple[str, str]:
    """httpmw.SplitAPIToken, counting bytes as Go does; ValueError carries Coder's error text."""
    parts = token.split("-")
    if len(parts) != 2:
        raise ValueError(f"incorrect amount of API key parts, expected 2 got {len(parts)}")
    key_id, secret = parts
    if len(_go_bytes(key_id)) != 10:
        raise ValueError(f"invalid API key ID length, expected 10 got {len(_go_bytes(key_id))}")
    if len(_go_bytes(secret)) != 22:
        raise ValueError(f"invalid API key secret length, expected 22 got {len(_go_bytes(secret))}")
    return key_id, secret


def go_time_string(micros: int) -> str:
    """Go's time.Time.String() of a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`."""
    seconds, fraction = divmod(micros, 1_000_000)
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + " +0000 UTC"


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, SIGNED_OUT, detail)


def authenticate(conn: sqlite3.Connection, token: str, now_micros: int) -> Caller:
    """The caller a token belongs to; ApiError(401) when it is missing, malformed or invalid."""
    if not token:
        raise _unauthorized(f'Cookie "{SESSION_TOKEN_COOKIE}" or query parameter must be provided.')
    try:
        key_id, secret = split_api_token(token)
    except ValueError as exc:
        raise _unauthorized(f"Invalid API key format: {exc}") from None
    if not _is_utf8(key_id):
        # Not valid UTF-8 (raw header bytes), so no stored id can equal it.
        raise _unauthorized("API key is invalid.")
    row = conn.execute(
        "SELECT k.secret, k.expires_at, u.id, u.username, u.role FROM api_keys AS k "
        "JOIN users AS u ON u.id = k.user_id WHERE k.id = ?",
        (key_id,),
    ).fetchone()
    if row is None:
        raise _unauthorized("API key is invalid.")
    stored_secret, expires_at, user_id, username, role = row
    if not hmac.compare_digest(str(stored_secret).encode(), _go_bytes(secret)):
        raise _unauthorized("API key secret is invalid.")
    if expires_at < now_micros:
        raise _unauthorized(f'API key expired at "{go_time_string(expires_at)}".')
    return Caller(str(user_id), str(username), str(role))
