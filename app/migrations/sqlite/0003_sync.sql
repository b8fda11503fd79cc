-- Integration-fields sync (seed 000 §8). Runs are coordinated through the database so that
-- every replica honours the same rules:
--   * one active (queued or ongoing) run per datasource: a partial unique index;
--   * at most N runs executing in the deployment: N rows in sync_slots, each leased by one run;
--   * a run whose process died stops heartbeating and is marked failed by any replica.
ALTER TABLE sync_runs ADD COLUMN environment TEXT NOT NULL DEFAULT 'production';
ALTER TABLE sync_runs ADD COLUMN owner TEXT;
ALTER TABLE sync_runs ADD COLUMN heartbeat_at BIGINT;
CREATE UNIQUE INDEX sync_runs_one_active ON sync_runs (datasource_id) WHERE status IN ('queued', 'ongoing');
CREATE INDEX sync_runs_queue ON sync_runs (status, id);
CREATE INDEX sync_runs_user ON sync_runs (datasource_id, user_id, created_at);

CREATE TABLE sync_slots (
    slot       INTEGER PRIMARY KEY,
    owner      TEXT,
    run_id     BIGINT,
    expires_at BIGINT NOT NULL DEFAULT 0
);

-- The service's records as of the last completed sync (what integration-field lookups offer).
CREATE TABLE datasource_records (
    datasource_id BIGINT NOT NULL REFERENCES datasources(id) ON DELETE CASCADE,
    record_id     TEXT NOT NULL,
    data          TEXT NOT NULL,
    PRIMARY KEY (datasource_id, record_id)
);
CREATE INDEX form_records_component ON form_records (component_id);
