-- Named queries used by the API, the CLI and the site. Each section starts with
-- `-- name: <name>`; parameters are bound by name ($model, $version, $target).

-- name: model_exists
SELECT count(*) AS n FROM versions WHERE model = $model;

-- name: max_version
SELECT coalesce(max(version), 0) AS n FROM versions WHERE model = $model;

-- name: version
SELECT * FROM model_versions WHERE model = $model AND version = $version;

-- name: model_versions
SELECT * FROM model_versions WHERE model = $model ORDER BY version;

-- name: models
-- One row per model ($model, or every model when it is NULL). A model's owner,
-- description and tags are those of its latest version that has one (for tags: the
-- latest version with at least one tag, its whole map), so a newer version
-- registered without them does not blank the model. show, list and the site all
-- read them from here.
SELECT
    mv.model,
    arg_max(mv.owner, mv.version) FILTER (WHERE mv.owner IS NOT NULL) AS owner,
    arg_max(mv.description, mv.version) FILTER (WHERE mv.description IS NOT NULL) AS description,
    arg_max(mv.tags, mv.version) FILTER (WHERE cardinality(mv.tags) > 0) AS tags,
    count(*) AS versions,
    max(mv.version) AS latest_version,
    max(mv.version) FILTER (WHERE mv.state = 'approved') AS latest_approved,
    max(mv.created_at) AS updated_at
FROM model_versions AS mv
WHERE $model IS NULL OR mv.model = $model
GROUP BY mv.model
ORDER BY mv.model;

-- name: counts
-- What the README, `catalog demo` and the site count: models, versions (one per
-- registration) and decisions (every lifecycle event: approve, reject, deprecate,
-- deploy, rollback, redact...; a registration is not a decision).
SELECT
    (SELECT count(DISTINCT model) FROM versions) AS models,
    (SELECT count(*) FROM versions) AS versions,
    (SELECT count(*) FROM events) AS decisions;

-- name: deployments
SELECT d.model, d.target, d.version, d.since, d.by, d.how, d.note, v.artifact_uri
FROM deployments AS d JOIN versions AS v USING (model, version)
ORDER BY d.model, d.target;

-- name: model_deployments
SELECT d.model, d.target, d.version, d.since, d.by, d.how, d.note, v.artifact_uri
FROM deployments AS d JOIN versions AS v USING (model, version)
WHERE d.model = $model
ORDER BY d.target;

-- name: deployment
SELECT version FROM deployments WHERE model = $model AND target = $target;

-- name: candidates
SELECT model, target, version, rank, last_deployed_at, artifact_uri
FROM rollback_candidates
WHERE model = $model AND target = $target
ORDER BY rank;

-- name: rollback_options
-- Candidates (rank set) and the versions excluded (reason set), read in one statement
-- so that the two lists describe the same moment.
SELECT model, target, version, rank, last_deployed_at, artifact_uri,
       NULL AS reason, NULL AS detail, NULL::TIMESTAMPTZ AS decided_at, NULL AS decided_by,
       NULL AS note, NULL::BIGINT AS rolled_back_to
FROM rollback_candidates
WHERE model = $model AND target = $target
UNION ALL
SELECT model, target, version, NULL, last_deployed_at, artifact_uri,
       reason, detail, decided_at, decided_by, note, rolled_back_to
FROM rollback_excluded
WHERE model = $model AND target = $target
ORDER BY rank NULLS LAST, last_deployed_at DESC, version DESC;

-- name: resolve_model
SELECT 'target' AS kind, d.target AS key, v.artifact_uri
FROM deployments AS d JOIN versions AS v USING (model, version)
WHERE d.model = $model
UNION ALL
SELECT 'latest', 'latest', artifact_uri FROM latest_approved WHERE model = $model
UNION ALL
SELECT 'pin', CAST(version AS VARCHAR), artifact_uri FROM versions WHERE model = $model;

-- name: resolve_all
-- resolve_model for every model at once, with its model: what `catalog compact` and
-- `catalog doctor` write and check the resolve documents from (catalog.resolving).
SELECT d.model, 'target' AS kind, d.target AS key, v.artifact_uri
FROM deployments AS d JOIN versions AS v USING (model, version)
UNION ALL
SELECT model, 'latest', 'latest', artifact_uri FROM latest_approved
UNION ALL
SELECT model, 'pin', CAST(version AS VARCHAR), artifact_uri FROM versions;

-- name: ancestors
-- The recursion walks a narrow, materialised list of model edges (one scan of
-- versions' parents), not the whole lineage view once per level.
WITH RECURSIVE edges AS MATERIALIZED (
    SELECT child_model, child_version, parent_model, parent_version FROM lineage WHERE parent_kind = 'model'
), up(model, version, depth) AS (
    SELECT $model::VARCHAR, $version::BIGINT, 0
    UNION
    SELECT e.parent_model, e.parent_version, up.depth + 1
    FROM edges AS e JOIN up ON e.child_model = up.model AND e.child_version = up.version
)
SELECT l.child_model, l.child_version, l.parent_kind, l.parent, l.parent_model,
       l.parent_version, l.relation, min(up.depth) + 1 AS depth
FROM lineage AS l JOIN up ON l.child_model = up.model AND l.child_version = up.version
GROUP BY ALL
ORDER BY depth, l.child_model, l.child_version, l.parent_kind, l.parent;

-- name: descendants
WITH RECURSIVE edges AS MATERIALIZED (
    SELECT child_model, child_version, parent_kind, parent, parent_model, parent_version, relation
    FROM lineage WHERE parent_kind = 'model'
), down(model, version, depth) AS (
    SELECT $model::VARCHAR, $version::BIGINT, 0
    UNION
    SELECT e.child_model, e.child_version, down.depth + 1
    FROM edges AS e JOIN down ON e.parent_model = down.model AND e.parent_version = down.version
)
SELECT e.child_model, e.child_version, e.parent_kind, e.parent, e.parent_model,
       e.parent_version, e.relation, min(down.depth) + 1 AS depth
FROM edges AS e JOIN down ON e.parent_model = down.model AND e.parent_version = down.version
GROUP BY ALL
ORDER BY depth, e.child_model, e.child_version;


-- name: approvers
SELECT actor FROM events
WHERE model = $model AND version = $version AND kind = 'approve'
ORDER BY "at", event_id;

-- name: deployed_targets
SELECT DISTINCT target FROM events
WHERE model = $model AND version = $version AND kind IN ('deploy', 'rollback')
ORDER BY target;

-- name: champion
SELECT mv.* FROM model_versions AS mv
WHERE mv.model = $model AND mv.state = 'approved' AND mv.version <> $version
ORDER BY mv.version DESC
LIMIT 1;

-- name: audit
SELECT event_id, "at", actor, kind, model, version, state, target, note, evidence
FROM audit_log
WHERE ($model IS NULL OR model = $model)
  AND ($target IS NULL OR target = $target)
  AND ($actor IS NULL OR actor = $actor)
ORDER BY "at", event_id;

-- name: files_with_versions
SELECT DISTINCT filename FROM _versions_files
WHERE model = $model AND ($version IS NULL OR version = $version)
ORDER BY filename;

-- name: files_with_events
SELECT DISTINCT filename FROM _events_files
WHERE model = $model AND ($version IS NULL OR version = $version)
ORDER BY filename;

-- name: existing_versions
SELECT model, version FROM versions WHERE list_contains($models, model);
