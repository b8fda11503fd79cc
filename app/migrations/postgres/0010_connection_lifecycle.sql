-- A connection's life (issue 13): who disabled it and when (NULL while enabled). Disabled
-- connections refuse calls, components, datasource configuration and syncs with
-- "This connection is disabled by <who>"; enabling keeps their authorizations.
ALTER TABLE connections ADD COLUMN disabled_by BIGINT REFERENCES users(id);
ALTER TABLE connections ADD COLUMN disabled_at BIGINT;
