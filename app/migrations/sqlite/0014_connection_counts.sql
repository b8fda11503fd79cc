-- The Microservices page shows how many connections a workspace has of each type. Counting them
-- scanned every row of the workspace (100 000 rows: tens of milliseconds); the counts are kept
-- here instead, by triggers on every insert, delete and change of type or workspace.
CREATE TABLE connection_counts (
    workspace_id BIGINT NOT NULL,
    conn_type    TEXT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, conn_type)
);

INSERT INTO connection_counts (workspace_id, conn_type, n)
SELECT workspace_id, conn_type, COUNT(*) FROM connections GROUP BY workspace_id, conn_type;

CREATE TRIGGER connection_counts_insert AFTER INSERT ON connections
BEGIN
    INSERT INTO connection_counts (workspace_id, conn_type, n) VALUES (NEW.workspace_id, NEW.conn_type, 1)
    ON CONFLICT (workspace_id, conn_type) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER connection_counts_delete AFTER DELETE ON connections
BEGIN
    UPDATE connection_counts SET n = n - 1 WHERE workspace_id = OLD.workspace_id AND conn_type = OLD.conn_type;
END;

CREATE TRIGGER connection_counts_update AFTER UPDATE OF workspace_id, conn_type ON connections
BEGIN
    UPDATE connection_counts SET n = n - 1 WHERE workspace_id = OLD.workspace_id AND conn_type = OLD.conn_type;
    INSERT INTO connection_counts (workspace_id, conn_type, n) VALUES (NEW.workspace_id, NEW.conn_type, 1)
    ON CONFLICT (workspace_id, conn_type) DO UPDATE SET n = n + 1;
END;

-- "Needs attention" counts connections whose authorization stopped working or asks for new
-- consent: found from those few rows, not by walking every connection of the workspace.
CREATE INDEX authorized_accounts_needing_reauthorization ON authorized_accounts (id)
    WHERE status = 'needs_reauthorization';
CREATE INDEX connection_authorizations_account ON connection_authorizations (account_id);
CREATE INDEX connection_authorizations_reconsent ON connection_authorizations (connection_id)
    WHERE reconsent_reason IS NOT NULL;
