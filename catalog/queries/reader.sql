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
-- a list of file paths.

-- name: create_tails
CREATE TEMP TABLE IF NOT EXISTS _versions_tail AS SELECT * FROM _versions_parquet LIMIT 0;
CREATE TEMP TABLE IF NOT EXISTS _events_tail AS SELECT * FROM _events_parquet LIMIT 0;
CREATE OR REPLACE VIEW _versions_files AS
SELECT * FROM _versions_parquet UNION ALL BY NAME SELECT * FROM _versions_tail;
CREATE OR REPLACE VIEW _events_files AS
SELECT * FROM _events_parquet UNION ALL BY NAME SELECT * FROM _events_tail;

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

-- name: file_columns
-- Every node of each file's Parquet schema, in order: the root's children are the columns.
SELECT file_name, name, num_children, duckdb_type
FROM parquet_schema($files)
ORDER BY file_name, column_id;

-- name: footer
SELECT
    (SELECT num_rows FROM parquet_file_metadata($file)) AS num_rows,
    (SELECT list({'key': key, 'value': value}) FROM parquet_kv_metadata($file)) AS pairs;
