-- The catalog's own reader (catalog.queries.Reader) runs this after views.sql.
--
-- Writers append one small Parquet file per record, and DuckDB pays a fixed cost
-- for every file a query opens (~0.2 ms): a hundred of them would dominate every
-- query. The reader therefore reads each small file once, into a temporary table
-- per table (`_<table>_tail`, rows tagged with their file name), and points the
-- `catalog_<table>_files` variables at the other files only (compacted files and
-- the schema anchor). The views read both.
--
-- Statements are separated by `-- name: <name>` lines and run by name; $files is
-- a list of file paths. (The footers and schemas of files are read by the lake
-- itself: catalog/lake/lake.sql.)

-- name: create_tails
-- (With every current column, whatever the files listed have: see _versions_columns.)
CREATE TEMP TABLE IF NOT EXISTS _versions_tail AS SELECT * FROM _versions_columns;
CREATE TEMP TABLE IF NOT EXISTS _events_tail AS SELECT * FROM _events_columns;
CREATE OR REPLACE VIEW _versions_files AS
SELECT * FROM _versions_parquet UNION ALL BY NAME SELECT * FROM _versions_tail;
CREATE OR REPLACE VIEW _events_files AS
SELECT * FROM _events_parquet UNION ALL BY NAME SELECT * FROM _events_tail;
CREATE TEMP TABLE IF NOT EXISTS _structure_held AS
SELECT model, version, kind, "at", event_id, actor, renamed_from, evidence FROM _events_columns;
CREATE OR REPLACE VIEW _structure AS SELECT * FROM _structure_held;

-- name: hold_structure
-- The renames and deletes (views.sql, _structure), read once per state of the lake's
-- files rather than by every view of every query.
-- (With one create, tag and describe event each, if any: whether the lake has them.)
CREATE OR REPLACE TEMP TABLE _structure_held AS
SELECT model, version, kind, "at", event_id, actor, renamed_from, evidence
FROM _events_current
WHERE kind IN ('rename', 'delete', 'create', 'tag', 'describe')
QUALIFY kind IN ('rename', 'delete') OR row_number() OVER (PARTITION BY kind) = 1;

-- name: structure_kinds
SELECT coalesce(bool_or(kind = 'rename'), false) AS renames, coalesce(bool_or(kind = 'delete'), false) AS deletes,
       coalesce(bool_or(kind IN ('create', 'tag', 'describe')), false) AS edits
FROM _structure_held;

-- name: plain_names
-- While no model was renamed (the usual case) the views need not map names: a filter
-- on one model then reaches the files (and the scan is not made twice).
CREATE OR REPLACE VIEW _versions_named AS SELECT * FROM _versions_asof;
CREATE OR REPLACE VIEW events AS SELECT * FROM _events_asof;

-- name: plain_deletes
-- While nothing was deleted, versions are every version.
CREATE OR REPLACE VIEW versions AS SELECT * FROM _versions_named;

-- name: plain_edits
-- While no create, tag or describe event was recorded, registrations say it all.
CREATE OR REPLACE VIEW _version_edits AS
SELECT NULL::VARCHAR AS model, NULL::BIGINT AS version, NULL::BOOLEAN AS described, NULL::VARCHAR AS description,
       NULL::BOOLEAN AS tagged, NULL::MAP(VARCHAR, VARCHAR) AS tags_set, NULL::VARCHAR[] AS tags_deleted
WHERE false;
CREATE OR REPLACE VIEW _model_edits AS
SELECT NULL::VARCHAR AS model, NULL::TIMESTAMPTZ AS created_at, NULL::BOOLEAN AS described, NULL::VARCHAR AS description,
       NULL::BOOLEAN AS tagged, NULL::MAP(VARCHAR, VARCHAR) AS tags, NULL::TIMESTAMPTZ AS updated_at
WHERE false;

-- name: versions_tail_add
INSERT INTO _versions_tail BY NAME
SELECT * FROM read_parquet($files, hive_partitioning = false, union_by_name = true, filename = true);

-- name: events_tail_add
INSERT INTO _events_tail BY NAME
SELECT * FROM read_parquet($files, hive_partitioning = false, union_by_name = true, filename = true);

-- name: versions_tail_drop
DELETE FROM _versions_tail WHERE list_contains($files, filename);

-- name: events_tail_drop
DELETE FROM _events_tail WHERE list_contains($files, filename);

-- name: set_versions_files
-- The files the views read (besides the tails): the exact list Lake.current_files gives.
SET VARIABLE catalog_versions_files = $files::VARCHAR[];

-- name: set_events_files
SET VARIABLE catalog_events_files = $files::VARCHAR[];

-- name: set_versions_checked
-- The compacted files whose rows compaction checked (catalog.lake.footers.ROWS_CHECKED).
SET VARIABLE catalog_versions_checked = $files::VARCHAR[];

-- name: set_events_checked
SET VARIABLE catalog_events_checked = $files::VARCHAR[];

-- name: set_as_of
SET VARIABLE catalog_as_of = $moment::TIMESTAMPTZ;

-- name: reset_as_of
RESET VARIABLE catalog_as_of;

-- Second copies of a record. A record sits in one file; a second row with its key
-- (a file copied or forged into the lake) is read once when it is an identical
-- copy, and refused when it differs (catalog.queries.Reader._check_copies). These
-- find the keys held more than once, with each copy's file and a hash of its
-- content: over one model ($model), or over the whole table. Only rows the views
-- read count ({<table>_sound}: filled in by the reader, see catalog.queries.row_rules).

-- name: versions_repeated_of
SELECT model || ':' || version AS key FROM _versions_files
WHERE model = $model AND {versions_sound}
GROUP BY model, version HAVING count(*) > 1;

-- name: versions_repeated_all
-- (Over the whole table the keys are grouped by their hash, a third cheaper than by
-- text; a collision only brings two keys to the next step, which groups by key.)
SELECT hash(model, version) AS key FROM _versions_files
WHERE {versions_sound}
GROUP BY ALL HAVING count(*) > 1;

-- name: versions_copies
-- The copies of the keys found above ($keys, or $hashes), with each one's file and content hash.
SELECT model || ':' || version AS key, model, version,
       list(filename ORDER BY filename) AS files, list(hash(*COLUMNS(* EXCLUDE (filename))) ORDER BY filename) AS contents
FROM _versions_files
WHERE (list_contains($keys, model || ':' || version) OR list_contains($hashes, hash(model, version))) AND {versions_sound}
GROUP BY model, version HAVING count(*) > 1;

-- name: events_repeated_of
SELECT event_id AS key FROM _events_files
WHERE model = $model AND {events_sound}
GROUP BY event_id HAVING count(*) > 1;

-- name: events_repeated_all
SELECT hash(event_id) AS key FROM _events_files
WHERE {events_sound}
GROUP BY ALL HAVING count(*) > 1;

-- name: events_copies
SELECT event_id AS key, any_value(model) AS model, NULL::BIGINT AS version,
       list(filename ORDER BY filename) AS files, list(hash(*COLUMNS(* EXCLUDE (filename))) ORDER BY filename) AS contents
FROM _events_files
WHERE (list_contains($keys, event_id) OR list_contains($hashes, hash(event_id))) AND {events_sound}
GROUP BY event_id HAVING count(*) > 1;

-- name: create_skips
-- The later identical copies of a record (its file and key), which the views leave out.
CREATE TEMP TABLE IF NOT EXISTS _versions_skip (filename VARCHAR, model VARCHAR, version BIGINT);
CREATE TEMP TABLE IF NOT EXISTS _events_skip (filename VARCHAR, event_id VARCHAR);

-- name: clear_skips
DELETE FROM _versions_skip;
DELETE FROM _events_skip;
CREATE OR REPLACE VIEW _versions_files AS
SELECT * FROM _versions_parquet UNION ALL BY NAME SELECT * FROM _versions_tail;
CREATE OR REPLACE VIEW _events_files AS
SELECT * FROM _events_parquet UNION ALL BY NAME SELECT * FROM _events_tail;

-- name: versions_skip_add
INSERT INTO _versions_skip SELECT unnest($files), $model, $version;

-- name: events_skip_add
INSERT INTO _events_skip SELECT unnest($files), $key;

-- name: skip_copies
-- Only once a copy is found: until then the views pay nothing for it.
CREATE OR REPLACE VIEW _versions_files AS
SELECT * FROM (SELECT * FROM _versions_parquet UNION ALL BY NAME SELECT * FROM _versions_tail) AS f
WHERE NOT EXISTS (
    SELECT 1 FROM _versions_skip AS s WHERE s.filename = f.filename AND s.model = f.model AND s.version = f.version
);
CREATE OR REPLACE VIEW _events_files AS
SELECT * FROM (SELECT * FROM _events_parquet UNION ALL BY NAME SELECT * FROM _events_tail) AS f
WHERE NOT EXISTS (SELECT 1 FROM _events_skip AS s WHERE s.filename = f.filename AND s.event_id = f.event_id);
