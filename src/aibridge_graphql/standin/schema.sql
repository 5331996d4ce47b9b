-- The stand-in's SQLite schema: Coder's aibridge tables, flattened for SQLite.
-- Times are INTEGER microseconds since the Unix epoch, UTC (Postgres timestamptz precision);
-- UUIDs are lowercase canonical TEXT; JSON columns are TEXT (NULL where Coder's would be NULL).

CREATE TABLE IF NOT EXISTS users (
    id          TEXT PRIMARY KEY,
    username    TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL DEFAULT '',
    avatar_url  TEXT NOT NULL DEFAULT '',
    role        TEXT NOT NULL CHECK (role IN ('owner', 'auditor', 'member'))
);

-- Coder tokens are "<10-char id>-<22-char secret>". The stand-in keeps the secret readable so
-- `standin tokens` can print it: it is a development server, not a credential store.
CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    expires_at  INTEGER NOT NULL
);

-- Configured providers (the sessions era's `provider_name` filter validates against this table;
-- `GET /providers` lists it in the AI Gateway era).
CREATE TABLE IF NOT EXISTS ai_providers (
    name          TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    icon          TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS interceptions (
    id                 TEXT PRIMARY KEY,
    api_key_id         TEXT,
    initiator_id       TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_name      TEXT NOT NULL,
    model              TEXT NOT NULL,
    client             TEXT,
    metadata           TEXT,
    started_at         INTEGER NOT NULL,
    ended_at           INTEGER,
    client_session_id  TEXT,
    thread_parent_id   TEXT,
    thread_root_id     TEXT,
    -- COALESCE(client_session_id, thread_root_id, id): written by the loader.
    session_id         TEXT NOT NULL,
    credential_kind    TEXT NOT NULL DEFAULT 'centralized',
    credential_hint    TEXT NOT NULL DEFAULT '',
    -- AI Gateway era: the agent firewall correlation and the upstream error of the request.
    agent_firewall_session_id       TEXT,
    agent_firewall_sequence_number  INTEGER,
    error_type                      TEXT,
    error_message                   TEXT
);

CREATE TABLE IF NOT EXISTS token_usages (
    id                        TEXT PRIMARY KEY,
    interception_id           TEXT NOT NULL,
    provider_response_id      TEXT NOT NULL,
    input_tokens              INTEGER NOT NULL,
    output_tokens             INTEGER NOT NULL,
    cache_read_input_tokens   INTEGER NOT NULL DEFAULT 0,
    cache_write_input_tokens  INTEGER NOT NULL DEFAULT 0,
    metadata                  TEXT,
    created_at                INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS user_prompts (
    id                    TEXT PRIMARY KEY,
    interception_id       TEXT NOT NULL,
    provider_response_id  TEXT NOT NULL,
    prompt                TEXT NOT NULL,
    metadata              TEXT,
    created_at            INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS tool_usages (
    id                     TEXT PRIMARY KEY,
    interception_id        TEXT NOT NULL,
    provider_response_id   TEXT NOT NULL,
    provider_tool_call_id  TEXT,
    server_url             TEXT,
    tool                   TEXT NOT NULL,
    input                  TEXT NOT NULL,
    injected               INTEGER NOT NULL,
    invocation_error       TEXT,
    metadata               TEXT,
    created_at             INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS model_thoughts (
    interception_id  TEXT NOT NULL,
    content          TEXT NOT NULL,
    metadata         TEXT,
    created_at       INTEGER NOT NULL
);

-- The agent firewall's network call log (Coder's boundary logs). `session_id` is the firewall's
-- session, which interceptions point at; an interception owns the calls logged after its own
-- sequence number and before the next interception's in the same firewall session.
CREATE TABLE IF NOT EXISTS boundary_logs (
    id               TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL,
    sequence_number  INTEGER NOT NULL,
    captured_at      INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    proto            TEXT NOT NULL,
    method           TEXT NOT NULL,
    detail           TEXT NOT NULL,
    allowed          INTEGER NOT NULL,
    matched_rule     TEXT
);

-- session_summaries (one row per session, kept current by triggers) is defined in summaries.py.

-- Indexes. Every list query filters `ended_at IS NOT NULL` (in-flight rows are never served), so
-- the interception indexes are partial on it: smaller, and each one also covers the count.
-- Interceptions list: newest first, alone or narrowed by one equality filter; the trailing
-- (started_at, id) gives the order and the keyset cursor without a sort.
CREATE INDEX IF NOT EXISTS ix_interceptions_started
    ON interceptions (started_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_interceptions_initiator
    ON interceptions (initiator_id, started_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_interceptions_provider
    ON interceptions (provider, started_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_interceptions_provider_name
    ON interceptions (provider_name, started_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_interceptions_model
    ON interceptions (model, started_at, id) WHERE ended_at IS NOT NULL;
-- The `client:` filter compares COALESCE(client, 'Unknown'); the clients list groups the raw
-- column (as Coder's SQL does), hence two indexes.
CREATE INDEX IF NOT EXISTS ix_interceptions_client_label
    ON interceptions (COALESCE(client, 'Unknown'), started_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_interceptions_client
    ON interceptions (client) WHERE ended_at IS NOT NULL;
-- Sessions: GROUP BY (session_id, initiator_id) streams over this index, and the per-session
-- reads (lateral aggregates, threads) seek it; it covers the grouping's aggregates.
CREATE INDEX IF NOT EXISTS ix_interceptions_session
    ON interceptions (session_id, initiator_id, started_at, id, ended_at, thread_root_id)
    WHERE ended_at IS NOT NULL;

-- Child rows by interception, in the created_at order the API returns them.
CREATE INDEX IF NOT EXISTS ix_token_usages_interception
    ON token_usages (interception_id, created_at);
CREATE INDEX IF NOT EXISTS ix_user_prompts_interception
    ON user_prompts (interception_id, created_at);
CREATE INDEX IF NOT EXISTS ix_tool_usages_interception
    ON tool_usages (interception_id, created_at);
CREATE INDEX IF NOT EXISTS ix_model_thoughts_interception
    ON model_thoughts (interception_id, created_at);

-- Network calls: a firewall session's logs in sequence order, and the interceptions marking it.
CREATE INDEX IF NOT EXISTS ix_boundary_logs_session
    ON boundary_logs (session_id, sequence_number);
CREATE INDEX IF NOT EXISTS ix_interceptions_firewall
    ON interceptions (agent_firewall_session_id, agent_firewall_sequence_number)
    WHERE agent_firewall_session_id IS NOT NULL;
