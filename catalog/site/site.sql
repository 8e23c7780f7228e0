-- The site's bulk reads (catalog.site.build.read_records), one per kind of record,
-- run by name over the stable views through Registry.sql: the same views the CLI
-- and the API read.

-- name: versions
SELECT * FROM model_versions ORDER BY model, version;

-- name: events
SELECT * FROM audit_log ORDER BY "at" DESC, event_id DESC;

-- name: candidates
SELECT * FROM rollback_candidates ORDER BY model, target, rank;

-- name: excluded
SELECT * FROM rollback_excluded ORDER BY model, target, last_deployed_at DESC, version DESC;

-- name: lineage
SELECT *, 1 AS depth FROM lineage ORDER BY child_model, child_version, parent_kind, parent;
