"""Coder's AI Gateway keys (enterprise, AI Gateway era): secrets standalone AI Gateway replicas
authenticate into coderd with.

Routes (enterprise/coderd/aigatewaykeys.go, codersdk/aigatewaykeys.go): `GET /keys` lists them
(oldest first, never a secret), `POST /keys` creates one (201, the secret in that answer only:
the table keeps its SHA-256 and its first 11 characters), `DELETE /keys/{key}` removes one (204).
Managing keys is owner-only (aigatewaykeys_test.go): anyone else is Coder's 403. Each create and
delete writes an audit_logs row in the same transaction, as Coder audits them
(TestAIGatewayKeyAudit): the diff holds the name and the secret's prefix, never its hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import string
import uuid
from typing import Any

from aiohttp import web

from aibridge_graphql.standin.auth import Caller, authenticate, token_from_request
from aibridge_graphql.standin.errors import ApiError, FieldError
from aibridge_graphql.standin.goparse import parse_go_uuid
from aibridge_graphql.standin.params import uuid_error
from aibridge_graphql.standin.render import timestamp
from aibridge_graphql.standin.spend_api import (
    FORBIDDEN,
    FORBIDDEN_DETAIL,
    RESOURCE_NOT_FOUND,
    WRITER,
    AuditEntry,
    audit,
    json_response,
    now_micros,
    read_body,
    site_roles,
    validation_error,
)

KEY_RESOURCE = "ai_gateway_key"  # database.ResourceTypeAIGatewayKey
# coderd/aibridge/keys: an 11-character visible prefix and 32 more, 43 in all.
KEY_PREFIX_LENGTH = 11
KEY_LENGTH = KEY_PREFIX_LENGTH + 32
_ALPHABET = string.ascii_letters + string.digits  # cryptorand.String's, as apikey uses it
# The table's ai_gateway_keys_name_check, and the handler's detail for it.
_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
MAX_NAME_LENGTH = 64
NAME_FORMAT_DETAIL = (
    "Must be 64 characters or fewer, lowercase letters, numbers, and non-consecutive hyphens, "
    "cannot start or end with a hyphen."
)
# Keys are site-wide: their audit rows carry no organization.
_NO_ORGANIZATION = "00000000-0000-0000-0000-000000000000"


def _forbidden() -> ApiError:
    return ApiError(403, FORBIDDEN, FORBIDDEN_DETAIL)


def _require_owner(conn: sqlite3.Connection, caller: Caller) -> None:
    """dbauthz on the key resource: only owners hold it; Coder's handler answers 403."""
    if "owner" not in site_roles(conn, caller):
        raise _forbidden()


def _name(body: dict[str, Any]) -> str:
    """CreateAIGatewayKeyRequest.Name: a JSON string, `validate:"required"`."""
    value = body.get("name", "")
    if not isinstance(value, str):
        kind = "number" if isinstance(value, int | float) else type(value).__name__
        raise ApiError(
            400,
            "Request body must be valid JSON.",
            f"json: cannot unmarshal {kind} into Go struct field "
            "CreateAIGatewayKeyRequest.name of type string",
        )
    if not value:
        raise validation_error("name", "required", value)
    return value


def _check_name(conn: sqlite3.Connection, name: str) -> None:
    """The table's check constraint and unique index, as the handler maps them (400s)."""
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise ApiError(
            400, "Invalid key name.", validations=[FieldError("name", NAME_FORMAT_DETAIL)]
        )
    taken = conn.execute("SELECT 1 FROM ai_gateway_keys WHERE name = ?", (name,)).fetchone()
    if taken is not None:
        raise ApiError(
            400,
            "Key name must be unique.",
            validations=[FieldError("name", "A key with this name already exists.")],
        )


def _key_json(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    """codersdk.AIGatewayKey: `last_used_at` omitted while the key was never used."""
    key_id, name, prefix, created, last_used = row
    out: dict[str, Any] = {
        "id": key_id,
        "name": name,
        "key_prefix": prefix,
        "created_at": timestamp(created),
    }
    if last_used is not None:
        out["last_used_at"] = timestamp(last_used)
    return out


def _audit_fields(name: str, prefix: str) -> dict[str, str]:
    return {"name": name, "secret_prefix": prefix}


async def _run(request: web.Request, work: Any) -> Any:
    token = token_from_request(request)

    def run(conn: sqlite3.Connection) -> Any:
        return work(conn, authenticate(conn, token, now_micros()))

    return await request.app[WRITER].run(run)


async def list_keys(request: web.Request) -> web.Response:
    def work(conn: sqlite3.Connection, caller: Caller) -> list[dict[str, Any]]:
        _require_owner(conn, caller)
        rows = conn.execute(
            "SELECT id, name, secret_prefix, created_at, last_used_at FROM ai_gateway_keys "
            "ORDER BY created_at, id"
        )
        return [_key_json(tuple(row)) for row in rows]

    return json_response(await _run(request, work))


async def create_key(request: web.Request) -> web.Response:
    # httpapi.Read runs before the insert's authorization: bad bodies are 400 for anyone.
    body = await read_body(request)

    def work(conn: sqlite3.Connection, caller: Caller) -> dict[str, Any]:
        name = _name(body)
        _require_owner(conn, caller)
        _check_name(conn, name)
        secret = "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))
        prefix = secret[:KEY_PREFIX_LENGTH]
        key_id, created = str(uuid.uuid4()), now_micros()
        conn.execute(
            "INSERT INTO ai_gateway_keys (id, name, secret_prefix, hashed_secret, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (key_id, name, prefix, hashlib.sha256(secret.encode()).digest(), created),
        )
        new = _audit_fields(name, prefix)
        entry = AuditEntry(
            "create", KEY_RESOURCE, key_id, name, _NO_ORGANIZATION,
            {k: {"old": "", "new": v} for k, v in new.items()},
        )  # fmt: skip
        audit(conn, caller, entry, 201)
        return {
            "id": key_id,
            "name": name,
            "key": secret,
            "key_prefix": prefix,
            "created_at": timestamp(created),
        }

    response = json_response(await _run(request, work))
    response.set_status(201)
    return response


async def delete_key(request: web.Request) -> web.Response:
    raw = request.match_info["key"]

    def work(conn: sqlite3.Connection, caller: Caller) -> None:
        key_id = parse_go_uuid(raw)
        if key_id is None:
            raise ApiError(400, "Invalid key ID.", uuid_error(raw))
        _require_owner(conn, caller)
        deleted = conn.execute(
            "DELETE FROM ai_gateway_keys WHERE id = ? RETURNING name, secret_prefix", (key_id,)
        ).fetchone()
        if deleted is None:
            raise ApiError(404, RESOURCE_NOT_FOUND)
        old = _audit_fields(str(deleted[0]), str(deleted[1]))
        entry = AuditEntry(
            "delete", KEY_RESOURCE, key_id, str(deleted[0]), _NO_ORGANIZATION,
            {k: {"old": v, "new": ""} for k, v in old.items()},
        )  # fmt: skip
        audit(conn, caller, entry, 204)

    await _run(request, work)
    return web.Response(status=204)


def add_key_routes(app: web.Application, prefixes: tuple[str, ...]) -> None:
    """The keys routes under each AI Gateway prefix (before the data plane's catch-all)."""
    for index, prefix in enumerate(prefixes):
        app.router.add_get(f"{prefix}/keys", list_keys, name=f"keys.list.p{index}")
        app.router.add_post(f"{prefix}/keys", create_key, name=f"keys.create.p{index}")
        app.router.add_delete(f"{prefix}/keys/{{key}}", delete_key, name=f"keys.delete.p{index}")
