-- The Microservices page shows how many connections a workspace has of each type. Counting them
-- scanned every row of the workspace (100 000 rows: tens of milliseconds); the counts are kept
-- here instead, by a trigger on every insert, delete and change of type or workspace.
CREATE TABLE connection_counts (
    workspace_id BIGINT NOT NULL,
    conn_type    TEXT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, conn_type)
);

INSERT INTO connection_counts (workspace_id, conn_type, n)
SELECT workspace_id, conn_type, COUNT(*) FROM connections GROUP BY workspace_id, conn_type;

CREATE FUNCTION connection_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE connection_counts SET n = n - 1 WHERE workspace_id = OLD.workspace_id AND conn_type = OLD.conn_type;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO connection_counts (workspace_id, conn_type, n) VALUES (NEW.workspace_id, NEW.conn_type, 1)
        ON CONFLICT (workspace_id, conn_type) DO UPDATE SET n = connection_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER connection_counts_track AFTER INSERT OR DELETE OR UPDATE OF workspace_id, conn_type ON connections
    FOR EACH ROW EXECUTE FUNCTION connection_counts_track();

-- "Needs attention" counts connections whose authorization stopped working or asks for new
-- consent: found from those few rows, not by walking every connection of the workspace.
CREATE INDEX authorized_accounts_needing_reauthorization ON authorized_accounts (id)
    WHERE status = 'needs_reauthorization';
CREATE INDEX connection_authorizations_account ON connection_authorizations (account_id);
CREATE INDEX connection_authorizations_reconsent ON connection_authorizations (connection_id)
    WHERE reconsent_reason IS NOT NULL;
