"""What `register` learns from the machine: artifact checksums and the git commit."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ArtifactNotFound, ArtifactNotRegular, DataRefNotFound
from .progress import Progress, Ticker, ticker
from .validate import strip_credentials

_CHUNK = 1 << 20


def local_path(uri: str) -> str | None:
    """The local filesystem path a URI names, or None for a remote URI."""
    if uri.startswith("file://"):
        return urlsplit(uri).path
    parts = urlsplit(uri)
    if parts.scheme and len(parts.scheme) > 1:  # a one-letter scheme is a Windows drive
        return None
    return uri


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, words in (
        (stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return words
    return "not a regular file"


# Opened without blocking (a FIFO put in a file's place would wait for a writer) and
# without following a link put in its place; what was opened is checked with fstat.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _hash_file(path: str, digest: "hashlib._Hash", shown: str, tick: Ticker | None = None) -> int:
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if os.path.islink(path):
            raise ArtifactNotRegular(path=shown, kind="a symbolic link", detail="") from None
        raise exc
    size = 0
    with open(fd, "rb", closefd=True) as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise ArtifactNotRegular(path=shown, kind=_kind(mode), detail="")
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if tick is not None:
                tick(len(chunk))
    return size


def _files(root: str) -> list[tuple[str, str]]:
    """(relative path, full path) of every file under the folder ``root``, sorted; refused
    when anything inside is not a regular file or a folder (a link may point anywhere and
    change later; a pipe or a device has no content to pin), or when it holds no file."""
    found: list[tuple[str, str]] = []

    def walk(folder: str, rel: str) -> None:
        with os.scandir(folder) as entries:
            listed = sorted(entries, key=lambda e: e.name)
        folders = []
        for entry in listed:  # a folder's files, then its folders: the order the digest has always had
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                folders.append(entry)
            elif stat.S_ISREG(mode):
                found.append((f"{rel}{entry.name}", entry.path))
            else:
                raise ArtifactNotRegular(path=entry.path, kind=_kind(mode), detail=f" inside the folder {root}")
        for entry in folders:
            walk(entry.path, f"{rel}{entry.name}/")

    walk(root, "")
    if not found:
        raise ArtifactNotRegular(path=root, kind="a folder with no files in it", detail=" (nothing to load)")
    return found


def regular_artifact(path: str) -> list[tuple[str, str]] | None:
    """None for a regular file; a folder's files as (relative, full) paths, sorted;
    :class:`ArtifactNotRegular` for anything else. Nothing is opened (``stat`` only:
    opening a FIFO would block)."""
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        return None
    if not stat.S_ISDIR(mode):
        raise ArtifactNotRegular(path=path, kind=_kind(mode), detail="")
    return _files(path)


def checksum(path: str, progress: Progress | None = None) -> tuple[str, int]:
    """sha256 and size of a regular file; for a folder, of its files in sorted order.

    A folder's digest covers each file's relative path and content, so renaming
    or changing any file inside it changes the digest. Anything else (a pipe, a
    device, a socket, a folder holding one or a symbolic link, an empty folder)
    raises :class:`ArtifactNotRegular` without being read. Read a chunk at a time.
    """
    digest = hashlib.sha256()
    files = regular_artifact(path)
    size_of = os.path.getsize(path) if files is None else sum(os.path.getsize(full) for _, full in files)
    tick = ticker(progress, f"hash {os.path.basename(path)}", size_of)
    if files is None:
        size = _hash_file(path, digest, path, tick)
        if tick is not None:
            tick.finish()
        return digest.hexdigest(), size
    total = 0
    for rel, full in files:
        inner = hashlib.sha256()
        total += _hash_file(full, inner, full, tick)
        digest.update(f"{rel}\0{inner.hexdigest()}\n".encode())
    if tick is not None:
        tick.finish()
    return digest.hexdigest(), total


@dataclass(frozen=True)
class Artifact:
    uri: str
    sha256: str | None
    bytes: int | None


def inspect_artifact(uri: str, progress: Progress | None = None) -> Artifact:
    """Absolute path plus checksum for a local artifact; a remote URI as given.

    A symbolic link given as the artifact is resolved: the real file is recorded,
    so that a link pointed elsewhere later does not change what was registered."""
    path = local_path(uri)
    if path is None:
        return Artifact(uri, None, None)
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.islink(path):
        path = os.path.realpath(path)
    if not os.path.exists(path):
        raise ArtifactNotFound(path=path)
    sha, size = checksum(path, progress)
    return Artifact(path, sha, size)


def check_data_ref(ref: str, allow_missing: bool) -> str:
    """A data ref is a pointer; a local one must exist (the registry never copies data)."""
    path = local_path(ref.split("@", 1)[0] if "://" not in ref else ref)
    if path is None:
        return ref
    if not allow_missing and not os.path.exists(os.path.abspath(os.path.expanduser(path))):
        raise DataRefNotFound(path=path)
    return ref


@dataclass(frozen=True)
class GitInfo:
    repo: str | None
    commit: str | None
    dirty: bool | None


def git_info(cwd: str | None = None) -> GitInfo:
    """The repository, commit and dirtiness of the work tree we run in, if any."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return GitInfo(None, None, None)
    remote = git("remote", "get-url", "origin") or git("rev-parse", "--show-toplevel")
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitInfo(strip_credentials(remote) if remote else None, commit, bool(status))
