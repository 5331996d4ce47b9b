-- The AI Gateway era's spend and budget tables (Coder's enterprise AI budgets), kept apart from
-- schema.sql: spend.py applies this file when it prepares a database for the ai-gateway era.
-- Times are INTEGER microseconds since the Unix epoch, UTC, as in schema.sql.

CREATE TABLE IF NOT EXISTS organizations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL DEFAULT '',
    is_default    INTEGER NOT NULL DEFAULT 0
);

-- `roles` is a space-separated list of organization roles ("organization-admin").
CREATE TABLE IF NOT EXISTS organization_members (
    organization_id  TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    roles            TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);

-- The implicit "Everyone" group has id = organization id and no rows in group_members:
-- every organization member belongs to it (Coder's group_members_expanded).
CREATE TABLE IF NOT EXISTS ai_groups (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL,
    name             TEXT NOT NULL,
    display_name     TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS group_members (
    group_id  TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE IF NOT EXISTS group_ai_budgets (
    group_id            TEXT PRIMARY KEY,
    spend_limit_micros  INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS user_ai_budget_overrides (
    user_id             TEXT PRIMARY KEY,
    group_id            TEXT NOT NULL,
    spend_limit_micros  INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

-- One row per token usage: its price and the group its spend was attributed to when it was
-- recorded (Coder increments ai_user_daily_spend per (user, effective group, UTC day)).
CREATE TABLE IF NOT EXISTS token_usage_costs (
    token_usage_id      TEXT PRIMARY KEY,
    interception_id     TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    effective_group_id  TEXT NOT NULL,
    cost_micros         INTEGER NOT NULL,
    created_at          INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_token_usage_costs_spend
    ON token_usage_costs (effective_group_id, user_id, created_at, cost_micros);
CREATE INDEX IF NOT EXISTS ix_token_usage_costs_time
    ON token_usage_costs (created_at);

-- Site roles beyond users.role (Coder's `user-admin`); one row per user and role.
CREATE TABLE IF NOT EXISTS user_site_roles (
    user_id  TEXT NOT NULL,
    role     TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);

-- Coder's users.is_system (the prebuilds user): they cannot sign in and get no budget override.
CREATE TABLE IF NOT EXISTS system_users (
    user_id  TEXT PRIMARY KEY
);

-- The budget and AI Gateway key changes, as Coder's audit log records them (audit_logs): who, what, the diff
-- `{field: {"old": ..., "new": ...}}` of the changed auditable fields.
CREATE TABLE IF NOT EXISTS audit_logs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    time             INTEGER NOT NULL,
    user_id          TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('create', 'write', 'delete')),
    resource_type    TEXT NOT NULL,
    resource_id      TEXT NOT NULL,
    resource_target  TEXT NOT NULL,
    diff             TEXT NOT NULL,
    status_code      INTEGER NOT NULL
);

-- Coder's ai_gateway_keys: secrets of standalone AI Gateway replicas (keys_api.py). The secret
-- itself is never stored: its SHA-256 and its first 11 characters (shown to identify it).
CREATE TABLE IF NOT EXISTS ai_gateway_keys (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    secret_prefix  TEXT NOT NULL CHECK (length(secret_prefix) = 11),
    hashed_secret  BLOB NOT NULL CHECK (length(hashed_secret) > 0),
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER
);
