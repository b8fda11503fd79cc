-- Searching the Microservices list read every connection of the workspace (`LIKE '%…%'`: 160 ms
-- with 100 000 of them). A trigram index over the name and the link name finds the few that
-- contain what was typed (three characters or more; shorter searches still scan). It is a
-- contentless FTS5 table (the rows stay in `connections`; it holds only the index, by
-- connection id), kept in step by the triggers below.
CREATE VIRTUAL TABLE connection_search USING fts5(
    display_name, link_name,
    content = '', contentless_delete = 1,
    tokenize = 'trigram'
);

INSERT INTO connection_search (rowid, display_name, link_name) SELECT id, display_name, link_name FROM connections;

CREATE TRIGGER connection_search_insert AFTER INSERT ON connections
BEGIN
    INSERT INTO connection_search (rowid, display_name, link_name) VALUES (NEW.id, NEW.display_name, NEW.link_name);
END;

CREATE TRIGGER connection_search_delete AFTER DELETE ON connections
BEGIN
    DELETE FROM connection_search WHERE rowid = OLD.id;
END;

CREATE TRIGGER connection_search_update AFTER UPDATE OF display_name, link_name ON connections
BEGIN
    DELETE FROM connection_search WHERE rowid = OLD.id;
    INSERT INTO connection_search (rowid, display_name, link_name) VALUES (NEW.id, NEW.display_name, NEW.link_name);
END;

-- The connections of one connector (listed when a custom connector is edited).
CREATE INDEX connections_connector ON connections (connector_id);
