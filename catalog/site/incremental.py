"""Incremental builds: a build into an existing site renders and rewrites only what changed.

Each page is keyed by what it renders from: its template set, its own context (a
model), and the parts of the data document its templates read, recorded while they
render (:class:`Recording`). The site folder keeps the keys of its pages and the
sha256 of each page's HTML in :data:`STATE` (listed in the folder's marker like every
file a build writes). The next build:

- renders only pages whose key changed; an unchanged page goes to MkDocs as a stub
  (:data:`STUB`) that the :class:`Unchanged` plugin turns into no output and no
  search entry, and its HTML is taken from the previous site once checked against
  the sha256 kept for it (a regular file, not a link, the bytes we wrote);
- merges the previous search entries of unchanged pages into the new index, in page
  order (the index is the one a full build writes);
- hard-links every output file whose bytes did not change to the previous site's
  copy (same inode, same mtime: a sync to a static host sees no change).

Anything unexpected (no state, another engine or template set, a page missing or
changed on disk) makes it a full build. The site engine (MkDocs) knows nothing of
this beyond the plugin; the generator's pages are the same Markdown either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import stat
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
from mkdocs.plugins import BasePlugin, event_priority

STATE = ".catalog-build.json"
FORMAT = 2   # (2: reads of model_urls, shown_versions and target_urls by name)
STUB = "---\ncatalog_unchanged: true\n---\n"
_EMPTY_TEMPLATE = "catalog-unchanged.html"
_ENGINE_PACKAGES = ("model-catalog", "mkdocs", "mkdocs-material", "markdown", "pymdown-extensions", "jinja2")


# Parts of the document that map a name to something (a model's page address, the versions its
# page shows, a target's page address): a page that looks up one name depends on that name's
# entry only ("model_urls:churn"), so a decision on one model does not re-render every page
# that links to some model.
BY_NAME = frozenset({"model_urls", "shown_versions", "target_urls"})


class _Noting(dict):
    """A mapping that notes in ``read`` that all of it was read (``whole``) when it is iterated."""

    whole = "*"
    read: set[str]

    def __iter__(self) -> Iterator[str]:
        self.read.add(self.whole)
        return super().__iter__()

    def keys(self) -> Any:
        self.read.add(self.whole)
        return super().keys()

    def items(self) -> Any:
        self.read.add(self.whole)
        return super().items()

    def values(self) -> Any:
        self.read.add(self.whole)
        return super().values()


class _ByName(_Noting):
    """One of the :data:`BY_NAME` parts, noting the names looked up ("part:name"; the whole part
    when iterated)."""

    def __init__(self, part: str, value: Mapping[str, Any], read: set[str]) -> None:
        super().__init__(value)
        self.whole = part
        self.read = read

    def __getitem__(self, key: str) -> Any:
        self.read.add(f"{self.whole}:{key}")
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(f"{self.whole}:{key}")
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(f"{self.whole}:{key}")
        return super().__contains__(key)

    def __len__(self) -> int:
        self.read.add(self.whole)
        return super().__len__()


def shows(document: Mapping[str, Any], model: str, version: int) -> bool:
    """Whether the page of ``model`` shows ``version`` (``shown_versions``); a page that asks
    depends on that answer alone ("shown_versions:<model>#<version>"), not on the model's
    other versions: a new version does not re-render every page that links to an old one."""
    if isinstance(document, Recording):
        document.read.add(f"shown_versions:{model}#{version}")
        found = dict.get(document, "shown_versions") or {}
    else:
        found = document.get("shown_versions") or {}
    return version in dict.get(found, model, ())


class Recording(_Noting):
    """The data document, noting which of its keys a template reads ("*": all of it)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        super().__init__(document)
        self.read: set[str] = set()
        self._parts: dict[str, _ByName] = {}

    def _part(self, key: str, value: Any) -> Any:
        if key not in BY_NAME or not isinstance(value, Mapping):
            self.read.add(key)
            return value
        if key not in self._parts:
            self._parts[key] = _ByName(key, value, self.read)
        return self._parts[key]

    def __getitem__(self, key: str) -> Any:
        return self._part(key, super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self.read.add(key)
            return default
        return self._part(key, super().__getitem__(key))


def digest(value: Any) -> str:
    """The sha256 of ``value``'s pickle (half the time of sorted JSON): the same data, built by the
    same code, gives the same bytes, and anything else costs a render, never a stale page."""
    return hashlib.sha256(pickle.dumps(value, protocol=5)).hexdigest()


class Keys:
    """Page keys over one data document; each part of the document is hashed once."""

    def __init__(self, document: Mapping[str, Any], engine: str) -> None:
        self.document = document
        self.engine = engine
        self._parts: dict[str, str] = {}

    def part(self, name: str) -> str:
        if name not in self._parts:
            value: Any
            if name == "*":
                value = dict(self.document)
            elif name.startswith("shown_versions:") and "#" in name:
                model, _, version = name.split(":", 1)[1].rpartition("#")
                value = version.isdigit() and shows(self.document, model, int(version))
            elif ":" in name and name.split(":", 1)[0] in BY_NAME:
                part, key = name.split(":", 1)
                value = (self.document.get(part) or {}).get(key)
            else:
                value = self.document.get(name)
            self._parts[name] = digest(value)
        return self._parts[name]

    def key(self, template: str, path: str, context: Mapping[str, Any], reads: list[str]) -> str:
        parts = [self.engine, template, path, digest(context)] + [f"{r}:{self.part(r)}" for r in sorted(reads)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def engine_key(folders: list[Path], mkdocs_file: Path | None, extra: Mapping[str, Any]) -> str:
    """Everything besides the data that shapes every page: templates, assets, configuration, versions."""
    h = hashlib.sha256()
    for name in _ENGINE_PACKAGES:
        try:
            h.update(f"{name}={metadata.version(name)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=?\n".encode())
    for folder in folders:
        for file in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(file.relative_to(folder).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    if mkdocs_file is not None:
        h.update(b"mkdocs\0" + mkdocs_file.read_bytes())
    h.update(digest(dict(extra)).encode())
    return h.hexdigest()


def load(site: Path, engine: str, listed: list[str] | None) -> dict[str, dict[str, Any]] | None:
    """The previous build's page keys, when they can be trusted for this build; else None."""
    if listed is None or STATE not in listed:
        return None
    try:
        if not stat.S_ISREG(os.lstat(site / STATE).st_mode):
            return None
        data = json.loads((site / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("engine") != engine:
        return None
    pages = data.get("pages")
    return pages if isinstance(pages, dict) else None


def save(site: Path, engine: str, pages: Mapping[str, Mapping[str, Any]]) -> None:
    (site / STATE).write_text(json.dumps({"format": FORMAT, "engine": engine, "pages": pages}, sort_keys=True),
                              encoding="utf-8")


def sha256_file(path: Path) -> str | None:
    """The sha256 of a regular, singly linked file (not a link); None otherwise."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def merge_search(new_index: Path, old_index: Path, kept_urls: set[str], order: list[str]) -> None:
    """Add the previous entries of the unchanged pages to the new search index, in page order."""
    old = json.loads(old_index.read_text(encoding="utf-8"))
    add_search_entries(new_index, [e for e in old["docs"] if e["location"].split("#", 1)[0] in kept_urls], order)


def add_search_entries(index: Path, entries: list[dict[str, Any]], order: list[str]) -> None:
    """Add ``entries`` to the search index ``index``, every entry in page order (``order``: the
    pages' URLs), each page's own entries in the order they had."""
    new = json.loads(index.read_text(encoding="utf-8"))
    merged = new["docs"] + entries
    rank = {url: i for i, url in enumerate(order)}
    merged.sort(key=lambda e: rank.get(e["location"].split("#", 1)[0], len(rank)))   # (a stable sort)
    new["docs"] = merged
    index.write_text(json.dumps(new, separators=(",", ":"), default=str), encoding="utf-8")


def link_unchanged(new_site: Path, old_site: Path, listed: list[str]) -> int:
    """Replace each file of ``new_site`` whose bytes equal the previous site's copy by a hard link
    to that copy; returns how many. Only regular, singly linked files the previous build listed."""
    linked = 0
    for rel in listed:
        new, old = new_site / rel, old_site / rel
        try:
            a, b = os.lstat(new), os.lstat(old)
        except OSError:
            continue
        if (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev):
            continue   # (linked already: an unchanged page)
        if (not stat.S_ISREG(a.st_mode) or not stat.S_ISREG(b.st_mode) or b.st_nlink != 1
                or a.st_size != b.st_size or new.read_bytes() != old.read_bytes()):
            continue
        spare = new.with_name(new.name + ".catalog-link")
        try:
            os.link(old, spare, follow_symlinks=False)
            os.replace(spare, new)
            linked += 1
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(spare)
    return linked


class Unchanged(BasePlugin):
    """MkDocs side: a stub page makes no output and no search entry; notes page order and URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.stubs: dict[str, tuple[str, str]] = {}   # src path -> (url, dest path)
        self.built: dict[str, str] = {}               # src path -> dest path
        self.urls: dict[str, str] = {}                # src path -> URL

    def on_env(self, env: jinja2.Environment, *, config: Any, files: Any) -> jinja2.Environment:
        env.loader = jinja2.ChoiceLoader([jinja2.DictLoader({_EMPTY_TEMPLATE: ""}), env.loader])  # type: ignore[list-item]
        return env

    def on_page_markdown(self, markdown: str, *, page: Any, config: Any, files: Any) -> str:
        if page.meta.get("catalog_unchanged") is True:
            page.meta["template"] = _EMPTY_TEMPLATE
            page.meta["search"] = {"exclude": True}
            self.stubs[page.file.src_uri] = (page.url, page.file.dest_uri)
            return ""
        self.built[page.file.src_uri] = page.file.dest_uri
        return markdown

    @event_priority(100)
    def on_page_context(self, context: Any, *, page: Any, config: Any, nav: Any) -> Any:
        self.order.append(page.url)
        self.urls[page.file.src_uri] = page.url
        return context
