-- A connection's life (issue 13): who disabled it and when (NULL while enabled). Disabled
-- connections refuse calls, components, datasource configuration and syncs with
-- "This connection is disabled by <who>"; enabling keeps their authorizations.
ALTER TABLE connections ADD COLUMN disabled_by BIGINT REFERENCES users(id);
ALTER TABLE connections ADD COLUMN disabled_at BIGINT;

-- Keep-alive (issue 13): when an OAuth2 account's tokens were last refreshed (NULL: not since it
-- was authorized). The keep-alive pass claims an account by moving this forward, so two
-- replicas never refresh the same account for the same day.
ALTER TABLE authorized_accounts ADD COLUMN last_refreshed_at BIGINT;
