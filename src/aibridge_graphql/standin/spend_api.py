"""Coder's AI spend and budget endpoints (enterprise, AI Gateway era) for the stand-in.

Routes (enterprise/coderd/aibridge.go): a user's spend status, a group's budget and spend, a
user's budget override, an organization's groups' spend and its CSV spend export. Reads run on
the app's read pool; the budget writes go through one writer connection of their own and record
an audit_logs row in the same transaction, as Coder audits them.

Authorization follows Coder's budget tests (docs/standin.md, "Budgets and spend"); what a caller
may not read, or may read but not write, is "not found", as dbauthz makes it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from aibridge_graphql.standin.auth import Caller, authenticate, token_from_request
from aibridge_graphql.standin.errors import ApiError, FieldError
from aibridge_graphql.standin.goparse import GoTimeError, go_quote, parse_go_uuid, parse_rfc3339nano
from aibridge_graphql.standin.params import uuid_error
from aibridge_graphql.standin.render import timestamp
from aibridge_graphql.standin.spend_data import (
    ORG_ADMIN_ROLE,
    ORG_USER_ADMIN_ROLE,
    USER_ADMIN_ROLE,
    prepare_spend,
)
from aibridge_graphql.standin.spend_store import (
    Period,
    export_rows,
    groups_spend,
    monthly_period,
    spend_clock,
    user_spend,
)
from aibridge_graphql.standin.store import ReadPool

T = TypeVar("T")
Json = Any
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RESOURCE_NOT_FOUND = "Resource not found or you do not have access to this resource"
FORBIDDEN = "Forbidden."
FORBIDDEN_DETAIL = (
    "You don't have permission to view this content. If you believe this is a mistake, please "
    "contact your administrator or try signing in with different credentials."
)
# PR coder/coder#28699 rejects overrides for system users with a 403; its wording was not found.
SYSTEM_USER_OVERRIDE = "AI budget overrides cannot be set for system users."
GROUP_BUDGET_RESOURCE = "group_ai_budget"  # database.ResourceTypeGroupAIBudget
OVERRIDE_RESOURCE = "user_ai_budget_override"  # database.ResourceTypeUserAIBudgetOverride
# codersdk.MaxAISpendLimitMicros: its value was not found; one billion dollars stands in.
MAX_SPEND_LIMIT_MICROS = 1_000_000_000_000_000
MAX_GROUP_IDS = 100
MAX_EXPORT_PERIOD = 31 * 86_400 * 1_000_000
# --ai-gateway-retention: Coder's default was not confirmed; 60 days (Go: "1440h0m0s").
RETENTION_MICROS = 60 * 86_400 * 1_000_000
RETENTION_TEXT = "1440h0m0s"
RFC3339NANO = "2006-01-02T15:04:05.999999999Z07:00"
# Token carriers are not query parameters of the endpoint (ErrorExcessParams skips them here).
_AUTH_PARAMS = frozenset({"coder_session_token", "access_token"})
EXPORT_COLUMNS = (
    "user_id", "username", "group_id", "group_name", "organization_id", "organization_name",
    "model", "provider", "provider_name", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cost_micros", "period_start", "period_end",
)  # fmt: skip
_FORMULA_PREFIXES = "=+-@\t\r"
SPEND_PATHS = re.compile(
    r"^/api/v2/(users/[^/]+/ai/(spend|budget/override)|groups/[^/]+/ai/(budget|spend)"
    r"|organizations/[^/]+/(groups/ai/spend|ai/spend/export))/?$"
)


def escape_cell(value: str) -> str:
    """escapeCSVCell: a leading formula character gets a `'` so spreadsheets show text."""
    return "'" + value if value and value[0] in _FORMULA_PREFIXES else value


class Writer:
    """One read-write connection used from one worker thread, a transaction per call."""

    def __init__(self, path: str | Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="standin-spend")

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one IMMEDIATE transaction off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._tx, work)

    def _tx(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(self._conn)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return result

    def close(self) -> None:
        """Stop the worker and close the connection."""
        self._executor.shutdown(wait=True)
        self._conn.close()


WRITER = web.AppKey("spend_writer", Writer)


# --- who may do what ---------------------------------------------------------------------
# Coder's RBAC as its budget tests exercise it (docs/standin.md, "Budgets and spend"): owners and
# the site user-admin read and write everything; organization admins and organization
# user-admins read their organization's users and groups and write group budgets, but a user's
# override needs site-wide user update; auditors read; group members read their group.

_SITE_WIDE_READERS = frozenset({"owner", "auditor", USER_ADMIN_ROLE})
_ORG_MANAGERS = frozenset({ORG_ADMIN_ROLE, ORG_USER_ADMIN_ROLE})


def site_roles(conn: sqlite3.Connection, caller: Caller) -> frozenset[str]:
    rows = conn.execute("SELECT role FROM user_site_roles WHERE user_id = ?", (caller.user_id,))
    return frozenset({caller.role, *(str(row[0]) for row in rows)})


def _org_roles(conn: sqlite3.Connection, user_id: str, org_id: str) -> frozenset[str] | None:
    """A user's roles in an organization; None when not a member."""
    row = conn.execute(
        "SELECT roles FROM organization_members WHERE organization_id = ? AND user_id = ?",
        (org_id, user_id),
    ).fetchone()
    return None if row is None else frozenset(str(row[0]).split())


def _manages_org(conn: sqlite3.Connection, caller: Caller, org_id: str) -> bool:
    return bool((_org_roles(conn, caller.user_id, org_id) or frozenset()) & _ORG_MANAGERS)


def _org_admin(conn: sqlite3.Connection, caller: Caller) -> bool:
    rows = conn.execute(
        "SELECT roles FROM organization_members WHERE user_id = ?", (caller.user_id,)
    ).fetchall()
    return any(ORG_ADMIN_ROLE in str(row[0]).split() for row in rows)


def _reads_user(conn: sqlite3.Connection, caller: Caller, user_id: str) -> bool:
    """Site-wide readers, and organization managers of an organization the user is in."""
    if user_id == caller.user_id or site_roles(conn, caller) & _SITE_WIDE_READERS:
        return True
    orgs = conn.execute(
        "SELECT organization_id FROM organization_members WHERE user_id = ?", (user_id,)
    ).fetchall()
    return any(_manages_org(conn, caller, str(row[0])) for row in orgs)


def _reads_others(conn: sqlite3.Connection, caller: Caller) -> bool:
    """Whether the caller reads users besides themselves (site-wide or in an organization)."""
    if site_roles(conn, caller) & _SITE_WIDE_READERS:
        return True
    rows = conn.execute(
        "SELECT roles FROM organization_members WHERE user_id = ?", (caller.user_id,)
    ).fetchall()
    return any(set(str(row[0]).split()) & _ORG_MANAGERS for row in rows)


def _writes_users(conn: sqlite3.Connection, caller: Caller) -> bool:
    """Site-scoped user update (TestUserAIBudgetOverrideRoleAccess): owner and user-admin."""
    return bool(site_roles(conn, caller) & {"owner", USER_ADMIN_ROLE})


def _in_group(conn: sqlite3.Connection, user_id: str, group_id: str, org_id: str) -> bool:
    """group_members_expanded: the Everyone group (id = organization id) holds every member."""
    if _org_roles(conn, user_id, org_id) is None:
        return False
    if group_id == org_id:
        return True
    row = conn.execute(
        "SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?", (group_id, user_id)
    ).fetchone()
    return row is not None


def _reads_group(conn: sqlite3.Connection, caller: Caller, group_id: str, org_id: str) -> bool:
    return (
        bool(site_roles(conn, caller) & _SITE_WIDE_READERS)
        or _manages_org(conn, caller, org_id)
        or _in_group(conn, caller.user_id, group_id, org_id)
    )


def _writes_group(conn: sqlite3.Connection, caller: Caller, org_id: str) -> bool:
    return bool(site_roles(conn, caller) & {"owner", USER_ADMIN_ROLE}) or _manages_org(
        conn, caller, org_id
    )


def _is_system(conn: sqlite3.Connection, user_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM system_users WHERE user_id = ?", (user_id,)).fetchone()
    return row is not None


def _not_found() -> ApiError:
    return ApiError(404, RESOURCE_NOT_FOUND)


# --- audit ---------------------------------------------------------------------------------


def _dollars(micros: int) -> str:
    """The audit diff's spend_limit: dollars with two decimals, as Coder's diff shows it."""
    return f"${micros / 1_000_000:.2f}"


def _diff(old: dict[str, str], new: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"old": old[k], "new": new[k]} for k in old if old[k] != new[k]}


@dataclass(frozen=True)
class AuditEntry:
    """One audit_logs row: the resource a budget change touched and the diff."""

    action: str
    resource_type: str
    resource_id: str
    resource_target: str
    organization_id: str
    diff: dict[str, dict[str, str]]


def audit(conn: sqlite3.Connection, caller: Caller, entry: AuditEntry, status: int) -> None:
    conn.execute(
        "INSERT INTO audit_logs (time, user_id, organization_id, action, resource_type, "
        "resource_id, resource_target, diff, status_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now_micros(), caller.user_id, entry.organization_id, entry.action, entry.resource_type,
            entry.resource_id, entry.resource_target,
            json.dumps(entry.diff, separators=(",", ":")), status,
        ),
    )  # fmt: skip


# --- path parameters ---------------------------------------------------------------------


def _user_param(conn: sqlite3.Connection, caller: Caller, value: str) -> sqlite3.Row:
    """httpmw.ExtractUserParam: `me`, a user id or a username; unreadable users are 404."""
    if value == "me":
        value = caller.user_id
    parsed = parse_go_uuid(value)
    row: sqlite3.Row | None
    if parsed is not None:
        row = conn.execute("SELECT id, username FROM users WHERE id = ?", (parsed,)).fetchone()
    else:
        row = conn.execute(
            "SELECT id, username FROM users WHERE lower(username) = lower(?)", (value,)
        ).fetchone()
    if row is None or not _reads_user(conn, caller, str(row[0])):
        raise _not_found()
    return row


def _uuid_param(value: str) -> str:
    parsed = parse_go_uuid(value)
    if parsed is None:
        raise ApiError(400, f"Invalid UUID {go_quote(value)}.", uuid_error(value))
    return parsed


@dataclass(frozen=True)
class Group:
    """A group a caller may read."""

    id: str
    organization_id: str
    name: str


def _group_param(conn: sqlite3.Connection, caller: Caller, value: str) -> Group:
    """httpmw.ExtractGroupParam: a group id; groups the caller may not read are 404."""
    group_id = _uuid_param(value)
    row = conn.execute(
        "SELECT organization_id, name FROM ai_groups WHERE id = ?", (group_id,)
    ).fetchone()
    if row is None or not _reads_group(conn, caller, group_id, str(row[0])):
        raise _not_found()
    return Group(group_id, str(row[0]), str(row[1]))


def _organization_param(conn: sqlite3.Connection, caller: Caller, value: str) -> str:
    """httpmw.ExtractOrganizationParam: an id or a name; only its members (and site-wide
    readers) read it."""
    parsed = parse_go_uuid(value)
    row = conn.execute(
        "SELECT id FROM organizations WHERE id = ? OR lower(name) = lower(?)",
        (parsed or "", value),
    ).fetchone()
    if row is None:
        raise _not_found()
    member = _org_roles(conn, caller.user_id, str(row[0])) is not None
    if not member and not site_roles(conn, caller) & _SITE_WIDE_READERS:
        raise _not_found()
    return str(row[0])


# --- bodies and query parameters -----------------------------------------------------------


async def read_body(request: web.Request) -> dict[str, Any]:
    """httpapi.Read: a JSON object, else Coder's 400."""
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "Request body must be valid JSON.", str(exc)) from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be valid JSON.", "the body is not a JSON object")
    return body


def validation_error(field: str, tag: str, value: object) -> ApiError:
    detail = f'Validation failed for tag "{tag}" with value: "{value}"'
    return ApiError(400, "Validation failed.", validations=[FieldError(field, detail)])


def _int64_field(body: dict[str, Any], field: str) -> int:
    value = body.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ApiError(
            400,
            "Request body must be valid JSON.",
            f"json: cannot unmarshal {type(value).__name__} into Go struct field {field} of "
            "type int64",
        )
    return value


def _spend_limit(body: dict[str, Any]) -> int:
    limit = _int64_field(body, "spend_limit_micros")
    if limit < 0:
        raise validation_error("spend_limit_micros", "gte", limit)
    if limit > MAX_SPEND_LIMIT_MICROS:
        raise ApiError(
            400,
            "Invalid AI spend limit.",
            validations=[
                FieldError("spend_limit_micros", f"Must not exceed {MAX_SPEND_LIMIT_MICROS}.")
            ],
        )
    return limit


def _excess(query: Any, allowed: set[str]) -> list[FieldError]:
    return [
        FieldError(key, f"Query param {go_quote(key)} is not a valid query param")
        for key in dict.fromkeys(query.keys())
        if key not in allowed and key not in _AUTH_PARAMS
    ]


def _group_ids(query: Any) -> list[str]:
    errors: list[FieldError] = []
    raw = query.get("group_ids", "")
    ids: list[str] = []
    if not raw:
        detail = 'Query param "group_ids" is required and cannot be empty'
        errors.append(FieldError("group_ids", detail))
    for part in raw.split(","):
        if not part.strip():
            continue
        parsed = parse_go_uuid(part.strip())
        if parsed is None:
            errors.append(FieldError("group_ids", 'Query param "group_ids" must be a valid uuid'))
            break
        ids.append(parsed)
    errors += _excess(query, {"group_ids"})
    if errors:
        raise ApiError(400, "Query parameters have invalid values.", validations=errors)
    if len(ids) > MAX_GROUP_IDS:
        raise ApiError(400, f"group_ids has {len(ids)} entries, maximum is {MAX_GROUP_IDS}.")
    return ids


def _export_period(query: Any, now: int) -> tuple[int, int]:
    """aiSpendExportPeriod: the requested [start, end), or the current month in retention."""
    has_start, has_end = "period_start" in query, "period_end" in query
    retention_start = now - RETENTION_MICROS
    if not has_start and not has_end:
        period = monthly_period(now)
        return max(period.start, retention_start), period.end
    if has_start != has_end:
        raise ApiError(
            400, 'Query parameters "period_start" and "period_end" must be provided together.'
        )
    errors: list[FieldError] = []
    bounds = []
    for key in ("period_start", "period_end"):
        try:
            bounds.append(parse_rfc3339nano(query[key]) // 1000)
        except GoTimeError as exc:
            detail = (
                f"Query param {go_quote(key)} must be a valid date format ({RFC3339NANO}): {exc}"
            )
            errors.append(FieldError(key, detail))
    errors += _excess(query, {"period_start", "period_end"})
    if errors:
        raise ApiError(400, "Query parameters have invalid values.", validations=errors)
    start, end = bounds
    if start >= end:
        raise ApiError(400, 'Query parameter "period_start" must be before "period_end".')
    if end - start > MAX_EXPORT_PERIOD:
        raise ApiError(400, "Query period must not exceed 31 days.")
    if start < retention_start:
        raise ApiError(
            400,
            'Query parameter "period_start" is older than the configured AI Gateway data '
            f"retention window ({RETENTION_TEXT}).",
        )
    return start, end


# --- rendering -----------------------------------------------------------------------------


def _window(period: Period) -> Json:
    return {"period_start": timestamp(period.start), "period_end": timestamp(period.end)}


def _budget_json(row: sqlite3.Row | tuple[Any, ...]) -> Json:
    group_id, limit, created, updated = row
    return {
        "group_id": group_id,
        "spend_limit_micros": limit,
        "created_at": timestamp(created),
        "updated_at": timestamp(updated),
    }


def _override_json(row: sqlite3.Row | tuple[Any, ...]) -> Json:
    user_id, group_id, limit, created, updated = row
    return {
        "user_id": user_id,
        "group_id": group_id,
        "spend_limit_micros": limit,
        "created_at": timestamp(created),
        "updated_at": timestamp(updated),
    }


def _override_audit(conn: sqlite3.Connection, user_id: str) -> dict[str, str]:
    """AuditableUserAIBudgetOverride's fields for a user's current override ("" when none)."""
    row = conn.execute(
        "SELECT o.group_id, g.name, o.spend_limit_micros FROM user_ai_budget_overrides AS o "
        "LEFT JOIN ai_groups AS g ON g.id = o.group_id WHERE o.user_id = ?",
        (user_id,),
    ).fetchone()
    if row is None:
        return {"group_id": "", "group_name": "", "spend_limit": _dollars(0)}
    return {
        "group_id": str(row[0]),
        "group_name": str(row[1] or ""),
        "spend_limit": _dollars(row[2]),
    }


def json_response(body: Json) -> web.Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return web.Response(text=text, content_type="application/json")


def now_micros() -> int:
    return time.time_ns() // 1000


# --- handlers ------------------------------------------------------------------------------


class _Routes:
    """The handlers, bound to the app's read pool key."""

    def __init__(self, pool: web.AppKey[ReadPool]) -> None:
        self._pool = pool

    async def _read(
        self, request: web.Request, work: Callable[[sqlite3.Connection, Caller], T]
    ) -> T:
        token = token_from_request(request)

        def run(conn: sqlite3.Connection) -> T:
            return work(conn, authenticate(conn, token, now_micros()))

        return await request.app[self._pool].run(run)

    async def _write(
        self, request: web.Request, work: Callable[[sqlite3.Connection, Caller], T]
    ) -> T:
        token = token_from_request(request)

        def run(conn: sqlite3.Connection) -> T:
            return work(conn, authenticate(conn, token, now_micros()))

        return await request.app[WRITER].run(run)

    async def user_spend(self, request: web.Request) -> web.Response:
        def work(conn: sqlite3.Connection, caller: Caller) -> Json:
            period = monthly_period(spend_clock(conn))
            user = _user_param(conn, caller, request.match_info["user"])
            return user_spend(conn, str(user[0]), period) | _window(period)

        return json_response(await self._read(request, work))

    async def get_group_budget(self, request: web.Request) -> web.Response:
        def work(conn: sqlite3.Connection, caller: Caller) -> Json:
            group = _group_param(conn, caller, request.match_info["group"])
            row = conn.execute(
                "SELECT * FROM group_ai_budgets WHERE group_id = ?", (group.id,)
            ).fetchone()
            if row is None:
                raise _not_found()
            return _budget_json(tuple(row))

        return json_response(await self._read(request, work))

    async def put_group_budget(self, request: web.Request) -> web.Response:
        body = await read_body(request)

        def work(conn: sqlite3.Connection, caller: Caller) -> Json:
            group = _group_param(conn, caller, request.match_info["group"])
            limit = _spend_limit(body)
            if not _writes_group(conn, caller, group.organization_id):
                raise _not_found()  # dbauthz's refusal is a 404 in Coder's handler
            old = conn.execute(
                "SELECT spend_limit_micros FROM group_ai_budgets WHERE group_id = ?", (group.id,)
            ).fetchone()
            now = now_micros()
            row = conn.execute(
                "INSERT INTO group_ai_budgets VALUES (?, ?, ?, ?) ON CONFLICT (group_id) DO "
                "UPDATE SET spend_limit_micros = excluded.spend_limit_micros, "
                "updated_at = excluded.updated_at RETURNING *",
                (group.id, limit, now, now),
            ).fetchone()
            before = {"spend_limit": _dollars(0 if old is None else int(old[0]))}
            entry = AuditEntry(
                "write", GROUP_BUDGET_RESOURCE, group.id, group.name, group.organization_id,
                _diff(before, {"spend_limit": _dollars(limit)}),
            )  # fmt: skip
            audit(conn, caller, entry, 200)
            return _budget_json(tuple(row))

        return json_response(await self._write(request, work))

    async def delete_group_budget(self, request: web.Request) -> web.Response:
        def work(conn: sqlite3.Connection, caller: Caller) -> None:
            group = _group_param(conn, caller, request.match_info["group"])
            if not _writes_group(conn, caller, group.organization_id):
                raise _not_found()
            deleted = conn.execute(
                "DELETE FROM group_ai_budgets WHERE group_id = ? RETURNING spend_limit_micros",
                (group.id,),
            ).fetchone()
            if deleted is None:
                raise _not_found()
            entry = AuditEntry(
                "delete", GROUP_BUDGET_RESOURCE, group.id, group.name, group.organization_id,
                _diff({"spend_limit": _dollars(int(deleted[0]))}, {"spend_limit": ""}),
            )  # fmt: skip
            audit(conn, caller, entry, 204)

        await self._write(request, work)
        return web.Response(status=204)

    async def group_spend(self, request: web.Request) -> web.Response:
        def work(conn: sqlite3.Connection, caller: Caller) -> Json:
            period = monthly_period(spend_clock(conn))
            group = _group_param(conn, caller, request.match_info["group"])
            rows = groups_spend(conn, group.organization_id, [group.id], period)
            if not rows:
                raise _not_found()
            return _window(period) | rows[0]

        return json_response(await self._read(request, work))

    async def get_override(self, request: web.Request) -> web.Response:
        def work(conn: sqlite3.Connection, caller: Caller) -> Json:
            user = _user_param(conn, caller, request.match_info["user"])
            if not _reads_others(conn, caller):
                raise _not_found()  # not confirmed that members read their own override
            row = conn.execute(
                "SELECT * FROM user_ai_budget_overrides WHERE user_id = ?", (user[0],)
            ).fetchone()
            if row is None:
                raise _not_found()
            return _override_json(tuple(row))

        return json_response(await self._read(request, work))

    async def put_override(self, request: web.Request) -> web.Response:
        body = await read_body(request)

        def work(conn: sqlite3.Connection, caller: Caller) -> Json:
            user = _user_param(conn, caller, request.match_info["user"])
            if _is_system(conn, str(user[0])):
                raise ApiError(403, SYSTEM_USER_OVERRIDE)
            raw_group = body.get("group_id", "")
            group_id = parse_go_uuid(raw_group) if isinstance(raw_group, str) else None
            if group_id is None:
                detail = f"invalid UUID {go_quote(str(raw_group))}"
                raise ApiError(400, "Request body must be valid JSON.", detail)
            if group_id == "00000000-0000-0000-0000-000000000000":
                raise validation_error("group_id", "required", group_id)
            limit = _spend_limit(body)
            found = conn.execute(
                "SELECT organization_id, name FROM ai_groups WHERE id = ?", (group_id,)
            ).fetchone()
            # GetGroupByID: an unknown or unreadable group is 404; then the upsert's
            # authorization (site-scoped user update), then the membership check.
            if found is None or not _reads_group(conn, caller, group_id, str(found[0])):
                raise _not_found()
            if not _writes_users(conn, caller):
                raise _not_found()
            if not _in_group(conn, str(user[0]), group_id, str(found[0])):
                raise ApiError(
                    400,
                    "User is not a member of the referenced group.",
                    validations=[FieldError("group_id", "user must be a member of this group")],
                )
            before = _override_audit(conn, str(user[0]))
            now = now_micros()
            row = conn.execute(
                "INSERT INTO user_ai_budget_overrides VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET group_id = excluded.group_id, "
                "spend_limit_micros = excluded.spend_limit_micros, "
                "updated_at = excluded.updated_at RETURNING *",
                (user[0], group_id, limit, now, now),
            ).fetchone()
            after = {"group_id": group_id, "group_name": str(found[1])}
            after["spend_limit"] = _dollars(limit)
            entry = AuditEntry(
                "write", OVERRIDE_RESOURCE, str(user[0]), str(user[1]), str(found[0]),
                _diff(before, after),
            )  # fmt: skip
            audit(conn, caller, entry, 200)
            return _override_json(tuple(row))

        return json_response(await self._write(request, work))

    async def delete_override(self, request: web.Request) -> web.Response:
        def work(conn: sqlite3.Connection, caller: Caller) -> None:
            user = _user_param(conn, caller, request.match_info["user"])
            found = conn.execute(
                "SELECT o.group_id, g.organization_id FROM user_ai_budget_overrides AS o "
                "JOIN ai_groups AS g ON g.id = o.group_id WHERE o.user_id = ?",
                (user[0],),
            ).fetchone()
            if found is None or not _writes_users(conn, caller):
                raise _not_found()
            before = _override_audit(conn, str(user[0]))
            conn.execute("DELETE FROM user_ai_budget_overrides WHERE user_id = ?", (user[0],))
            entry = AuditEntry(
                "delete", OVERRIDE_RESOURCE, str(user[0]), str(user[1]), str(found[1]),
                _diff(before, dict.fromkeys(before, "")),
            )  # fmt: skip
            audit(conn, caller, entry, 204)

        await self._write(request, work)
        return web.Response(status=204)

    async def groups_spend(self, request: web.Request) -> web.Response:
        def work(conn: sqlite3.Connection, caller: Caller) -> Json:
            period = monthly_period(spend_clock(conn))
            org_id = _organization_param(conn, caller, request.match_info["organization"])
            ids = _group_ids(request.query)
            # Every member of the organization reads its groups' spend
            # (TestOrganizationGroupsAISpendRoleAccess); other organizations' groups are omitted.
            return _window(period) | {"groups": groups_spend(conn, org_id, ids, period)}

        return json_response(await self._read(request, work))

    async def export(self, request: web.Request) -> web.Response:
        def work(conn: sqlite3.Connection, caller: Caller) -> tuple[str, str]:
            now = spend_clock(conn)
            org_id = _organization_param(conn, caller, request.match_info["organization"])
            if not (caller.role == "owner" or _org_admin(conn, caller)):
                raise ApiError(403, FORBIDDEN, FORBIDDEN_DETAIL)
            start, end = _export_period(request.query, now)
            name = conn.execute("SELECT name FROM organizations WHERE id = ?", (org_id,))
            org_name = str(name.fetchone()[0])
            out = io.StringIO()
            # Go's encoding/csv: quotes only where needed, "\n" line ends.
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(EXPORT_COLUMNS)
            bounds = [timestamp(start - start % 1_000_000), timestamp(end - end % 1_000_000)]
            for row in export_rows(conn, org_id, start, end):
                writer.writerow(
                    [
                        row["user_id"],
                        escape_cell(row["username"]),
                        row["group_id"],
                        escape_cell(row["group_name"]),
                        row["organization_id"],
                        escape_cell(row["organization_name"]),
                        escape_cell(row["model"]),
                        escape_cell(row["provider"]),
                        escape_cell(row["provider_name"]),
                        *(row[k] for k in ("input_tokens", "output_tokens")),
                        *(row[k] for k in ("cache_read_tokens", "cache_write_tokens")),
                        row["cost_micros"],
                        *bounds,
                    ]
                )
            day = "%Y-%m-%d"
            first, last = (time.strftime(day, time.gmtime(t // 1_000_000)) for t in (start, end))
            filename = f"ai-spend-export-{org_name}-{first}-to-{last}.csv"
            return out.getvalue(), filename

        text, filename = await self._read(request, work)
        response = web.Response(text=text, content_type="text/csv", charset="utf-8")
        response.headers["Content-Disposition"] = f"attachment; filename={go_quote(filename)}"
        return response


async def _writer(app: web.Application, path: Path) -> AsyncIterator[None]:
    app[WRITER] = Writer(path)
    yield
    app[WRITER].close()


def add_spend_routes(app: web.Application, path: Path, pool: web.AppKey[ReadPool]) -> None:
    """Prepare the spend tables of the database at `path` and add the spend routes."""
    prepare_spend(path)
    app.cleanup_ctx.append(lambda a: _writer(a, path))
    routes = _Routes(pool)
    user, group, org = (
        "/api/v2/users/{user}",
        "/api/v2/groups/{group}",
        "/api/v2/organizations/{organization}",
    )
    app.router.add_get(f"{user}/ai/spend", routes.user_spend, name="spend.user")
    app.router.add_get(f"{group}/ai/budget", routes.get_group_budget, name="spend.group_get")
    app.router.add_get(f"{group}/ai/spend", routes.group_spend, name="spend.group_spend")
    app.router.add_put(f"{group}/ai/budget", routes.put_group_budget, name="spend.group_put")
    app.router.add_delete(f"{group}/ai/budget", routes.delete_group_budget, name="spend.group_del")
    app.router.add_get(f"{user}/ai/budget/override", routes.get_override, name="spend.ovr_get")
    app.router.add_put(f"{user}/ai/budget/override", routes.put_override, name="spend.ovr_put")
    app.router.add_delete(
        f"{user}/ai/budget/override", routes.delete_override, name="spend.ovr_del"
    )
    app.router.add_get(f"{org}/groups/ai/spend", routes.groups_spend, name="spend.groups")
    app.router.add_get(f"{org}/ai/spend/export", routes.export, name="spend.export")
