-- Embedding without a second sign-in and the /v1 API (issue 14).

-- End users a host product brings through connect sessions, known by the host's own id (unique
-- within the workspace). They have no password here (the hash '!' never verifies).
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_external_id ON users (workspace_id, external_id) WHERE external_id IS NOT NULL;

-- Workspace API keys: only the SHA-256 of the secret is kept; `prefix` (the secret's first
-- characters) identifies a key in lists and logs. `scopes` is a space-separated closed set.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_by   BIGINT NOT NULL REFERENCES users(id),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    revoked_by   BIGINT REFERENCES users(id)
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, created_at);

-- Single-use, short-lived tokens a host's backend asks for one end user; the embedded panel
-- exchanges one for a session of that user. Only the token's SHA-256 is kept.
CREATE TABLE connect_sessions (
    id             INTEGER PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE,
    workspace_id   BIGINT NOT NULL REFERENCES workspaces(id),
    api_key_id     BIGINT NOT NULL REFERENCES api_keys(id),
    application_id BIGINT NOT NULL REFERENCES applications(id),
    user_id        BIGINT NOT NULL REFERENCES users(id),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX connect_sessions_expiry ON connect_sessions (expires_at);

-- Idempotency-Key on /v1 writes: the first answer is kept (encrypted: it may hold a token)
-- and replayed to retries with the same key and body for a day. status 0 = still running.
CREATE TABLE api_idempotency (
    id           INTEGER PRIMARY KEY,
    api_key_id   BIGINT NOT NULL REFERENCES api_keys(id),
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL DEFAULT 0,
    answer_ct    BLOB,
    created_at   BIGINT NOT NULL,
    UNIQUE (api_key_id, idem_key)
);
CREATE INDEX api_idempotency_created ON api_idempotency (created_at);

-- Per-key request counts per one-minute window, shared by every replica.
CREATE TABLE api_rate_windows (
    api_key_id   BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    requests     BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, window_start)
);
