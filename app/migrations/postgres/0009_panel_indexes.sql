-- The connections panel reads only what an application's components use: look-ups by connection
-- (schedules and datasources using it) and by application must not scan whole tables.
CREATE INDEX component_connections_connection ON component_connections (connection_id);
CREATE INDEX datasources_connection ON datasources (connection_id);
