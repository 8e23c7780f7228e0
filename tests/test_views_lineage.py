"""Lineage through the API answers as the lineage view does, read in one statement.

``Registry.lineage`` finds a version's ancestors in two queries (the walk up the
model edges, then the lineage of the versions it found, filtered by their models:
named.sql, ancestor_walk and ancestors_of). These tests hold it to the answer of one
statement over the lineage view, over a diamond (a version reached at two depths),
a rename, a delete and a moment in the past.
"""

from __future__ import annotations

import time

from catalog.records import LineageEdge

# The ancestors as one recursive statement over the lineage view (the definition the
# two queries must keep): every edge of every version reached, at its nearest depth.
ONE_STATEMENT = """
WITH RECURSIVE up(model, version, depth) AS (
    SELECT $model::VARCHAR, $version::BIGINT, 0
    UNION
    SELECT l.parent_model, l.parent_version, up.depth + 1
    FROM lineage AS l JOIN up ON l.child_model = up.model AND l.child_version = up.version
    WHERE l.parent_kind = 'model'
)
SELECT l.child_model, l.child_version, l.parent_kind, l.parent, l.parent_model,
       l.parent_version, l.relation, min(up.depth) + 1 AS depth
FROM lineage AS l JOIN up ON l.child_model = up.model AND l.child_version = up.version
GROUP BY ALL
ORDER BY depth, l.child_model, l.child_version, l.parent_kind, l.parent
"""


def ancestors(reg, model, version, as_of=None):
    return [e.to_dict() for e in reg.lineage(model, version, as_of=as_of).ancestors]


def expected(reg, model, version, as_of=None):
    rows = reg.sql(ONE_STATEMENT, params={"model": model, "version": version}, as_of=as_of).rows
    return [LineageEdge.from_row(r).to_dict() for r in rows]


def diamond(reg):
    """base:1 <- base:2 <- top:1 and base:1 <- side:1 <- top:1, with data, code and images."""
    reg.register("base", "s3://m/b1", data_refs=["s3://corpus@v1", "s3://labels@v3"], runtime_image="img:1",
                 code_repo="https://github.com/acme/x", code_version="c0ffee", capture_git=False)
    reg.register("base", "s3://m/b2", parents=[("base", 1, "fine-tuned")], data_refs=["s3://corpus@v2"],
                 code_version="beef", capture_git=False)
    reg.register("side", "s3://m/s1", parents=[("base", 1, "distilled")], runtime_image="img:2", capture_git=False)
    reg.register("top", "s3://m/t1", parents=[("base", 2, "merged"), ("side", 1, "merged")],
                 data_refs=["s3://eval@v1"], capture_git=False)


def test_ancestors_match_one_statement_over_a_diamond(registry):
    reg = registry()
    diamond(reg)
    up = ancestors(reg, "top", 1)
    assert up == expected(reg, "top", 1)
    # base:1 is reached through base:2 and through side:1, both at depth 2: its edges
    # once each, at depth 3
    assert sorted((e["parent_kind"], e["parent"]) for e in up if e["depth"] == 3) == [
        ("code", "https://github.com/acme/x@c0ffee"), ("data", "s3://corpus@v1"),
        ("data", "s3://labels@v3"), ("image", "img:1"),
    ]
    assert [e["depth"] for e in up] == sorted(e["depth"] for e in up)
    for model, version in (("base", 1), ("base", 2), ("side", 1)):
        assert ancestors(reg, model, version) == expected(reg, model, version)


def test_ancestors_match_one_statement_after_a_rename_a_delete_and_in_the_past(registry):
    reg = registry()
    diamond(reg)
    before = reg.lineage("top", 1).ancestors
    time.sleep(0.01)
    moment = reg.sql("select now() as t").rows[0]["t"]
    time.sleep(0.01)
    reg.rename("side", "sidecar")
    reg.delete("base", 2)
    # parents name a model as it was called when they were written: the walk stops at a
    # version renamed or deleted since, in both readings alike
    now = ancestors(reg, "top", 1)
    assert now == expected(reg, "top", 1)
    assert now != [e.to_dict() for e in before]
    assert ancestors(reg, "sidecar", 1) == expected(reg, "sidecar", 1)
    # as of the moment before: the same answer as then
    assert ancestors(reg, "top", 1, as_of=moment) == expected(reg, "top", 1, as_of=moment)
    assert ancestors(reg, "top", 1, as_of=moment) == [e.to_dict() for e in before]
