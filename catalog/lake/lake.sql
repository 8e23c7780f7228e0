-- The lake's own reads of its files (catalog.lake), run by name through the one
-- DuckDB session a lake and its reader share (catalog.engine.Session). $files is
-- a list of file paths, $file one path. {columns}, {order} and {sound} are filled
-- in from the schema's declarations (identifiers quoted by catalog.engine) and
-- the row rules (catalog.lake.rules).

-- name: footer
SELECT
    (SELECT num_rows FROM parquet_file_metadata($file)) AS num_rows,
    (SELECT list({'key': key, 'value': value}) FROM parquet_kv_metadata($file)) AS pairs;

-- name: file_columns
-- Every node of each file's Parquet schema, in order: the root's children are the columns.
SELECT file_name, name, num_children, duckdb_type
FROM parquet_schema($files)
ORDER BY file_name, column_id;

-- name: merge
-- Compaction's input, in the order it is written: each row's content hash and file
-- come along, so that copies of a record that differ are caught where they meet
-- (next to each other in the sort), and whether the row keeps the readers' rules.
SELECT {columns}, hash({columns}) AS _content, filename AS _file, ({sound}) AS _sound
FROM read_parquet($files, union_by_name = $union, filename = true)
ORDER BY {order};
