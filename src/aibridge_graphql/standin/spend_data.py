"""The AI Gateway era's organization, groups, budgets and priced token usage.

`prepare_spend` applies spend_schema.sql and, on a database without an organization, seeds a
deterministic one from the users already there (seeded or imported): the default organization,
a few groups with members and budgets, one user override, an organization admin, and the users
that exercise the rest of Coder's authorization matrix: a site user admin, an organization user
admin and a system user (Coder's prebuilds user, which has no token). It then
prices every token usage that has no cost yet (pricing.py), attributing it to its user's
effective budget group at that moment, as Coder's spend recorder does.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aibridge_graphql.standin.pricing import cost_micros
from aibridge_graphql.standin.records import UserRecord, insert_api_key, insert_users
from aibridge_graphql.standin.seed import ANCHOR, DAY, KEY_LIFETIME, SECOND
from aibridge_graphql.standin.tokens import derived_token

SPEND_SCHEMA_SQL = resources.files("aibridge_graphql.standin").joinpath("spend_schema.sql")
# Every seeded id is a UUIDv5 under this namespace: the same database content every time.
_NAMESPACE = uuid.UUID("6f9d1c64-8a51-4a43-9c1e-2f0b5d7e3a10")
ORG_NAME = "coder"
ORG_ADMIN_ROLE = "organization-admin"
ORG_USER_ADMIN_ROLE = "organization-user-admin"
USER_ADMIN_ROLE = "user-admin"  # a site role (rbac.RoleUserAdmin)
# Budgets were configured well before the seeded traffic.
CONFIGURED_AT = ANCHOR - 90 * DAY
EVERYONE_BUDGET_MICROS = 20_000_000
# (name, display name, member usernames, per-member budget in micro-dollars or None)
GROUPS: tuple[tuple[str, str, tuple[str, ...], int | None], ...] = (
    ("platform", "Platform", ("alice", "bogdan", "chen"), 150_000_000),
    ("data-science", "Data Science", ("dara", "emeka"), 400_000_000),
    ("contractors", "Contractors", ("emeka", "farah"), 25_000_000),
    ("interns", "Interns", ("farah",), None),
)
# username -> (group name, limit): a personal limit replacing the group's.
OVERRIDES = {"dara": ("data-science", 600_000_000)}
ORG_ADMINS = frozenset({"chen"})
# (username, name, site role, organization role, system user, has a token): added to the users
# already there, all organization members (Coder adds its prebuilds user to organizations too).
ROLE_USERS: tuple[tuple[str, str, str, str, bool, bool], ...] = (
    ("ursula", "Ursula Admin", USER_ADMIN_ROLE, "", False, True),
    ("olga", "Olga Org", "", ORG_USER_ADMIN_ROLE, False, True),
    ("prebuilds", "Prebuilds", "", "", True, False),
)


def seeded_id(kind: str, name: str) -> str:
    """The deterministic id of a seeded organization or group."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{name}"))


@dataclass(frozen=True)
class Effective:
    """A user's effective budget: the group spend is attributed to, and its limit."""

    group_id: str | None
    spend_limit_micros: int | None
    limit_source: str | None  # "user_override" or "group"; None without a limit


def user_groups_sql() -> str:
    """(user_id, group_id, org joined at) of every membership, the Everyone groups included."""
    return (
        "SELECT gm.user_id, gm.group_id, om.created_at FROM group_members AS gm "
        "JOIN ai_groups AS g ON g.id = gm.group_id "
        "JOIN organization_members AS om "
        "ON om.organization_id = g.organization_id AND om.user_id = gm.user_id "
        "UNION SELECT om.user_id, om.organization_id, om.created_at FROM organization_members AS om"
    )


def effective_budget(conn: sqlite3.Connection, user_id: str) -> Effective:
    """Coder's resolution ("highest" policy): an override wins, then the highest group budget
    (ties: earliest organization membership, then group id), then the Everyone group of the
    default (or earliest) organization, without a limit."""
    row = conn.execute(
        "SELECT group_id, spend_limit_micros FROM user_ai_budget_overrides WHERE user_id = ?",
        (user_id,),
    ).fetchone()
    if row is not None:
        return Effective(str(row[0]), int(row[1]), "user_override")
    row = conn.execute(
        f"SELECT m.group_id, b.spend_limit_micros FROM ({user_groups_sql()}) AS m "  # noqa: S608
        "JOIN group_ai_budgets AS b ON b.group_id = m.group_id WHERE m.user_id = ? "
        "ORDER BY b.spend_limit_micros DESC, m.created_at ASC, m.group_id ASC LIMIT 1",
        (user_id,),
    ).fetchone()
    if row is not None:
        return Effective(str(row[0]), int(row[1]), "group")
    row = conn.execute(
        "SELECT o.id FROM organization_members AS om JOIN organizations AS o "
        "ON o.id = om.organization_id WHERE om.user_id = ? "
        "ORDER BY o.is_default DESC, om.created_at ASC, o.id ASC LIMIT 1",
        (user_id,),
    ).fetchone()
    return Effective(str(row[0]) if row else None, None, None)


@dataclass(frozen=True)
class OrganizationGroups:
    """An organization's name and its groups as (name, id), the Everyone group first."""

    organization: str
    groups: tuple[tuple[str, str], ...]


def default_organization_groups(conn: sqlite3.Connection) -> OrganizationGroups | None:
    """The default organization and its groups (what `aiGroupSpend` takes); None before
    `prepare_spend` has made one."""
    try:
        org = conn.execute(
            "SELECT id, name FROM organizations ORDER BY is_default DESC, id LIMIT 1"
        ).fetchone()
    except sqlite3.OperationalError:  # no spend tables: never prepared for the AI Gateway era
        return None
    if org is None:
        return None
    rows = conn.execute(
        "SELECT name, id FROM ai_groups WHERE organization_id = ? ORDER BY id != ?, name, id",
        (org[0], org[0]),
    ).fetchall()
    return OrganizationGroups(str(org[1]), tuple((str(name), str(id_)) for name, id_ in rows))


def prepare_spend(path: str | Path) -> None:
    """Apply the spend schema, seed the organization once, and price unpriced token usage."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        widen = _audit_actions_narrow(conn)
        if widen:
            conn.execute("ALTER TABLE audit_logs RENAME TO audit_logs_narrow")
        conn.executescript(SPEND_SCHEMA_SQL.read_text())
        if widen:
            conn.executescript(
                "INSERT INTO audit_logs SELECT * FROM audit_logs_narrow; "
                "DROP TABLE audit_logs_narrow;"
            )
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM organizations)").fetchone()[0]:
            _seed_organization(conn)
        price_token_usages(conn)
        conn.commit()


def _audit_actions_narrow(conn: sqlite3.Connection) -> bool:
    """Whether audit_logs predates the `create` action (a database made before the key
    routes): its CHECK cannot be altered in place, so the table is rebuilt."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'audit_logs'").fetchone()
    return row is not None and "'create'" not in str(row[0])


def _seed_organization(conn: sqlite3.Connection) -> None:
    org_id = seeded_id("organization", ORG_NAME)
    conn.execute(
        "INSERT INTO organizations (id, name, display_name, is_default) VALUES (?, ?, ?, 1)",
        (org_id, ORG_NAME, "Coder"),
    )
    conn.execute(
        "INSERT INTO ai_groups (id, organization_id, name, display_name) VALUES (?, ?, ?, ?)",
        (org_id, org_id, "Everyone", ""),
    )
    org_roles = _seed_role_users(conn)
    users = {
        str(name): str(user_id)
        for user_id, name in conn.execute("SELECT id, username FROM users ORDER BY username")
    }
    for index, (name, user_id) in enumerate(users.items()):
        roles = ORG_ADMIN_ROLE if name in ORG_ADMINS else org_roles.get(name, "")
        conn.execute(
            "INSERT INTO organization_members (organization_id, user_id, roles, created_at) "
            "VALUES (?, ?, ?, ?)",
            (org_id, user_id, roles, CONFIGURED_AT + index * SECOND),
        )
    _budget(conn, org_id, EVERYONE_BUDGET_MICROS)
    for name, display, members, limit in GROUPS:
        group_id = seeded_id("group", name)
        conn.execute(
            "INSERT INTO ai_groups (id, organization_id, name, display_name) VALUES (?, ?, ?, ?)",
            (group_id, org_id, name, display),
        )
        conn.executemany(
            "INSERT INTO group_members (group_id, user_id) VALUES (?, ?)",
            [(group_id, users[m]) for m in members if m in users],
        )
        if limit is not None:
            _budget(conn, group_id, limit)
    for username, (group, limit) in OVERRIDES.items():
        if username in users:
            conn.execute(
                "INSERT INTO user_ai_budget_overrides VALUES (?, ?, ?, ?, ?)",
                (users[username], seeded_id("group", group), limit, CONFIGURED_AT, CONFIGURED_AT),
            )


def _seed_role_users(conn: sqlite3.Connection) -> dict[str, str]:
    """Insert ROLE_USERS (skipping a name or email already taken); their organization roles."""
    org_roles = {}
    for username, name, site_role, org_role, system, has_token in ROLE_USERS:
        email = f"{username}@example.com"
        taken = conn.execute(
            "SELECT 1 FROM users WHERE lower(username) = ? OR lower(email) = ?", (username, email)
        ).fetchone()
        if taken is not None:
            continue
        user_id = seeded_id("user", username)
        insert_users(conn, [UserRecord(user_id, username, email, name, "", "member")])
        if has_token:
            insert_api_key(conn, user_id, derived_token(username), ANCHOR + KEY_LIFETIME)
        if site_role:
            conn.execute("INSERT INTO user_site_roles VALUES (?, ?)", (user_id, site_role))
        if system:
            conn.execute("INSERT INTO system_users VALUES (?)", (user_id,))
        org_roles[username] = org_role
    return org_roles


def _budget(conn: sqlite3.Connection, group_id: str, limit: int) -> None:
    conn.execute(
        "INSERT INTO group_ai_budgets VALUES (?, ?, ?, ?)",
        (group_id, limit, CONFIGURED_AT, CONFIGURED_AT),
    )


# Cost rows written per executemany: the unpriced usages are read as a stream, not a list
# (1,000,000 interceptions have 1.5 million usages).
_PRICE_BATCH = 5000


def price_token_usages(
    conn: sqlite3.Connection, interception_ids: Sequence[str] | None = None
) -> int:
    """Price every token usage without a cost row (only those of `interception_ids` when
    given: appended traffic); how many were priced."""
    only, params = "", tuple(interception_ids or ())
    if interception_ids is not None:
        only = f"AND t.interception_id IN ({','.join('?' * len(params))}) " if params else "AND 0 "
    # The ORDER BY sorts every row before the first comes back, so the inserts below do not
    # change what the cursor reads.
    rows = conn.execute(
        "SELECT t.id, t.interception_id, i.initiator_id, i.provider_name, i.model, "  # noqa: S608
        "t.input_tokens, t.output_tokens, t.cache_read_input_tokens, "
        "t.cache_write_input_tokens, t.created_at FROM token_usages AS t "
        "JOIN interceptions AS i ON i.id = t.interception_id "
        "WHERE NOT EXISTS (SELECT 1 FROM token_usage_costs AS c WHERE c.token_usage_id = t.id) "
        f"{only}ORDER BY t.created_at, t.id",
        params,
    )
    groups: dict[str, str | None] = {}
    priced: list[tuple[str, str, str, str, int, int]] = []
    count = 0
    for usage_id, interception_id, user_id, provider_name, model, i, o, cr, cw, at in rows:
        if user_id not in groups:
            groups[user_id] = effective_budget(conn, user_id).group_id
        group_id = groups[user_id]
        if group_id is None:
            continue  # no organization: Coder records no spend for the user
        cost = cost_micros(
            provider_name,
            model,
            input_tokens=i,
            output_tokens=o,
            cache_read_tokens=cr,
            cache_write_tokens=cw,
            at_micros=at,
        )
        priced.append((usage_id, interception_id, user_id, group_id, cost, at))
        if len(priced) == _PRICE_BATCH:
            count += _insert_costs(conn, priced)
    return count + _insert_costs(conn, priced)


def _insert_costs(
    conn: sqlite3.Connection, priced: list[tuple[str, str, str, str, int, int]]
) -> int:
    """Write and clear a batch of cost rows; how many."""
    conn.executemany("INSERT INTO token_usage_costs VALUES (?, ?, ?, ?, ?, ?)", priced)
    written = len(priced)
    priced.clear()
    return written
