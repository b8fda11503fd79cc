-- A sync writes the records it reads page by page, while it asks for the next page (issue 12),
-- instead of holding every record in memory until the last page. Each row now names the run
-- that read it: the datasource's records are those of its latest completed run; the rows of a
-- run still going are not yet its records, and the run's last transaction deletes every other
-- generation. A failed run's rows are deleted when it is marked failed.
-- No foreign key to datasources any more: its check on every row doubled the cost of writing a
-- page on PostgreSQL (`scripts/bench.sh`). Rows are only written by a run of their datasource,
-- and nothing deletes datasources; whatever comes to delete one deletes its records with it.
ALTER TABLE datasource_records ADD COLUMN run_id BIGINT NOT NULL DEFAULT 0;
UPDATE datasource_records r
SET run_id = COALESCE((SELECT MAX(s.id) FROM sync_runs s WHERE s.datasource_id = r.datasource_id AND s.status = 'completed'), 0);
ALTER TABLE datasource_records ALTER COLUMN run_id DROP DEFAULT;
ALTER TABLE datasource_records DROP CONSTRAINT datasource_records_pkey;
ALTER TABLE datasource_records DROP CONSTRAINT datasource_records_datasource_id_fkey;
ALTER TABLE datasource_records ADD PRIMARY KEY (datasource_id, run_id, record_id);
