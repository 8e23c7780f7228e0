-- The MLflow store's searches, answered by DuckDB over the stable views.
-- Each section starts with `-- name: <name>`. {where} and {order} are filled by
-- catalog.bridge.search from a fixed list of columns and operators; every value
-- (a name, a tag key, a pattern) is bound as a $parameter, never written into the text.

-- name: registered_models
-- One row per live model, as MLflow's RegisteredModel sees it.
WITH m AS (
    SELECT
        model AS name,
        created_at,
        updated_at,
        description,
        coalesce(tags, MAP {}::MAP(VARCHAR, VARCHAR)) AS tags
    FROM models
)
SELECT name, created_at, updated_at, description, tags
FROM m
WHERE {where}
ORDER BY {order}
LIMIT $limit OFFSET $offset;

-- name: model_versions
-- One row per live version, as MLflow's ModelVersion sees it: the model_versions row
-- and the names MLflow's filters use (the store keeps a version's MLflow source and
-- run as its tags mlflow.source and mlflow.run_id: catalog.bridge.store.RUN_TAGS).
WITH v AS (
    SELECT
        mv.*,
        mv.model AS name,
        greatest(mv.created_at, mv.state_at) AS updated_at,
        coalesce(mv.tags['mlflow.source'], mv.artifact_uri) AS source,
        mv.tags['mlflow.run_id'] AS run_id
    FROM model_versions AS mv
)
SELECT *
FROM v
WHERE {where}
ORDER BY {order}
LIMIT $limit OFFSET $offset;

-- name: versions_of
-- Every version of the models named (a page of search results), with state and targets.
SELECT * FROM model_versions
WHERE list_contains($names, model)
ORDER BY model, version;

-- name: aliases_of
-- What every target runs, for the models named.
SELECT model, target, version FROM deployments
WHERE list_contains($names, model)
ORDER BY model, target;
