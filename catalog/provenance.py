"""What `register` learns from the machine: artifact checksums and the git commit."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ArtifactNotFound, DataRefNotFound
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


def _hash_file(path: str, digest: "hashlib._Hash", tick: Ticker | None = None) -> int:
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if tick is not None:
                tick(len(chunk))
    return size


def checksum(path: str, progress: Progress | None = None) -> tuple[str, int]:
    """sha256 and size of a file; for a folder, of its files in sorted order.

    A folder's digest covers each file's relative path and content, so renaming
    or changing any file inside it changes the digest.
    """
    digest = hashlib.sha256()
    tick = ticker(progress, f"hash {os.path.basename(path)}", os.path.getsize(path) if os.path.isfile(path) else None)
    if os.path.isfile(path):
        size = _hash_file(path, digest, tick)
        if tick is not None:
            tick.finish()
        return digest.hexdigest(), size
    total = 0
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            inner = hashlib.sha256()
            total += _hash_file(full, inner, tick)
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
    """Absolute path plus checksum for a local artifact; a remote URI as given."""
    path = local_path(uri)
    if path is None:
        return Artifact(uri, None, None)
    path = os.path.abspath(os.path.expanduser(path))
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
