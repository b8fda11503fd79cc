-- Durable revocation (issue 10): a pending revocation is written in the same transaction that
-- removes the credentials, so a crash cannot lose it; retries stop after a bounded time.
-- queued_at: when the row was written (NULL for rows queued before this migration: the
-- retry pass treats them as queued at their next attempt).
-- connection_id: the connection the tokens belonged to, for the Operations entry when the
-- provider could not be told (no foreign key: the connection may be deleted meanwhile).
ALTER TABLE pending_revocations ADD COLUMN queued_at BIGINT;
ALTER TABLE pending_revocations ADD COLUMN connection_id BIGINT;
