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

-- Configured providers (`provider_name` filter validates against this table).
CREATE TABLE IF NOT EXISTS ai_providers (
    name  TEXT PRIMARY KEY,
    type  TEXT NOT NULL
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
    -- COALESCE(client_session_id, id): written by the loader, as Coder's recorder does.
    session_id         TEXT NOT NULL,
    credential_kind    TEXT NOT NULL DEFAULT 'centralized',
    credential_hint    TEXT NOT NULL DEFAULT ''
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
