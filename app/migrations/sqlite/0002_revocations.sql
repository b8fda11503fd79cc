-- Tokens whose revocation at the provider (RFC 7009) must be retried: the service answered
-- 503 or could not be reached. The local credentials are already gone; only this copy of the
-- token, encrypted, waits here until the provider confirms.
CREATE TABLE pending_revocations (
    id              INTEGER PRIMARY KEY,
    connector_id    BIGINT NOT NULL REFERENCES connectors(id),
    workspace_id    BIGINT NOT NULL,
    token_ct        BLOB NOT NULL,
    token_type_hint TEXT NOT NULL CHECK (token_type_hint IN ('refresh_token', 'access_token')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT
);
CREATE INDEX pending_revocations_due ON pending_revocations (next_attempt_at);
