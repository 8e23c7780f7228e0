-- The settings every connection of the catalog gets (catalog.engine). Sections are
-- run by name; `confine` is the sandbox a lake's reader runs in.

-- name: quiet
-- DuckDB's progress bar would print to the terminal.
SET enable_progress_bar = false;

-- name: utc
-- Timestamps come back in UTC whatever the machine's zone.
SET TimeZone = 'UTC';

-- name: confine_to
-- Read only below the lake's folder ($folders: a one-element list).
SET allowed_directories = $folders;

-- name: confine
-- No extension is loaded or installed, nothing outside the allowed folders is
-- read, and no setting can change from here on.
SET autoinstall_known_extensions = false;
SET autoload_known_extensions = false;
SET enable_external_access = false;
SET lock_configuration = true;
