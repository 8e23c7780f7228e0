"""Folders the site generator writes, and the one rule for them: never delete what we did not write.

A folder ``catalog build`` writes (the site, or the kept Markdown ``build_dir``)
is filled in a fresh staging folder beside it, marked with :data:`MARKER` (a
format version and the list of files written), then swapped in: the previous
folder is renamed aside and only the files its own marker lists are removed,
through directory descriptors that never follow a symbolic link. An interrupted
build leaves the old folder or the new one in place, never a mix, and nothing
outside the folder is touched.

A target folder is accepted when it does not exist, is empty, or carries our
marker and holds nothing the marker does not list. It is refused when it is a
file, or when it is, contains or lies inside the lake.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import OutputInLake, OutputNotFolder, OutputNotOurs, UnsafeSitePath

MARKER = ".catalog-site"
FORMAT = 1
_STAGING = ".catalog-staging-"


def safe_join(root: Path, rel: str) -> Path:
    """``root``/``rel`` when ``rel`` is a plain relative path of safe segments; else raise.

    Every value that becomes a path of the site (a model name in ``models/<name>/``,
    a static asset's name) goes through here, so a forged lake row cannot make the
    build write outside its folder even if an upstream check missed it.
    """
    parts = rel.split("/") if isinstance(rel, str) else []
    if not parts or _UNSAFE.search(rel) or any(p in ("", ".", "..") for p in parts):   # (an absolute path: "" first)
        raise UnsafeSitePath(path=rel)
    return root.joinpath(*parts)


_UNSAFE = re.compile(r"[\x00-\x1f\\]")   # a control character or a backslash


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_folder(path: str | os.PathLike[str], lake: str | None = None) -> Path:
    """The real path of a folder the build may replace; raise if it may not (nothing is written)."""
    given = os.fspath(path)
    real = os.path.realpath(given)
    if lake is not None and "://" not in lake:
        lake_real = os.path.realpath(lake)
        relation = ("is" if real == lake_real else "contains" if _inside(lake_real, real)
                    else "lies inside" if _inside(real, lake_real) else None)
        if relation:
            raise OutputInLake(out=given, lake=lake, relation=relation)
    if os.path.lexists(real) and not os.path.isdir(real):
        raise OutputNotFolder(out=given)
    if os.path.isdir(real):
        foreign = _foreign(Path(real))
        if foreign is not None:
            raise OutputNotOurs(out=given, detail=foreign)
    return Path(real)


def _written(folder: Path) -> list[str] | None:
    """The files our marker in ``folder`` lists, or None when there is no valid marker."""
    marker = folder / MARKER
    try:
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            return None
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), list):
        return None
    files = data["files"]
    if not all(isinstance(f, str) for f in files):
        return None
    return files


def listed_files(folder: Path) -> list[str] | None:
    """The files an earlier build wrote into ``folder`` (its marker's list), or None."""
    return _written(folder)


def _entries(folder: Path) -> Iterator[tuple[str, bool]]:
    """Every entry under ``folder`` as (relative path, is a real folder), symlinks not followed."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        base = Path(dirpath)
        for name in dirnames:
            full = base / name
            yield full.relative_to(folder).as_posix(), not full.is_symlink()
        for name in filenames:
            yield (base / name).relative_to(folder).as_posix(), False


def _foreign(folder: Path) -> str | None:
    """Why ``folder`` is not ours to replace, or None (empty, or marked and holding only what it lists)."""
    try:
        next(folder.iterdir())
    except StopIteration:
        return None
    listed = _written(folder)
    if listed is None:
        return f"it is not empty and has no {MARKER} marker of an earlier build"
    files = set(listed) | {MARKER}
    extra = [rel for rel, is_dir in _entries(folder) if not is_dir and rel not in files]
    if extra:
        return f"it holds {len(extra)} file(s) an earlier build did not write (e.g. {extra[0]})"
    return None


@contextlib.contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A fresh folder beside ``target`` (same filesystem) to fill; swapped in when the block ends
    without an error, removed otherwise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=target.parent))
    try:
        yield staging
        _mark(staging)
        _swap(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)  # ours: created above; rmtree never follows links


class Skeleton:
    """The folders of ``files`` (relative paths, e.g. the previous site's files) made under ``root``
    (a fresh :func:`staged` folder) on a thread, from now on; as a context manager, its end waits for
    the thread. The folders no file was put in are removed when the staged folder is marked.

    Why: a rebuild takes a thousand files of the previous site, each in a folder of its own, and
    making those folders is the kernel's work (0.2-0.8 s of system time at 1,000 models here),
    which can run while the build computes its pages. Whoever puts a file in the folder
    meanwhile finds it made, or makes it (``mkdir(parents=True, exist_ok=True)``). Only a head
    start: a path refused or a folder not made is made by whoever needs it."""

    def __init__(self, root: Path, files: Iterable[str]) -> None:
        self.root = root
        self.folders = sorted({rel.rsplit("/", 1)[0] for rel in files if isinstance(rel, str) and "/" in rel})
        self._thread: threading.Thread | None = None
        if self.folders:
            self._thread = threading.Thread(target=self._make, name="catalog-folders", daemon=True)
            self._thread.start()

    def _make(self) -> None:
        for rel in self.folders:
            with contextlib.suppress(OSError, UnsafeSitePath):
                safe_join(self.root, rel).mkdir(parents=True, exist_ok=True)

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Skeleton:
        return self

    def __exit__(self, *exc: object) -> None:
        self.wait()


def _mark(folder: Path) -> None:
    """List the files of ``folder`` (a staging folder of ours) in its marker, after removing the
    folders in it that hold nothing (those a :class:`Skeleton` made and no file was put in)."""
    found: list[str] = []
    emptied: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False, followlinks=False):
        base = Path(dirpath)
        kept = [name for name in dirnames if os.fspath(base / name) not in emptied]
        found.extend((base / name).relative_to(folder).as_posix()
                     for name in [*filenames, *(d for d in kept if (base / d).is_symlink())])
        if not filenames and not kept and base != folder:
            with contextlib.suppress(OSError):
                os.rmdir(base)
                emptied.add(os.fspath(base))
    files = sorted(found)
    (folder / MARKER).write_text(json.dumps({"format": FORMAT, "files": files}, indent=0) + "\n", encoding="utf-8")


def _swap(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the folder there before (checked ours) goes, by its marker only."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    listed = _written(target)
    if listed is None:  # an empty folder (checked before the build): nothing of anyone's to remove
        os.rmdir(target)
        os.rename(staging, target)
        return
    old = target.with_name(f"{_STAGING}old-{uuid.uuid4().hex[:8]}")
    os.rename(target, old)
    os.rename(staging, target)
    remove_listed(old, [*listed, MARKER])


def remove_listed(folder: Path, files: list[str]) -> None:
    """Remove the ``files`` (relative paths) under ``folder``, then the folders left empty.

    Each folder is opened once, from its parent's descriptor, with ``O_NOFOLLOW``: a
    symbolic link met on the way is never followed out of ``folder``. A file not listed
    is kept (and so is its folder, and ``folder``, then).
    """
    tree: _Tree = ({}, set())
    for rel in files:
        parts = rel.split("/")
        if any(p in ("", ".", "..") for p in parts):
            continue
        node = tree
        for name in parts[:-1]:
            node = node[0].setdefault(name, ({}, set()))
        node[1].add(parts[-1])
    root_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _remove_at(root_fd, tree)
    finally:
        os.close(root_fd)
    with contextlib.suppress(OSError):
        os.rmdir(folder)


# A folder's listed files: (its sub-folders by name, the names of its files).
_Tree = tuple[dict[str, "_Tree"], set[str]]


def _remove_at(fd: int, node: _Tree) -> None:
    folders, names = node
    for name in names:
        with contextlib.suppress(OSError):
            if not stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=fd)
    for name, child in folders.items():
        try:
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError:
            continue   # (gone, or a symbolic link: not followed)
        try:
            _remove_at(sub, child)
        finally:
            os.close(sub)
        with contextlib.suppress(OSError):
            os.rmdir(name, dir_fd=fd)   # (only when left empty)
