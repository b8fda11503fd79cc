-- The connections manager's data model (SQLite). Timestamps are Unix milliseconds (BIGINT) so
-- that both backends agree; flags are integers 0/1 (sqlx's Any driver has no SQLite booleans); JSON is TEXT.

CREATE TABLE workspaces (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    data_center   TEXT NOT NULL DEFAULT 'us' CHECK (data_center IN ('us', 'eu', 'in', 'au')),
    created_at    BIGINT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    workspace_id  BIGINT NOT NULL REFERENCES workspaces(id),
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('super_admin', 'admin', 'developer', 'user')),
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE applications (
    id             INTEGER PRIMARY KEY,
    workspace_id   BIGINT NOT NULL REFERENCES workspaces(id),
    name           TEXT NOT NULL,
    link_name      TEXT NOT NULL,
    theme          TEXT NOT NULL DEFAULT 'classic' CHECK (theme IN ('classic', 'modern')),
    installed_from TEXT,
    embed_origins  TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    UNIQUE (workspace_id, link_name)
);

CREATE TABLE environments (
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO environments (name, position) VALUES ('development', 1), ('stage', 2), ('production', 3);

CREATE TABLE components (
    id             INTEGER PRIMARY KEY,
    application_id BIGINT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('form', 'page', 'report', 'integration_report',
                                                 'workflow', 'function', 'blueprint', 'schedule')),
    name           TEXT NOT NULL,
    link_name      TEXT NOT NULL,
    definition     TEXT NOT NULL DEFAULT '{}',
    UNIQUE (application_id, link_name)
);

-- Which plain users may open a component (builders may open every one).
CREATE TABLE component_permissions (
    component_id BIGINT NOT NULL REFERENCES components(id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (component_id, user_id)
);

CREATE TABLE connectors (
    id            INTEGER PRIMARY KEY,
    workspace_id  BIGINT REFERENCES workspaces(id),  -- NULL for built-in connectors
    kind          TEXT NOT NULL CHECK (kind IN ('builtin', 'custom')),
    name          TEXT NOT NULL,
    link_name     TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    auth_type     TEXT NOT NULL CHECK (auth_type IN ('oauth2', 'api_key', 'basic')),
    config        TEXT NOT NULL DEFAULT '{}',        -- endpoints, scopes, parameter placement
    secret_ct     BLOB,                              -- encrypted client secret (custom OAuth2)
    created_by    BIGINT REFERENCES users(id),
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX connectors_link_name ON connectors (COALESCE(workspace_id, 0), link_name);

CREATE TABLE connections (
    id               INTEGER PRIMARY KEY,
    workspace_id     BIGINT NOT NULL REFERENCES workspaces(id),
    connector_id     BIGINT NOT NULL REFERENCES connectors(id),
    display_name     TEXT NOT NULL,
    link_name        TEXT NOT NULL,
    conn_type        TEXT NOT NULL CHECK (conn_type IN ('system', 'admin', 'user')),
    scopes           TEXT NOT NULL DEFAULT '',
    same_for_all_envs INTEGER NOT NULL DEFAULT 1,
    enabled          INTEGER NOT NULL DEFAULT 1,
    deprecated       INTEGER NOT NULL DEFAULT 0,
    installed_from   TEXT,
    created_by       BIGINT REFERENCES users(id),
    created_at       BIGINT NOT NULL,
    UNIQUE (workspace_id, link_name)
);

-- An authorized account: credentials given once, reusable by connections of the same service
-- and configuration (seed 002 "Reuse authorization").
CREATE TABLE authorized_accounts (
    id             INTEGER PRIMARY KEY,
    workspace_id   BIGINT NOT NULL REFERENCES workspaces(id),
    connector_id   BIGINT NOT NULL REFERENCES connectors(id),
    config_key     TEXT NOT NULL,                -- fingerprint of service + configuration
    owner_user_id  BIGINT NOT NULL REFERENCES users(id),
    name           TEXT,                         -- NULL for accounts from before names existed
    credentials_ct BLOB NOT NULL,                -- AES-256-GCM, AAD "authorized_accounts:<id>"
    status         TEXT NOT NULL DEFAULT 'connected'
                   CHECK (status IN ('connected', 'needs_reauthorization', 'revoked')),
    status_reason  TEXT,
    access_expires_at BIGINT,
    authorized_at  BIGINT NOT NULL
);

-- Which account a connection uses, per environment and, for logged-in-user connections, per
-- user (subject_user_id 0 = the shared authorization).
CREATE TABLE connection_authorizations (
    connection_id   BIGINT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    environment     TEXT NOT NULL REFERENCES environments(name),
    subject_user_id BIGINT NOT NULL DEFAULT 0,
    account_id      BIGINT NOT NULL REFERENCES authorized_accounts(id),
    authorized_by   BIGINT NOT NULL REFERENCES users(id),
    authorized_at   BIGINT NOT NULL,
    PRIMARY KEY (connection_id, environment, subject_user_id)
);

CREATE TABLE connection_access (
    connection_id  BIGINT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    application_id BIGINT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    enabled        INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (connection_id, application_id)
);

CREATE TABLE component_connections (
    component_id  BIGINT NOT NULL REFERENCES components(id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    PRIMARY KEY (component_id, connection_id)
);

-- OAuth2 flows waiting for their callback; in the database so any replica can finish them.
CREATE TABLE oauth_pending (
    state          TEXT PRIMARY KEY,
    connection_id  BIGINT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    user_id        BIGINT NOT NULL REFERENCES users(id),
    environments   TEXT NOT NULL,
    account_name   TEXT NOT NULL,
    pkce_verifier_ct BLOB NOT NULL,
    redirect_uri   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT,
    replace_account INTEGER NOT NULL DEFAULT 0,
    -- What happened, for the browser polling the flow: connected, expired, denied, failed.
    outcome        TEXT,
    outcome_detail TEXT
);

-- Single-flight token refresh across replicas: a lease with an owner and an expiry.
CREATE TABLE refresh_leases (
    account_id  BIGINT PRIMARY KEY REFERENCES authorized_accounts(id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE datasources (
    id             INTEGER PRIMARY KEY,
    application_id BIGINT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    connection_id  BIGINT NOT NULL REFERENCES connections(id),
    name           TEXT NOT NULL,
    module         TEXT NOT NULL,
    config_fields  TEXT NOT NULL DEFAULT '[]',
    config_values  TEXT,
    enabled        INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE integration_fields (
    id            INTEGER PRIMARY KEY,
    component_id  BIGINT NOT NULL REFERENCES components(id) ON DELETE CASCADE,
    datasource_id BIGINT NOT NULL REFERENCES datasources(id) ON DELETE CASCADE,
    field_name    TEXT NOT NULL,
    display_field TEXT NOT NULL
);

CREATE TABLE form_records (
    id           INTEGER PRIMARY KEY,
    component_id BIGINT NOT NULL REFERENCES components(id) ON DELETE CASCADE,
    data         TEXT NOT NULL DEFAULT '{}',
    updated_at   BIGINT NOT NULL
);

CREATE TABLE sync_runs (
    id            INTEGER PRIMARY KEY,
    datasource_id BIGINT NOT NULL REFERENCES datasources(id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users(id),
    status        TEXT NOT NULL CHECK (status IN ('queued', 'ongoing', 'completed', 'failed')),
    records       BIGINT NOT NULL DEFAULT 0,
    api_calls     BIGINT NOT NULL DEFAULT 0,
    error         TEXT,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT
);
CREATE INDEX sync_runs_datasource ON sync_runs (datasource_id, created_at);

CREATE TABLE operations (
    id            INTEGER PRIMARY KEY,
    workspace_id  BIGINT,
    at            BIGINT NOT NULL,
    level         TEXT NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    kind          TEXT NOT NULL,
    actor_user_id BIGINT,
    connection_id BIGINT,
    environment   TEXT,
    detail        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX operations_at ON operations (workspace_id, at);

-- Server-wide facts, e.g. the encryption key check value.
CREATE TABLE server_facts (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
