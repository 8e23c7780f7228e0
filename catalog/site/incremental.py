"""Incremental builds: a build into an existing site renders and rewrites only what changed.

Each page is keyed by what it renders from: its template set, its own context (a
model), and the parts of the data document its templates read, recorded while they
render (:class:`Recording`). The site folder keeps the keys of its pages and the
sha256 of each page's HTML in :data:`STATE` (listed in the folder's marker like every
file a build writes). The next build:

- renders only pages whose key changed; an unchanged page is no file at all: the
  :class:`Unchanged` plugin hands it to MkDocs as an empty page of its own (for
  navigation, links and the sitemap) that skips Markdown and the theme and makes no
  output and no search entry, and its HTML is taken from the previous site once its
  bytes are checked against the sha256 kept for it (a regular file, not a link, the
  bytes we wrote; :class:`Seen` notes the file so that a page rewritten later during
  the build is caught before it is linked);
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
import functools
import hashlib
import io
import json
import os
import pickle
import shutil
import stat
from collections.abc import Container, Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.toc import get_toc

from ..errors import SiteBuildFailed

STATE = ".catalog-build.json"
FORMAT = 4   # (2: reads of model_urls, shown_versions and target_urls by name; 3: Keys.of; 4: digests without the memo)
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


class _ByName(Mapping[str, Any]):
    """One of the :data:`BY_NAME` parts, noting the names looked up ("part:name"; the whole part
    when iterated or counted). A view of the part, not a copy: every page asks for the part of
    model addresses, which has an entry per model (copied for each page, that was ~0.2 ms a page
    at 10,000 models)."""

    def __init__(self, part: str, value: Mapping[str, Any], read: set[str]) -> None:
        self._value = value
        self.whole = part
        self.read = read

    def __getitem__(self, key: str) -> Any:
        self.read.add(f"{self.whole}:{key}")
        return self._value[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(f"{self.whole}:{key}")
        return self._value.get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(f"{self.whole}:{key}")
        return key in self._value

    def __iter__(self) -> Iterator[str]:
        self.read.add(self.whole)
        return iter(self._value)

    def __len__(self) -> int:
        self.read.add(self.whole)
        return len(self._value)


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
    same code, gives the same bytes, and anything else costs a render, never a stale page.

    The pickle is made without its memo ("fast" mode, a third faster here): an object met twice
    is written twice, so the bytes depend on the values alone, not on which objects happen to be
    shared. (A value that holds itself cannot be pickled so, and is pickled the usual way.)"""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    with contextlib.suppress(AttributeError):   # (deprecated, and so may go: the usual pickle then)
        pickler.fast = True
    try:
        pickler.dump(value)
    except (ValueError, RecursionError):
        return hashlib.sha256(b"memo" + pickle.dumps(value, protocol=5)).hexdigest()
    return hashlib.sha256(buffer.getbuffer()).hexdigest()


def _composite(kind: bytes, digests: list[Any]) -> str:
    return hashlib.sha256(kind + pickle.dumps(digests, protocol=5)).hexdigest()


class Keys:
    """Page keys over one data document; each part of the document, and each model or target in
    it, is hashed once (a model's page context is the model in ``models``: hashed for the page,
    its digest serves ``models`` too)."""

    def __init__(self, document: Mapping[str, Any], engine: str) -> None:
        self.document = document
        self.engine = engine
        self._parts: dict[str, str] = {}
        self._seen: dict[int, tuple[Any, str]] = {}   # id -> (the object, kept alive; its digest)

    def of(self, value: Any) -> str:
        """The digest of ``value``: :func:`digest`, but a list of mappings (``models``, ``targets``)
        is the digest of its items' digests, and a mapping or list already seen in this build is
        not hashed again (the document is built before, and not changed by, the pages)."""
        if not isinstance(value, (dict, list)):
            return "v" + digest(value)
        hit = self._seen.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            found = "l" + _composite(b"l", [self.of(item) for item in value])
        else:
            found = "v" + digest(value)
        self._seen[id(value)] = (value, found)
        return found

    def part(self, name: str) -> str:
        if name not in self._parts:
            value: Any
            if name == "*":
                self._parts[name] = "d" + _composite(b"d", [(k, self.part(k)) for k in self.document])
                return self._parts[name]
            if name.startswith("shown_versions:") and "#" in name:
                model, _, version = name.split(":", 1)[1].rpartition("#")
                value = version.isdigit() and shows(self.document, model, int(version))
            elif ":" in name and name.split(":", 1)[0] in BY_NAME:
                part, key = name.split(":", 1)
                value = (self.document.get(part) or {}).get(key)
            else:
                value = self.document.get(name)
            self._parts[name] = self.of(value)
        return self._parts[name]

    def key(self, template: str, path: str, context: Mapping[str, Any], reads: list[str]) -> str:
        own = _composite(b"d", [(k, self.of(v)) for k, v in context.items()])
        parts = [self.engine, template, path, own] + [f"{r}:{self.part(r)}" for r in sorted(reads)]
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


# What an output file was when its bytes were checked: a later lstat that differs means the file
# was replaced, rewritten or linked elsewhere since (ctime moves on every write, even one that
# puts the mtime back).
Seen = tuple[int, int, int, int, int, int]


def seen(info: os.stat_result) -> Seen:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_nlink)


def _open_single(path: Path) -> tuple[int, os.stat_result] | None:
    """An open descriptor of ``path`` and its stat, when it is a regular, singly linked file
    (not a link); None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        return None
    return fd, info


def sha256_seen(path: Path) -> tuple[str, Seen] | None:
    """The sha256 of a regular, singly linked file (not a link), and what the file was when read; None otherwise."""
    opened = _open_single(path)
    if opened is None:
        return None
    fd, info = opened
    try:
        with open(fd, "rb", closefd=False) as f:
            digest_ = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)
    return digest_, seen(info)


def sha256_file(path: Path) -> str | None:
    """The sha256 of a regular, singly linked file (not a link); None otherwise."""
    found = sha256_seen(path)
    return found[0] if found else None


def same_bytes(path: Path, data: bytes) -> Seen | None:
    """What ``path`` was when read, when it is a regular, singly linked file (not a link) holding exactly ``data``."""
    opened = _open_single(path)
    if opened is None:
        return None
    fd, info = opened
    try:
        if info.st_size != len(data):
            return None
        with open(fd, "rb", closefd=False) as f:
            return seen(info) if f.read(len(data) + 1) == data else None
    except OSError:
        return None
    finally:
        os.close(fd)


def link_seen(source: Path, target: Path, before: Seen) -> bool:
    """Put ``source`` at ``target`` (a hard link; a copy on a file system without them) when it is
    still the file ``before`` notes, and check that what was linked is that file; False when not
    (the caller fails closed, and nothing of ``target`` is left behind)."""
    try:
        if seen(os.lstat(source)) != before:
            return False
    except OSError:
        return False
    try:
        try:
            os.link(source, target, follow_symlinks=False)   # the same file: same inode and mtime
        except FileNotFoundError:   # (its folder not made yet)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target, follow_symlinks=False)
        now = os.lstat(target)
        ok = (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) == before[:4]
    except OSError:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)   # (another file system: copied, then linked below if it can be)
            ok = seen(os.lstat(source)) == before
        except OSError:
            ok = False
    if not ok:
        with contextlib.suppress(OSError):
            os.unlink(target)
    return ok


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


def link_unchanged(new_site: Path, old_site: Path, listed: list[str], done: Container[str] = ()) -> int:
    """Replace each file of ``new_site`` whose bytes equal the previous site's copy by a hard link
    to that copy; returns how many. Only regular, singly linked files the previous build listed,
    and not those ``done`` (linked already)."""
    linked = 0
    for rel in listed:
        if rel in done:
            continue
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


def _walk_order(src_uri: str) -> tuple[Any, ...]:
    """Where MkDocs' walk of the docs folder puts ``src_uri``: a folder's files first (its index
    first, then by name), then its sub-folders by name (mkdocs.structure.files.get_files)."""
    *folders, name = src_uri.split("/")
    return (*((1, f) for f in folders), (0, (os.path.splitext(name)[0] not in ("index", "README"), name)))


def _render_nothing(page: Any, config: Any, files: Any) -> None:
    """``Page.render`` for an unchanged page: no Markdown, no anchors to check (its HTML is the previous one)."""
    page.content = ""
    page.toc = get_toc([])
    page._title_from_render = None
    page.present_anchor_ids = None   # (MkDocs skips anchor checks against a page it did not render)
    page.links_to_anchors = None


class Unchanged(BasePlugin):
    """MkDocs side: the ``unchanged`` pages (Markdown paths) are pages with no file in the docs
    folder that skip Markdown and the theme, and make no output and no search entry; the
    ``pages`` (Markdown path -> Markdown) are built from memory, written to no file (at 10,000
    models a gigabyte of Markdown was written, read back and removed); notes page order and URLs."""

    def __init__(self, unchanged: Iterable[str] = (), pages: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.unchanged = frozenset(unchanged)
        self.pages = dict(pages or {})   # src path -> Markdown: pages handed to MkDocs in memory
        self._in_memory: frozenset[str] = frozenset()
        self.order: list[str] = []
        self.stubs: dict[str, tuple[str, str]] = {}   # src path -> (url, dest path)
        self.built: dict[str, str] = {}               # src path -> dest path
        self.urls: dict[str, str] = {}                # src path -> URL

    def on_files(self, files: Files, *, config: Any) -> Files:
        """The unchanged pages, and the pages in memory, added where MkDocs' walk of the docs folder
        would have found them (the order of pages is the order of the sitemap and the search index)."""
        if not self.unchanged and not self.pages:
            return files
        docs = os.path.realpath(config["docs_dir"])
        clash = sorted(p for p in (*self.unchanged, *self.pages) if files.get_file_from_path(p) is not None)
        if clash:
            raise SiteBuildFailed(f"{clash[0]} is both a page the build makes and a file in the folder MkDocs reads "
                                  "(a static file of the templates' folder with a page's name?)")
        pages, self.pages = self.pages, {}   # (from here on, the Markdown is held by its File alone)
        self._in_memory = frozenset(pages)

        def generated(path: str) -> File:
            return File.generated(config, path, content=pages.pop(path, ""))

        pending = sorted({*self.unchanged, *pages}, key=_walk_order, reverse=True)
        merged: list[File] = []
        end = 0   # (after the last file of the docs folder: the theme's files come after them)
        for file in files:
            if file.src_dir is not None and os.path.realpath(file.src_dir) == docs and not file.generated_by:
                key = _walk_order(file.src_uri)
                while pending and _walk_order(pending[-1]) < key:
                    merged.append(generated(pending.pop()))
                merged.append(file)
                end = len(merged)
            else:
                merged.append(file)
        merged[end:end] = [generated(path) for path in reversed(pending)]
        return Files(merged)

    def on_env(self, env: jinja2.Environment, *, config: Any, files: Any) -> jinja2.Environment:
        env.loader = jinja2.ChoiceLoader([jinja2.DictLoader({_EMPTY_TEMPLATE: ""}), env.loader])  # type: ignore[list-item]
        return env

    def on_page_markdown(self, markdown: str, *, page: Any, config: Any, files: Any) -> str:
        if page.file.src_uri in self.unchanged:
            page.meta["template"] = _EMPTY_TEMPLATE
            page.meta["search"] = {"exclude": True}
            page.render = functools.partial(_render_nothing, page)
            self.stubs[page.file.src_uri] = (page.url, page.file.dest_uri)
            return ""
        self.built[page.file.src_uri] = page.file.dest_uri
        if page.file.src_uri in self._in_memory:
            page.file.content_string = ""   # (read: MkDocs goes on with the page's own copy; the File's may go)
        return markdown

    @event_priority(100)
    def on_page_context(self, context: Any, *, page: Any, config: Any, nav: Any) -> Any:
        self.order.append(page.url)
        self.urls[page.file.src_uri] = page.url
        return context
