-- Keeping connections working (issue 4).
--
-- refresh_started_at: set and committed before the provider is asked to refresh, cleared in
-- the same transaction that stores its answer. Found set by the next lease holder, it means a
-- refresh died between the provider's answer and the commit: the stored refresh token may have
-- been rotated away, so that holder tries it and stores either new tokens or "needs
-- re-authorization" -- never leaves the account silently stale.
-- refresh_failures: consecutive refreshes that failed because the provider was unreachable.
ALTER TABLE authorized_accounts ADD COLUMN refresh_started_at BIGINT;
ALTER TABLE authorized_accounts ADD COLUMN refresh_failures BIGINT NOT NULL DEFAULT 0;

-- A revoked authorization, so the connection shows "Revoked" (not "Not connected") until it is
-- authorized again. The credentials themselves are gone.
CREATE TABLE revoked_authorizations (
    connection_id   BIGINT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    environment     TEXT NOT NULL,
    subject_user_id BIGINT NOT NULL DEFAULT 0,
    revoked_by      BIGINT,
    revoked_at      BIGINT NOT NULL,
    PRIMARY KEY (connection_id, environment, subject_user_id)
);
