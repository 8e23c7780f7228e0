-- Named queries used by the API, the CLI and the site. Each section starts with
-- `-- name: <name>`; parameters are bound by name ($model, $version, $target).

-- name: model_exists
-- Whether $model has a version (not deleted); see model_created for a model without one.
SELECT count(*) AS n FROM (SELECT 1 FROM versions WHERE model = $model LIMIT 1);

-- name: model_created
-- Whether $model was created (create) since it was last deleted as a whole.
SELECT count(*) AS n FROM _model_edits WHERE model = $model AND created_at IS NOT NULL;

-- name: max_version
-- The highest version ever recorded under $model's name now (deleted ones and those
-- written under a name it had before included): numbers are never given twice.
SELECT coalesce(max(version), 0) AS n FROM _versions_named WHERE model = $model;

-- name: name_status
-- What the name $model stands for now: renamed_to (the name its model goes by since a
-- rename, null when it was not renamed away), used (records were written under it or
-- under a name it was renamed from), deleted_at/deleted_by (its latest whole-model
-- delete) and live (see model_exists).
SELECT
    (SELECT model FROM _renamed WHERE old = $model) AS renamed_to,
    (EXISTS (SELECT 1 FROM _versions_named WHERE model = $model)
     OR EXISTS (SELECT 1 FROM events WHERE model = $model)) AS used,
    (SELECT max("at") FROM _deleted WHERE model = $model AND version IS NULL) AS deleted_at,
    (SELECT arg_max(actor, "at") FROM _deleted WHERE model = $model AND version IS NULL) AS deleted_by,
    (EXISTS (SELECT 1 FROM versions WHERE model = $model)
     OR EXISTS (SELECT 1 FROM _model_edits WHERE model = $model AND created_at IS NOT NULL)) AS live;

-- name: renamed_names
-- Which of $models were renamed away, and the name each model goes by now.
SELECT old, model FROM _renamed WHERE list_contains($models, old) ORDER BY old;

-- name: stored_names
-- The names $model's records are stored under: its own and every name it was renamed from.
SELECT $model::VARCHAR AS name
UNION
SELECT old FROM _renamed WHERE model = $model;

-- name: latest_decision
-- The time of $model's latest event (under any name it had): what an imported decision must follow.
SELECT max("at") AS "at" FROM events WHERE model = $model;

-- name: deleted_version
-- Whether version $version of $model was deleted (by a delete of it or of the whole model).
SELECT count(*) AS n FROM _deleted
WHERE model = $model AND (version = $version OR (version IS NULL AND $version <= through));

-- name: origins
-- The origin ids recorded from one source of one system, in versions and events alike
-- (deleted and renamed ones included): what an import has brought across already.
SELECT DISTINCT origin['id'] AS id FROM _versions_current
WHERE origin['system'] = $system AND origin['source'] = $source AND origin['id'] IS NOT NULL
UNION
SELECT DISTINCT origin['id'] FROM _events_current
WHERE origin['system'] = $system AND origin['source'] = $source AND origin['id'] IS NOT NULL;

-- name: version
SELECT * FROM model_versions WHERE model = $model AND version = $version;

-- name: model_versions
SELECT * FROM model_versions WHERE model = $model ORDER BY version;

-- name: models
-- One row per live model ($model, or every model when it is NULL): the `models` view,
-- which says where a model's owner, description and tags come from.
SELECT model, owner, description, coalesce(tags, MAP {}) AS tags, versions, latest_version, latest_approved,
       created_at, updated_at
FROM models
WHERE $model IS NULL OR model = $model
ORDER BY model;

-- name: model_summary
-- The `models` row of $model alone (a filter on the key: it reaches the files).
SELECT model, owner, description, coalesce(tags, MAP {}) AS tags, versions, latest_version, latest_approved,
       created_at, updated_at
FROM models
WHERE model = $model;

-- name: counts
-- What the README, `catalog demo` and the site count: models, versions (one per
-- registration) and decisions (every lifecycle event: approve, reject, deprecate,
-- deploy, rollback, redact...; a registration is not a decision).
SELECT
    (SELECT count(*) FROM models) AS models,
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

-- name: ancestor_walk
-- The versions $model:$version descends from through parent models (and itself), each
-- with its nearest distance (0: itself). The recursion walks a narrow, materialised
-- list of model edges (one scan of versions' parents), not the whole lineage view once
-- per level; ancestors_of then reads the lineage of the versions found.
WITH RECURSIVE edges AS MATERIALIZED (
    SELECT child_model, child_version, parent_model, parent_version FROM lineage WHERE parent_kind = 'model'
), up(model, version, depth) AS (
    SELECT $model::VARCHAR, $version::BIGINT, 0
    UNION
    SELECT e.parent_model, e.parent_version, up.depth + 1
    FROM edges AS e JOIN up ON e.child_model = up.model AND e.child_version = up.version
)
SELECT model, version, min(depth) AS depth FROM up GROUP BY ALL;

-- name: ancestors_of
-- Every lineage edge of the versions ancestor_walk found ($models, $versions and
-- $depths: one entry per version), with its depth. The filter on their models reaches
-- the files (a join with the walk's answer in the same statement read every version).
SELECT l.child_model, l.child_version, l.parent_kind, l.parent, l.parent_model,
       l.parent_version, l.relation, min(k.depth) + 1 AS depth
FROM lineage AS l
JOIN (SELECT unnest($models::VARCHAR[]) AS model, unnest($versions::BIGINT[]) AS version, unnest($depths::BIGINT[]) AS depth) AS k
    ON l.child_model = k.model AND l.child_version = k.version
WHERE list_contains($models::VARCHAR[], l.child_model)
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
SELECT event_id, "at", actor, kind, model, version, state, target, note, evidence,
       description, tags, tags_deleted, renamed_from, origin, imported_at, imported_by
FROM audit_log
WHERE ($model IS NULL OR model = $model)
  AND ($target IS NULL OR target = $target)
  AND ($actor IS NULL OR actor = $actor)
ORDER BY "at", event_id;

-- name: files_with_versions
-- ($model: the names the model's records are stored under, see stored_names.)
SELECT DISTINCT filename FROM _versions_files
WHERE list_contains($models, model) AND ($version IS NULL OR version = $version)
ORDER BY filename;

-- name: files_with_events
SELECT DISTINCT filename FROM _events_files
WHERE list_contains($models, model) AND ($version IS NULL OR version = $version)
ORDER BY filename;

-- name: existing_versions
SELECT model, version FROM versions WHERE list_contains($models, model);

-- name: all_top_versions
-- The highest version ever recorded of every model (see max_version).
SELECT model, max(version) AS version FROM _versions_named GROUP BY model;

-- name: top_versions
-- The highest version ever recorded of each of $models (see max_version).
SELECT model, max(version) AS version FROM _versions_named WHERE list_contains($models, model) GROUP BY model;
