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

-- Raw table files. The zero-row schema anchor in each folder makes union_by_name
-- yield every current column, null where an older file lacks it.
CREATE OR REPLACE VIEW _versions_parquet AS
SELECT * FROM read_parquet(getvariable('catalog_versions_files'), hive_partitioning = false, union_by_name = true, filename = true);

CREATE OR REPLACE VIEW _events_parquet AS
SELECT * FROM read_parquet(getvariable('catalog_events_files'), hive_partitioning = false, union_by_name = true, filename = true);

-- Every row of each table's files. (The catalog's own reader redefines these two
-- to add the small files it keeps in memory: see reader.sql.)
CREATE OR REPLACE VIEW _versions_files AS SELECT * FROM _versions_parquet;

CREATE OR REPLACE VIEW _events_files AS SELECT * FROM _events_parquet;

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
    data_refs, parents, metrics, params, dashboards, created_at, created_by
FROM _versions_files
WHERE {versions_sound};

CREATE OR REPLACE VIEW _events_current AS
SELECT {events_one_per_key}
    schema_version, event_id, "at", actor, model, version, kind, state, target, note, evidence
FROM _events_files
WHERE {events_sound};

-- One row per registered version, as of the moment asked.
CREATE OR REPLACE VIEW versions AS
SELECT * FROM _versions_current
WHERE created_at <= coalesce(getvariable('catalog_as_of')::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ);

-- One row per lifecycle event, as of the moment asked.
CREATE OR REPLACE VIEW events AS
SELECT * FROM _events_current
WHERE "at" <= coalesce(getvariable('catalog_as_of')::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ);

-- Per (model, target): the version the latest deploy or rollback put there.
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
    WHERE kind IN ('deploy', 'rollback')
    GROUP BY model, target
);

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

-- Every version with its current approval state and the targets running it.
CREATE OR REPLACE VIEW model_versions AS
WITH running AS (
    SELECT model, version, list(target ORDER BY target) AS deployed_to
    FROM deployments
    GROUP BY model, version
)
SELECT
    v.*,
    coalesce(d.state, 'candidate') AS state,
    coalesce(d.state_at, v.created_at) AS state_at,
    coalesce(d.state_by, v.created_by) AS state_by,
    coalesce(r.deployed_to, []::VARCHAR[]) AS deployed_to
FROM versions AS v
LEFT JOIN _version_state AS d USING (model, version)
LEFT JOIN running AS r USING (model, version);

-- Per model: the highest approved version (never a candidate, rejected or deprecated one).
CREATE OR REPLACE VIEW latest_approved AS
WITH top AS (
    SELECT model, arg_max({'version': version, 'at': state_at, 'by': state_by}, version) AS top
    FROM _version_state
    WHERE state = 'approved'
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

-- Every event, registrations included, joined to its version:
-- who did what, when, why, and on what evidence.
CREATE OR REPLACE VIEW audit_log AS
WITH everything AS (
    SELECT event_id, "at", actor, model, version, kind, state, target, note, evidence FROM events
    UNION ALL
    SELECT 'register-' || model || '-' || version, created_at, created_by, model, version,
           'register', 'candidate', NULL, NULL, NULL
    FROM versions
)
SELECT e.*, v.artifact_uri, v.artifact_sha256, v.owner, v.created_by AS registered_by
FROM everything AS e
LEFT JOIN versions AS v USING (model, version);
