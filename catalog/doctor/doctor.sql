-- What `catalog doctor` reads of the rows (catalog.doctor.rows runs these by name).
--
-- The doctor reads the files it judged sound, as a list ($files, absolute paths),
-- into one temporary table per table, each row tagged with its file name. The
-- readers' row rules come from catalog.queries (row_rules): {row_problems} is why
-- a row breaks them ('' when it keeps them), {sound_rows} is true for the rows
-- every reader reads. $current lists the files a reader lists now.

-- name: load_versions
CREATE TEMP TABLE versions AS
SELECT * FROM read_parquet($files, union_by_name = true, filename = true);

-- name: load_events
CREATE TEMP TABLE events AS
SELECT * FROM read_parquet($files, union_by_name = true, filename = true);

-- name: versions_rows
SELECT model, version, filename, {row_problems} AS why FROM versions;

-- name: events_rows
SELECT DISTINCT ON (event_id) event_id, model, version, kind, filename, {row_problems} AS why FROM events;

-- name: versions_copies
-- Records held by more than one current file: each copy's file, content hash and author.
WITH cur AS (SELECT * FROM versions WHERE list_contains($current, filename) AND {sound_rows}),
dup AS (SELECT model, version FROM cur GROUP BY ALL HAVING count(*) > 1)
SELECT model, version,
       list(filename ORDER BY filename) AS files,
       list(hash(*COLUMNS(* EXCLUDE (filename))) ORDER BY filename) AS contents,
       list(created_by ORDER BY filename) AS authors
FROM cur SEMI JOIN dup USING (model, version) GROUP BY ALL ORDER BY ALL;

-- name: events_copies
WITH cur AS (SELECT * FROM events WHERE list_contains($current, filename) AND {sound_rows}),
dup AS (SELECT event_id FROM cur GROUP BY ALL HAVING count(*) > 1)
SELECT event_id,
       list(filename ORDER BY filename) AS files,
       list(hash(*COLUMNS(* EXCLUDE (filename))) ORDER BY filename) AS contents,
       list(actor ORDER BY filename) AS authors
FROM cur SEMI JOIN dup USING (event_id) GROUP BY ALL ORDER BY ALL;

-- name: versions_per_file
SELECT filename, count(*) FROM versions WHERE list_contains($current, filename) GROUP BY ALL;

-- name: events_per_file
SELECT filename, count(*) FROM events WHERE list_contains($current, filename) GROUP BY ALL;

-- name: artifacts
-- Every version's artifact, once per (model, version), read straight from the version files.
SELECT DISTINCT ON (model, version) model, version, artifact_uri, artifact_sha256, artifact_bytes
FROM read_parquet($files, union_by_name = true)
WHERE model IS NOT NULL ORDER BY model, version;
