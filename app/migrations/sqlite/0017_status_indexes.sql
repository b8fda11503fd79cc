-- The Microservices list filtered by status starts from the few rows that record it instead of
-- reading every connection of the workspace: disabled connections, revoked accounts (accounts
-- needing reauthorization have theirs since migration 0014).
CREATE INDEX connections_disabled ON connections (workspace_id) WHERE enabled = 0;
CREATE INDEX authorized_accounts_revoked ON authorized_accounts (id) WHERE status = 'revoked';
