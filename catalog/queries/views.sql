-- The stable views of the metadata lake (DESIGN.md, "Stable DuckDB views").
-- `catalog sql --print-views` prints this file with the lake's paths filled in,
-- so that any DuckDB client can run it and query the same views.
--
-- Time travel: every view reads the registry as of `getvariable('catalog_as_of')`
-- (a TIMESTAMPTZ, unset means now). `SET VARIABLE catalog_as_of = TIMESTAMPTZ '...'`
-- turns every view into the answer the registry would have given at that moment.

-- Which files make up each table: a glob of the table's folder here. The catalog's
-- own reader sets these two variables before every query to the exact list of
-- current files instead (catalog.lake.Lake.current_files).
SET VARIABLE catalog_versions_files = {versions_files};
SET VARIABLE catalog_events_files = {events_files};

-- Every current column of each table, typed, with no row (filled in from the
-- catalog's schema declarations: catalog.schema.duckdb_columns). The rows of the
-- files are read together with it by name, so that a lake written before a column
-- was added (its files and schema anchor lack it) reads with that column null:
-- this is where older rows are upgraded.
CREATE OR REPLACE VIEW _versions_columns AS {versions_columns};

CREATE OR REPLACE VIEW _events_columns AS {events_columns};

-- Raw table files. The zero-row schema anchor in each folder makes union_by_name
-- yield every column its files have.
CREATE OR REPLACE VIEW _versions_parquet AS
SELECT * FROM read_parquet(getvariable('catalog_versions_files'), hive_partitioning = false, union_by_name = true, filename = true);

CREATE OR REPLACE VIEW _events_parquet AS
SELECT * FROM read_parquet(getvariable('catalog_events_files'), hive_partitioning = false, union_by_name = true, filename = true);

-- Every row of each table's files. (The catalog's own reader redefines these two
-- to add the small files it keeps in memory: see reader.sql.)
CREATE OR REPLACE VIEW _versions_files AS SELECT * FROM _versions_parquet UNION ALL BY NAME SELECT * FROM _versions_columns;

CREATE OR REPLACE VIEW _events_files AS SELECT * FROM _events_parquet UNION ALL BY NAME SELECT * FROM _events_columns;

-- One row per key, all time. Through a glob, a record can sit in two files for a
-- moment during compaction, so DISTINCT ON keeps one. (model is part of the events
-- key only so that a filter on one model reaches the files below the dedupe: an
-- event never changes model.) The catalog's reader lists only current files, in
-- which each record is once, and drops the dedupe: it is what costs time and memory
-- on a large lake.
--
-- Only rows that keep the lake's rules are read (no null key or required field, a
-- valid model and target name, a version from 1, a known event kind and state):
-- a row written by another tool that breaks them is skipped by every view, and
-- `catalog doctor` reports it. (The conditions are filled in from the catalog's
-- own declarations: catalog.queries.row_rules.)
CREATE OR REPLACE VIEW _versions_current AS
SELECT {versions_one_per_key}
    schema_version, model, version, artifact_uri, artifact_sha256, artifact_bytes,
    owner, description, tags, code_repo, code_version, code_dirty, runtime_image,
    data_refs, parents, metrics, params, dashboards, created_at, created_by,
    origin, imported_at, imported_by
FROM _versions_files
WHERE {versions_sound};

CREATE OR REPLACE VIEW _events_current AS
SELECT {events_one_per_key}
    schema_version, event_id, "at", actor, model, version, kind, state, target, note, evidence,
    description, tags, tags_deleted, renamed_from, origin, imported_at, imported_by
FROM _events_files
WHERE {events_sound};

-- As of the moment asked. Imported records keep their original times (created_at,
-- "at"; imported_at says when they arrived), so time travel shows a registry brought
-- across from another system as that system had it.
CREATE OR REPLACE VIEW _versions_asof AS
SELECT * FROM _versions_current
WHERE created_at <= coalesce(getvariable('catalog_as_of')::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ);

CREATE OR REPLACE VIEW _events_asof AS
SELECT * FROM _events_current
WHERE "at" <= coalesce(getvariable('catalog_as_of')::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ);

-- The events that change which records the other views show and under which name
-- (renames, deletes): few, and read by nearly every view. (The catalog's own reader
-- holds them in a temporary table, read again whenever the lake's files change: see
-- reader.sql.)
CREATE OR REPLACE VIEW _structure AS
SELECT model, version, kind, "at", event_id, actor, renamed_from, evidence
FROM _events_current
WHERE kind IN ('rename', 'delete');

-- Renames, as of the moment asked: each name a model was renamed away from (old),
-- with the name the model goes by now (model), following renames of renames. A
-- rename's event is stored under the new name and says the old one (renamed_from);
-- records stay under the name they were written with, and every view shows them
-- under the model's name of the moment asked (before the rename: the old one).
CREATE OR REPLACE VIEW _renamed AS
WITH RECURSIVE edges AS MATERIALIZED (
    SELECT renamed_from AS old, model AS new FROM _structure
    WHERE kind = 'rename' AND renamed_from IS NOT NULL
      AND "at" <= coalesce(getvariable('catalog_as_of')::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
), walk(old, model, depth) AS (
    SELECT old, new, 1 FROM edges
    UNION ALL
    SELECT w.old, e.new, w.depth + 1 FROM walk AS w JOIN edges AS e ON e.old = w.model WHERE w.depth < 1000
)
SELECT old, arg_max(model, depth) AS model FROM walk GROUP BY old;

-- Every version ever registered, deleted ones included, under its model's name now.
CREATE OR REPLACE VIEW _versions_named AS
SELECT * FROM _versions_asof WHERE model NOT IN (SELECT old FROM _renamed)
UNION ALL
SELECT v.* REPLACE (r.model AS model) FROM _versions_asof AS v JOIN _renamed AS r ON v.model = r.old;

-- One row per lifecycle event, as of the moment asked, under its model's name now
-- (every event is kept: deletes hide versions and models from the other views only).
CREATE OR REPLACE VIEW events AS
SELECT * FROM _events_asof WHERE model NOT IN (SELECT old FROM _renamed)
UNION ALL
SELECT e.* REPLACE (r.model AS model) FROM _events_asof AS e JOIN _renamed AS r ON e.model = r.old;

-- Deletes: each hides one version (version set), or a whole model (version null):
-- every version it had then (up to "through"), and the model itself until it is
-- created or registered again.
CREATE OR REPLACE VIEW _deleted AS
SELECT coalesce(r.model, d.model) AS model, d.version, d."at", d.actor,
       -- (read with a pattern, not DuckDB's json functions: the site's SQL page runs these
       -- views in DuckDB-WASM, which cannot load the json extension offline)
       TRY_CAST(regexp_extract(d.evidence, '"through": *([0-9]+)', 1) AS BIGINT) AS through
FROM _structure AS d
LEFT JOIN _renamed AS r ON r.old = d.model
WHERE d.kind = 'delete' AND d."at" <= coalesce(getvariable('catalog_as_of')::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ);

-- One row per registered version that is not deleted, as of the moment asked.
-- (Two plain joins on keys, with the few deletes on their build side: a filter on one
-- model still reaches the files.)
CREATE OR REPLACE VIEW versions AS
SELECT v.* FROM _versions_named AS v
LEFT JOIN (SELECT model, max(through) AS through FROM _deleted WHERE version IS NULL GROUP BY model) AS g
    ON g.model = v.model
ANTI JOIN (SELECT model, version FROM _deleted WHERE version IS NOT NULL) AS d
    ON d.model = v.model AND d.version = v.version
WHERE g.through IS NULL OR v.version > g.through;

-- Per (model, target): the version the latest deploy or rollback put there, unless
-- an undeploy came after it (the target runs nothing of the model then).
-- (One arg_max over a struct of every column wanted: a third of the cost of one per column.)
CREATE OR REPLACE VIEW deployments AS
SELECT model, target, last.version, since, last.by, last.how, last.note
FROM (
    SELECT
        model,
        target,
        arg_max({'version': version, 'by': actor, 'how': kind, 'note': note}, {'at': "at", 'id': event_id}) AS last,
        max("at") AS since
    FROM events
    WHERE kind IN ('deploy', 'rollback', 'undeploy')
    GROUP BY model, target
)
WHERE last.how <> 'undeploy';

-- Per decided version: the approval state its latest deciding event left it in.
CREATE OR REPLACE VIEW _version_state AS
SELECT model, version, last.state, last.state_at, last.state_by
FROM (
    SELECT
        model,
        version,
        arg_max({'state': state, 'state_at': "at", 'state_by': actor}, {'at': "at", 'id': event_id}) AS last
    FROM events
    WHERE state IS NOT NULL AND version IS NOT NULL
    GROUP BY model, version
);

-- Per version whose tags or description an event changed (tag, describe): its
-- current ones. A describe sets the description (null clears it); tags are the
-- registration's, then each tag event's sets and deletes in order, key by key.
CREATE OR REPLACE VIEW _version_edits AS
WITH edits AS (
    SELECT model, version, kind, "at", event_id, description, tags, tags_deleted
    FROM events
    WHERE kind IN ('tag', 'describe') AND version IS NOT NULL
), keyed AS (
    -- per tag key an event set or deleted: its latest value (null: deleted)
    SELECT model, version, key, arg_max({'value': value}, {'at': "at", 'id': event_id}).value AS value
    FROM (
        SELECT model, version, "at", event_id, unnest(map_keys(tags)) AS key, unnest(map_values(tags)) AS value
        FROM edits WHERE kind = 'tag'
        UNION ALL
        SELECT model, version, "at", event_id, unnest(tags_deleted), NULL FROM edits WHERE kind = 'tag'
    )
    GROUP BY model, version, key
)
-- (One aggregation over a union, no join: a filter on one model reaches the events.)
SELECT
    model, version,
    bool_or(kind = 'describe') AS described,
    -- (in a struct: arg_max skips a null argument, and a null description is a cleared one)
    arg_max({'d': description}, {'at': "at", 'id': event_id}) FILTER (WHERE kind = 'describe').d AS description,
    bool_or(kind = 'key') AS tagged,
    map_from_entries(coalesce(list({'key': key, 'value': value}) FILTER (WHERE kind = 'key' AND value IS NOT NULL), []))
        AS tags_set,
    coalesce(list(key) FILTER (WHERE kind = 'key' AND value IS NULL), []) AS tags_deleted
FROM (
    SELECT model, version, kind, "at", event_id, description, NULL AS key, NULL AS value FROM edits WHERE kind = 'describe'
    UNION ALL
    SELECT model, version, 'key', NULL, NULL, NULL, key, value FROM keyed
)
GROUP BY model, version;

-- Every version with its current approval state, tags and description, and the
-- targets running it.
CREATE OR REPLACE VIEW model_versions AS
WITH running AS (
    SELECT model, version, list(target ORDER BY target) AS deployed_to
    FROM deployments
    GROUP BY model, version
)
SELECT
    v.* REPLACE (
        CASE WHEN e.described THEN e.description ELSE v.description END AS description,
        CASE WHEN e.tagged THEN map_from_entries(list_filter(
            map_entries(map_concat(coalesce(v.tags, MAP {}), e.tags_set)), lambda t: NOT list_contains(e.tags_deleted, t.key)
        )) ELSE v.tags END AS tags
    ),
    coalesce(d.state, 'candidate') AS state,
    coalesce(d.state_at, v.created_at) AS state_at,
    coalesce(d.state_by, v.created_by) AS state_by,
    coalesce(r.deployed_to, []::VARCHAR[]) AS deployed_to
FROM versions AS v
LEFT JOIN _version_state AS d USING (model, version)
LEFT JOIN _version_edits AS e USING (model, version)
LEFT JOIN running AS r USING (model, version);

-- Per model: what create, tag and describe events on the model itself (no version)
-- set since it was last deleted as a whole: when it was created (null: never by a
-- create), its description (described: one was set, perhaps to null) and its tags
-- (tagged: some were set), and when any of them last changed.
CREATE OR REPLACE VIEW _model_edits AS
WITH gone AS (
    SELECT model, max("at") AS "at" FROM _deleted WHERE version IS NULL GROUP BY model
), edits AS MATERIALIZED (
    SELECT e.model, e.kind, e."at", e.event_id, e.description, e.tags, e.tags_deleted
    FROM events AS e LEFT JOIN gone AS g USING (model)
    WHERE e.version IS NULL AND e.kind IN ('create', 'tag', 'describe') AND (g."at" IS NULL OR e."at" > g."at")
), keyed AS (
    SELECT model, key, arg_max({'value': value}, {'at': "at", 'id': event_id}).value AS value
    FROM (
        SELECT model, "at", event_id, unnest(map_keys(tags)) AS key, unnest(map_values(tags)) AS value
        FROM edits WHERE kind IN ('create', 'tag')
        UNION ALL
        SELECT model, "at", event_id, unnest(tags_deleted), NULL FROM edits WHERE kind = 'tag'
    )
    GROUP BY model, key
), tagged AS (
    SELECT model,
           map_from_entries(coalesce(list({'key': key, 'value': value} ORDER BY key) FILTER (WHERE value IS NOT NULL), [])) AS tags
    FROM keyed
    GROUP BY model
)
SELECT
    s.model, s.created_at, s.described, s.description, t.model IS NOT NULL AS tagged, t.tags, s.updated_at
FROM (
    SELECT
        model,
        min("at") FILTER (WHERE kind = 'create') AS created_at,
        bool_or(kind = 'describe' OR (kind = 'create' AND description IS NOT NULL)) AS described,
        arg_max({'d': description}, {'at': "at", 'id': event_id})
            FILTER (WHERE kind = 'describe' OR (kind = 'create' AND description IS NOT NULL)).d AS description,
        max("at") AS updated_at
    FROM edits
    GROUP BY model
) AS s
LEFT JOIN tagged AS t USING (model);

-- One row per live model: one with a version not deleted, or created (create) since
-- it was last deleted. Its description and tags are those set on the model itself
-- (create, describe, tag) when any were, else those of its latest version that has
-- one (for tags: the latest version with at least one tag, its whole map), so that a
-- newer version registered without them does not blank the model; its owner is its
-- latest version's that has one. show, list and the site all read them from here.
CREATE OR REPLACE VIEW models AS
WITH mv AS (
    SELECT
        model,
        arg_max(owner, version) FILTER (WHERE owner IS NOT NULL) AS owner,
        arg_max(description, version) FILTER (WHERE description IS NOT NULL) AS description,
        arg_max(tags, version) FILTER (WHERE cardinality(tags) > 0) AS tags,
        count(*) AS versions,
        max(version) AS latest_version,
        max(version) FILTER (WHERE state = 'approved') AS latest_approved,
        min(created_at) AS created_at,
        max(created_at) AS updated_at
    FROM model_versions
    GROUP BY model
)
SELECT
    model,
    CASE WHEN me.described THEN me.description ELSE mv.description END AS description,
    CASE WHEN me.tagged THEN me.tags ELSE mv.tags END AS tags,
    mv.owner,
    least(mv.created_at, me.created_at) AS created_at,
    greatest(mv.updated_at, me.updated_at) AS updated_at,
    coalesce(mv.versions, 0) AS versions,
    mv.latest_version,
    mv.latest_approved
FROM mv FULL OUTER JOIN _model_edits AS me USING (model)
WHERE mv.model IS NOT NULL OR me.created_at IS NOT NULL;

-- Per model: the highest approved version (never a candidate, rejected or deprecated one).
CREATE OR REPLACE VIEW latest_approved AS
WITH top AS (
    SELECT model, arg_max({'version': version, 'at': state_at, 'by': state_by}, version) AS top
    FROM _version_state AS s
    -- not a deleted one (the few deletes on the build side of two joins, as in versions)
    LEFT JOIN (SELECT model, max(through) AS through FROM _deleted WHERE version IS NULL GROUP BY model) AS g
        USING (model)
    ANTI JOIN (SELECT model, version FROM _deleted WHERE version IS NOT NULL) AS d USING (model, version)
    WHERE state = 'approved' AND (g.through IS NULL OR s.version > g.through)
    GROUP BY model
)
SELECT t.model, t.top.version AS version, v.artifact_uri, v.artifact_sha256,
       t.top.at AS approved_at, t.top.by AS approved_by
FROM top AS t
JOIN versions AS v ON v.model = t.model AND v.version = t.top.version;

-- Per (model, target, version that ran there): whether the target can roll back to it,
-- and if not, why. One definition behind both rollback views below.
--
-- A version V is excluded on target T when:
--   * T runs V now ("running"), or
--   * V is not approved any more (its state: "deprecated"...), or
--   * a rollback on T moved T away from V and no deploy of V on T came after that
--     rollback ("rolled back"): only a new deploy, with its gates, brings V back.
-- "Moved away from" is read from the event sequence itself: the version T ran just
-- before the rollback, by the order ("at", event_id) that `deployments` uses, so the
-- two views always agree on what ran when (the rollback's evidence is not needed).
CREATE OR REPLACE VIEW _rollback_options AS
WITH moves AS (
    SELECT model, target, version, kind, "at", actor, note,
           row_number() OVER w AS seq,
           lag(version) OVER w AS replaced
    FROM events
    WHERE kind IN ('deploy', 'rollback')
    WINDOW w AS (PARTITION BY model, target ORDER BY "at", event_id)
), ran AS (
    SELECT model, target, version, max("at") AS last_deployed_at,
           coalesce(max(seq) FILTER (WHERE kind = 'deploy'), 0) AS last_deploy_seq
    FROM moves
    GROUP BY model, target, version
), away AS (
    -- per version: the latest rollback on the target that moved it away from that version
    SELECT model, target, replaced AS version,
           arg_max({'seq': seq, 'at': "at", 'by': actor, 'note': note, 'to': version}, seq) AS last
    FROM moves
    WHERE kind = 'rollback' AND replaced IS NOT NULL
    GROUP BY model, target, replaced
), judged AS (
    SELECT
        r.model, r.target, r.version, r.last_deployed_at, v.artifact_uri,
        CASE
            WHEN r.version = d.version THEN 'running'
            WHEN coalesce(s.state, 'candidate') <> 'approved' THEN coalesce(s.state, 'candidate')
            WHEN a.last.seq > r.last_deploy_seq THEN 'rolled back'
        END AS reason,
        d.since AS running_since, d.by AS running_by, s.state_at, s.state_by, a.last AS away
    FROM ran AS r
    JOIN deployments AS d ON d.model = r.model AND d.target = r.target
    JOIN versions AS v ON v.model = r.model AND v.version = r.version
    LEFT JOIN _version_state AS s ON s.model = r.model AND s.version = r.version
    LEFT JOIN away AS a ON a.model = r.model AND a.target = r.target AND a.version = r.version
)
SELECT
    model, target, version, last_deployed_at, artifact_uri, reason,
    CASE reason WHEN 'running' THEN running_since WHEN 'rolled back' THEN away.at ELSE state_at END AS decided_at,
    CASE reason WHEN 'running' THEN running_by WHEN 'rolled back' THEN away.by ELSE state_by END AS decided_by,
    CASE reason WHEN 'rolled back' THEN away.note END AS note,
    CASE reason WHEN 'rolled back' THEN away.to END AS rolled_back_to
FROM judged;

-- Per (model, target): the approved versions that ran there before and that the
-- target may go back to (see _rollback_options); rank 1 (the most recently run) is
-- the default.
CREATE OR REPLACE VIEW rollback_candidates AS
SELECT
    model,
    target,
    version,
    row_number() OVER (PARTITION BY model, target ORDER BY last_deployed_at DESC, version DESC) AS rank,
    last_deployed_at,
    artifact_uri
FROM _rollback_options
WHERE reason IS NULL;

-- Per (model, target): every version that ran there and is not a rollback candidate,
-- and why. reason is 'running' (the target runs it now), 'rolled back' (a rollback
-- moved the target away from it and it was not deployed there again since), or the
-- version's state when it is no longer approved ('deprecated'...). decided_at and
-- decided_by say when and by whom (the deploy or rollback that put the running version
-- there, the rollback, or the state change); note is the rollback's note; detail is
-- all of it in one sentence, as the CLI, the site and the refusals show it.
CREATE OR REPLACE VIEW rollback_excluded AS
SELECT
    model, target, version, reason, decided_at, decided_by, note, rolled_back_to,
    CASE reason
        WHEN 'running' THEN 'running now'
        WHEN 'rolled back' THEN 'rolled back from on ' || strftime(make_timestamp(epoch_us(decided_at)), '%Y-%m-%d %H:%M:%SZ')
            || ' by ' || decided_by || coalesce(': ' || replace(replace(note, chr(13), ' '), chr(10), ' '), '')
        ELSE reason || coalesce(' on ' || strftime(make_timestamp(epoch_us(decided_at)), '%Y-%m-%d %H:%M:%SZ'), '')
            || coalesce(' by ' || decided_by, '')
    END AS detail,
    last_deployed_at,
    artifact_uri
FROM _rollback_options
WHERE reason IS NOT NULL;

-- One row per lineage edge: parent models, data refs, code and image.
CREATE OR REPLACE VIEW lineage AS
SELECT model AS child_model, version AS child_version, 'model' AS parent_kind,
       p.model || ':' || p.version AS parent, p.model AS parent_model,
       p.version AS parent_version, p.relation AS relation
FROM (SELECT model, version, unnest(parents) AS p FROM versions)
UNION ALL
SELECT model, version, 'data', d, NULL, NULL, NULL
FROM (SELECT model, version, unnest(data_refs) AS d FROM versions)
UNION ALL
SELECT model, version, 'code',
       CASE WHEN code_repo IS NULL THEN code_version ELSE code_repo || '@' || code_version END,
       NULL, NULL, NULL
FROM versions WHERE code_version IS NOT NULL
UNION ALL
SELECT model, version, 'image', runtime_image, NULL, NULL, NULL
FROM versions WHERE runtime_image IS NOT NULL;

-- Every event, registrations included, joined to its version (deleted ones too):
-- who did what, when, why, and on what evidence. An imported record keeps the
-- original actor and time ("actor", "at") and says who brought it across when
-- (imported_by, imported_at) and from where (origin).
CREATE OR REPLACE VIEW audit_log AS
WITH everything AS (
    SELECT event_id, "at", actor, model, version, kind, state, target, note, evidence,
           description, tags, tags_deleted, renamed_from, origin, imported_at, imported_by
    FROM events
    UNION ALL
    SELECT 'register-' || model || '-' || version, created_at, created_by, model, version,
           'register', 'candidate', NULL, NULL, NULL, NULL, NULL, NULL, NULL, origin, imported_at, imported_by
    FROM _versions_named
)
SELECT e.*, v.artifact_uri, v.artifact_sha256, v.owner, v.created_by AS registered_by
FROM everything AS e
LEFT JOIN _versions_named AS v USING (model, version);
