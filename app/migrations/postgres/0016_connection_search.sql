-- Searching the Microservices list read every connection of the workspace (`LIKE '%…%'`: 260 ms
-- with 100 000 of them). Trigram indexes (`pg_trgm`, shipped with PostgreSQL) over the name and
-- the link name find the few that contain what was typed. Where the extension cannot be created
-- (a managed database that does not offer it), the search keeps working, by a scan.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available (%): searching connections reads every row', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX connections_display_name_trgm ON connections USING gin (LOWER(display_name) gin_trgm_ops);
        CREATE INDEX connections_link_name_trgm ON connections USING gin (LOWER(link_name) gin_trgm_ops);
    END IF;
END
$$;

-- The connections of one connector (listed when a custom connector is edited).
CREATE INDEX connections_connector ON connections (connector_id);
