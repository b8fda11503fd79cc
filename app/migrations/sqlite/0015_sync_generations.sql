-- A sync writes the records it reads page by page, while it asks for the next page (issue 12),
-- instead of holding every record in memory until the last page. Each row now names the run
-- that read it: the datasource's records are those of its latest completed run; the rows of a
-- run still going are not yet its records, and the run's last transaction deletes every other
-- generation. A failed run's rows are deleted when it is marked failed.
-- No foreign key to datasources any more: its check on every row doubled the cost of writing a
-- page on PostgreSQL (`scripts/bench.sh`). Rows are only written by a run of their datasource,
-- and nothing deletes datasources; whatever comes to delete one deletes its records with it.
CREATE TABLE datasource_records_by_run (
    datasource_id BIGINT NOT NULL,
    run_id        BIGINT NOT NULL,
    record_id     TEXT NOT NULL,
    data          TEXT NOT NULL,
    PRIMARY KEY (datasource_id, run_id, record_id)
);
INSERT INTO datasource_records_by_run (datasource_id, run_id, record_id, data)
SELECT r.datasource_id,
       COALESCE((SELECT MAX(s.id) FROM sync_runs s WHERE s.datasource_id = r.datasource_id AND s.status = 'completed'), 0),
       r.record_id, r.data
FROM datasource_records r;
DROP TABLE datasource_records;
ALTER TABLE datasource_records_by_run RENAME TO datasource_records;
