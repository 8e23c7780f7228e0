-- The SQL page's cookbook (catalog.site.sqlpage): each query one click away on the
-- site's SQL page, run in the browser over the same views as `catalog sql`.
-- A section starts with a line `-- query: <title>`; its SQL follows.

-- query: What runs where
SELECT target, model, version, since, "by" FROM deployments ORDER BY target, model;

-- query: The latest approved version of every model
SELECT model, version, artifact_uri, approved_by, approved_at FROM latest_approved ORDER BY model;

-- query: Versions still waiting for a decision
SELECT model, version, owner, created_at FROM model_versions
WHERE state = 'candidate' ORDER BY created_at;

-- query: The best versions by a metric
SELECT model, version, state, metrics['auc'] AS auc
FROM model_versions WHERE metrics['auc'] IS NOT NULL
ORDER BY auc DESC LIMIT 10;

-- query: What each target can roll back to
SELECT model, target, version, rank FROM rollback_candidates ORDER BY target, model, rank;

-- query: Every rollback, and why
SELECT "at", actor, model, version, target, note FROM audit_log
WHERE kind = 'rollback' ORDER BY "at" DESC;

-- query: Models trained on a data set
SELECT parent AS data, list(DISTINCT child_model || ' v' || child_version) AS used_by
FROM lineage WHERE parent_kind = 'data' GROUP BY parent ORDER BY parent;

-- query: Who decided what, newest first
SELECT "at", actor, kind, model, version, target, note FROM audit_log
WHERE kind <> 'register' ORDER BY "at" DESC LIMIT 100;

-- query: Models per owner
SELECT owner, count(DISTINCT model) AS models, count(*) AS versions
FROM model_versions GROUP BY owner ORDER BY models DESC, owner;
