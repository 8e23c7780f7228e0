-- The settings every connection of the catalog gets (catalog.engine). Sections are
-- run by name; `confine` is the sandbox a lake's reader runs in.

-- name: quiet
-- DuckDB's progress bar would print to the terminal.
SET enable_progress_bar = false;

-- name: utc
-- Timestamps come back in UTC whatever the machine's zone.
SET TimeZone = 'UTC';

-- name: defer_binding_probe
-- Whether this DuckDB creates a view without binding it (1.5 and later): see
-- catalog.engine.defers_binding. (A temporary view, dropped at once.)
CREATE OR REPLACE TEMP VIEW _catalog_defer_probe WITH (DEFER_BINDING) AS SELECT 1 AS one;
DROP VIEW _catalog_defer_probe;

-- name: confine_to
-- Read only below the lake's folder ($folders: a one-element list).
SET allowed_directories = $folders;

-- name: confine
-- A lake's reader reads the same compacted files in every query: their footers are
-- parsed once and kept (DuckDB checks that a file is unchanged before it uses a kept
-- footer). At 100k versions the events file has 60 row groups, and parsing its footer
-- again for every view a question reads was a third of `show` and `candidates`.
SET parquet_metadata_cache = true;
-- No extension is loaded or installed, nothing outside the allowed folders is
-- read, and no setting can change from here on.
SET autoinstall_known_extensions = false;
SET autoload_known_extensions = false;
SET enable_external_access = false;
SET lock_configuration = true;
