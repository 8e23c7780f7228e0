"""The query layer: the stable views and named queries, run by DuckDB.

SQL lives in the ``.sql`` files beside this package and nowhere else; values are
bound as parameters, and results are materialised (lists of dicts) before they
leave it.

* :mod:`.sql` — the named queries and the text of the stable views;
* :mod:`.reader` — :class:`Reader`, the catalog's confined connection over a lake;
* :mod:`.copies` — second copies of a record among the files read;
* :mod:`.sandbox` — what ``catalog sql`` accepts.

The rules rows must keep to be read live with the lake (``catalog.lake.rules``),
which compaction applies too; they are named here for the readers of this layer.
"""

from __future__ import annotations

from ..engine import quote_literal
from ..lake.rules import row_problems_sql, row_rules, sound_rows_sql
from .reader import ONE_MODEL, TAIL_BYTES, Reader
from .sql import files_literal, named_queries, views_sql

__all__ = [
    "ONE_MODEL", "TAIL_BYTES", "Reader", "files_literal", "named_queries", "quote_literal", "row_problems_sql",
    "row_rules", "sound_rows_sql", "views_sql",
]
