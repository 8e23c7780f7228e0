-- How `catalog copy` checks a copy record by record (catalog.copying). $source and
-- $copy are the current files of one table in the source lake and in the copy;
-- {key} and {columns} are filled in from the schema (identifiers quoted by
-- catalog.engine). Each file list includes the table's schema anchor, so that
-- union_by_name gives every current column even when older files lack one.

-- name: records
-- How many rows each side holds.
SELECT
    (SELECT count(*) FROM read_parquet($source, union_by_name = true)) AS source_rows,
    (SELECT count(*) FROM read_parquet($copy, union_by_name = true)) AS copy_rows;

-- name: differences
-- Every key whose rows differ between the two sides: a row missing, one too many,
-- or one whose content hash (every column) differs. Rows are compared as a
-- multiset per key, so a record the source holds twice must be there twice.
WITH src AS (
    SELECT {key}, list_sort(list(hash({columns}))) AS hashes, count(*) AS n
    FROM read_parquet($source, union_by_name = true)
    GROUP BY ALL
), dst AS (
    SELECT {key}, list_sort(list(hash({columns}))) AS hashes, count(*) AS n
    FROM read_parquet($copy, union_by_name = true)
    GROUP BY ALL
)
SELECT {key}, coalesce(src.n, 0) AS source_rows, coalesce(dst.n, 0) AS copy_rows
FROM src FULL OUTER JOIN dst USING ({key})
WHERE src.hashes IS DISTINCT FROM dst.hashes
ORDER BY ALL
LIMIT 5;
