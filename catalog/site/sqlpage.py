"""The site's SQL page: DuckDB-WASM in the reader's browser over Parquet snapshots of the lake.

A build writes, beside the pages, in ``query/``:

- ``versions.parquet`` and ``events.parquet``: every row of the two tables the
  views read (as of the build's ``as_of``, if one was given), read through the
  stable views;
- ``views.sql``: the stable views' definitions (``catalog sql --print-views``)
  without the two lines that point them at the lake's files: the page points them
  at the snapshots instead, so the browser answers with the same SQL as
  ``catalog sql``, ``catalog_as_of`` included ("what ran where at T" needs no
  rebuild);
- ``duckdb/``: DuckDB-WASM and Arrow, vendored from npm (:mod:`catalog.site.wasm`);
- the page itself (``query/index.md``, from the ``query/index.md.j2`` template) with
  the cookbook's queries (``cookbook.sql``) one click away.

Everything is relative to the page, so the site works from ``catalog serve`` and from
any static host (not from ``file://``: browsers start no worker there).
"""

from __future__ import annotations

import contextlib
import importlib
import re
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from ..registry import Registry
from . import wasm
from .output import safe_join
from .render import Renderer

PAGE = "query/index.md"
TEMPLATE = "query/index.md.j2"
FOLDER = "query"
SNAPSHOTS = {"versions": "SELECT * FROM versions", "events": "SELECT * FROM events"}

_QUERY = re.compile(r"^-- query: (.+)$", re.M)
# The statements of views.sql that read the lake's files: on the page they read the snapshots.
_FILE_READS = re.compile(
    r"FROM read_parquet\(getvariable\('catalog_(versions|events)_files'\)[^;\n]*\);")
_FILE_VARIABLES = re.compile(r"^SET VARIABLE catalog_(versions|events)_files = .*;[ \t]*\n", re.M)


def cookbook() -> list[dict[str, str]]:
    """The cookbook's queries (title, SQL), in file order."""
    text = resources.files(__package__).joinpath("cookbook.sql").read_text(encoding="utf-8")
    parts = _QUERY.split(text)
    return [{"title": parts[i].strip(), "sql": parts[i + 1].strip()} for i in range(1, len(parts), 2)]


def browser_views(registry: Registry) -> str:
    """The stable views' definitions (``catalog sql --print-views``), reading the snapshot
    tables ``_versions_snapshot`` and ``_events_snapshot`` instead of the lake's files."""
    text = registry.views_sql()
    reads = _FILE_READS.findall(text)
    if sorted(reads) != ["events", "versions"] or len(_FILE_VARIABLES.findall(text)) != 2:
        raise ValueError("the views' SQL no longer reads the lake's files the way catalog.site.sqlpage "
                         "expects (catalog_versions_files, catalog_events_files): update it")
    text = _FILE_VARIABLES.sub("", text)
    return _FILE_READS.sub(lambda m: f"FROM _{m.group(1)}_snapshot;", text)


def snapshot_files(registry: Registry, as_of: str | datetime | None = None) -> dict[str, bytes]:
    """Every row of the two tables the views read, as of ``as_of``: ``<table>.parquet``
    (zstd, for any engine: ``read_parquet('https://<site>/query/events.parquet')``) and
    ``<table>.arrow`` (an Arrow IPC stream, what the page loads: DuckDB-WASM reads
    Parquet only through its parquet extension, which it would fetch from the internet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out: dict[str, bytes] = {}
    for name, query in SNAPSHOTS.items():
        table = registry.sql_arrow(query, as_of=as_of)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        out[f"{name}.parquet"] = sink.getvalue().to_pybytes()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        out[f"{name}.arrow"] = sink.getvalue().to_pybytes()
    return out


def page_context(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the page's template gets beside the document."""
    return {"cookbook": cookbook(), "snapshot_at": document["generated_at"]}


OFF = """---
title: SQL in the browser
---

# SQL in the browser

This site was built without its SQL page (`catalog build --no-sql-page`). Ask the
same questions with `catalog sql "..."` over the lake, or see the SQL cookbook.
"""

# The page when its DuckDB-WASM files could be had neither from the cache nor from npm:
# the rest of the site is built all the same (the reason, escaped, follows).
UNAVAILABLE = """---
title: SQL in the browser
---

# SQL in the browser

This site was built without its SQL page: its DuckDB-WASM files were not at hand
when it was built. Ask the same questions with `catalog sql "..."` over the lake, or
see the SQL cookbook. What the build said:

"""


class Ahead:
    """What the SQL page needs that takes time and no data, made on a thread from now on: pyarrow's
    modules (~0.3 s of imports, for the snapshots) and the DuckDB-WASM files (:func:`wasm.vendor_folder`:
    from the cache, else from npm). A build starts it before it reads the lake (DuckDB's reads let go
    of the interpreter) and asks :meth:`result` before it starts on the snapshots: a site whose page
    cannot have its files makes none."""

    def __init__(self) -> None:
        self._result: tuple[Path, dict[str, str]] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="catalog-sql-page", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):   # (a failed import is left for the snapshots to meet)
            importlib.import_module("pyarrow.parquet")
        try:
            self._result = wasm.vendor_folder()
        except BaseException as exc:   # (raised again by result(), in the build's thread)
            self._error = exc

    def result(self) -> tuple[Path, dict[str, str]]:
        """The DuckDB-WASM files (unpacked folder, name -> sha256), once the thread has ended (no thread
        of it runs after: the build forks its parts then); raises what getting them raised
        (:class:`SiteAssetsUnavailable` when they cannot be had)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def write_sql_page(registry: Registry, folder: Path, renderer: Renderer, document: Mapping[str, Any], *,
                   as_of: str | datetime | None = None, enabled: bool = True,
                   why: str | None = None, snapshots: Future[dict[str, bytes]] | None = None,
                   files: tuple[Path, dict[str, str]] | None = None) -> dict[str, tuple[Path, str]]:
    """Write the SQL page, its snapshots and the views into ``folder``; returns the DuckDB-WASM
    files the site needs beside them (site path → (unpacked folder, sha256)), which the build
    places in the site itself (:func:`catalog.site.wasm.place`): 35 MB that MkDocs need not copy.

    Not ``enabled``: a page that says so, so that the site's navigation stays whole; with
    ``why`` (its files could not be had), a page that says why. ``snapshots``: the snapshots
    (:func:`snapshot_files`) being made elsewhere, for this build's ``as_of``. ``files``: the
    DuckDB-WASM files had already (:meth:`Ahead.result`)."""
    if not enabled:
        safe_join(folder, PAGE).parent.mkdir(parents=True, exist_ok=True)
        safe_join(folder, PAGE).write_text(OFF, encoding="utf-8")
        return {}
    if why is not None:
        safe_join(folder, PAGE).parent.mkdir(parents=True, exist_ok=True)
        safe_join(folder, PAGE).write_text(UNAVAILABLE + "    " + why + "\n", encoding="utf-8")
        return {}
    unpacked, manifest = files if files is not None else wasm.vendor_folder()
    vendored = {f"{FOLDER}/duckdb/{name}": (unpacked, sha) for name, sha in manifest.items()}
    made = snapshots.result() if snapshots is not None else snapshot_files(registry, as_of)
    written: dict[str, bytes] = {f"{FOLDER}/{name}": data for name, data in made.items()}
    written[f"{FOLDER}/views.sql"] = browser_views(registry).encode("utf-8")
    written[PAGE] = renderer.render(TEMPLATE, PAGE, document, **page_context(document)).encode("utf-8")
    for rel, data in written.items():
        target = safe_join(folder, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return vendored
