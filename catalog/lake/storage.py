"""The one filesystem layer every lake write and listing goes through.

The lake needs three primitives beyond plain reads: an atomic write (a reader
never sees half a file), an exclusive create (claiming a version number or a
decision's place in a model's sequence) and a compare-and-swap (taking a lease),
plus a listing. ``Storage`` names them; :class:`LocalStorage` implements them
with POSIX calls (fsync of file and folder, ``rename``, ``link``) because
pyarrow's and fsspec's filesystems offer none of the durability primitives. An
object-store backend implements the same methods with conditional puts
(``If-None-Match: *``, ``If-Match``). No lake protocol holds a lock: what a
network cannot keep, the lake does not ask for.

Paths given to a storage are relative, ``/``-separated and checked: nothing can
name a file outside the lake root. The files of a lake are regular files in real
folders below the root: :meth:`Storage.entries` and :meth:`Storage.walk` report
each entry's kind without following links, so that a symlink (or a FIFO, a device,
a socket) placed in the lake is never read as part of it. The root itself is
resolved once when the storage opens: a ``--lake`` given as a link to a folder is
that folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from ..errors import InvalidValue, LakeLinked, LakeNotFolder, LakeReadOnly, LakeSlotIsFile

T = TypeVar("T")

# Where the lake is when neither --lake nor CATALOG_LAKE says.
DEFAULT_LAKE = os.path.join("data", "lake")

# What an entry of a lake folder is (never following a link): only "file" entries in
# "dir" entries are part of the lake.
FILE, DIR, LINK, OTHER = "file", "dir", "link", "other"


def check_relative(path: str) -> str:
    """Return ``path`` if it is a safe relative lake path, else raise."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\x00" in path
        or "\\" in path
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise InvalidValue(f"unsafe lake path {path!r}: paths stay inside the lake")
    return path


class Storage(Protocol):
    """What the lake asks of a place to keep files."""

    root: str
    # What the lake is called for people (a folder's path, an s3:// URL).
    location: str
    # Whether stamp() changes exactly when a listing does (an object store's listing
    # digest); False where it is a folder's coarse modification time (see lake.settled).
    exact_stamps: bool

    def exists(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str]: ...
    def entries(self, path: str) -> list[tuple[str, str]]: ...
    def walk(self, path: str) -> list[tuple[str, str]]: ...
    def read_bytes(self, path: str) -> bytes: ...
    def write_atomic(self, path: str, data: bytes, *, sync: bool = True) -> None: ...
    def write_atomic_with(self, path: str, fill: Callable[[str], T]) -> T: ...
    def create_exclusive(self, path: str, data: bytes, *, sync: bool = True) -> bool: ...
    def sync(self, folders: Sequence[str] | None = None) -> None: ...
    def remove(self, path: str) -> None: ...
    def size(self, path: str) -> int: ...
    def stat(self, path: str) -> tuple[int, int, int]: ...
    def move(self, path: str, to: str) -> None: ...
    def stamp(self, path: str) -> int: ...
    def local_path(self, path: str) -> str: ...
    def read_tagged(self, path: str) -> tuple[bytes, str] | None: ...
    def replace_if(self, path: str, data: bytes, tag: str | None, *, sync: bool = True) -> bool: ...
    def purge_history(self, path: str) -> None: ...


_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


class LocalStorage:
    """A lake in a local folder.

    The operating system's refusals to write are translated here, where the lake
    path is known, into :class:`LakeReadOnly` (a read-only mount, no write
    permission) and :class:`LakeSlotIsFile` (a file where the lake needs a
    folder): normal conditions, not bugs, for the API and the CLI alike.
    """

    def __init__(self, root: str | os.PathLike[str], *, durable: bool = True) -> None:
        # Resolved once: a lake given as a link to a folder is that folder, and below
        # it nothing is followed (see entries).
        self.root = os.path.realpath(os.fspath(root))
        self.location = self.root
        self.exact_stamps = False
        self.durable = durable
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise LakeNotFolder(lake=self.root)

    @contextlib.contextmanager
    def _writing(self, path: str) -> Iterator[None]:
        """Translate the OS's "you may not write here" into the catalog's errors."""
        try:
            yield
        except NotADirectoryError as exc:
            raise LakeSlotIsFile(path=self._rel(exc.filename, path), lake=self.root) from None
        except OSError as exc:
            if exc.errno in _READ_ONLY:
                raise LakeReadOnly(lake=self.root, detail=exc.strerror or str(exc)) from None
            raise

    def _rel(self, filename: object, fallback: str) -> str:
        full = os.fspath(filename) if isinstance(filename, (str, os.PathLike)) else fallback
        return os.path.relpath(full, self.root) if os.path.isabs(full) else full

    def local_path(self, path: str) -> str:
        return os.path.join(self.root, *check_relative(path).split("/"))

    def exists(self, path: str) -> bool:
        return os.path.exists(self.local_path(path))

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.local_path(path)))
        except FileNotFoundError:
            return []

    def entries(self, path: str) -> list[tuple[str, str]]:
        """(name, kind) of each entry of the folder ``path``, sorted, links not followed:
        kind is FILE, DIR, LINK or OTHER (FIFO, device, socket). [] when ``path`` is
        missing or is not a real folder (see :meth:`walk` for what it is then)."""
        if self._kind(path) != DIR:
            return []
        out = []
        try:
            with os.scandir(self.local_path(path)) as found:
                for entry in found:
                    try:
                        out.append((entry.name, _entry_kind(entry)))
                    except FileNotFoundError:
                        continue  # removed since the listing (a compaction): not there now
        except FileNotFoundError:
            return []
        return sorted(out)

    def walk(self, path: str) -> list[tuple[str, str]]:
        """(lake path, kind) of every entry below the folder ``path``, descending only into
        real folders; ``path`` itself when it is not a real folder (a link in its place)."""
        kind = self._kind(path)
        if kind is None:
            return []
        if kind != DIR:
            return [(path, kind)]
        out: list[tuple[str, str]] = []
        for name, kind in self.entries(path):
            out.append((f"{path}/{name}", kind))
            if kind == DIR:
                out.extend(self.walk(f"{path}/{name}"))
        return out

    def _kind(self, path: str) -> str | None:
        try:
            return _kind(os.lstat(self.local_path(path)).st_mode)
        except FileNotFoundError:
            return None

    def _refuse_links(self, folder: str) -> None:
        """Refuse to write below a link in the lake (it would write into another folder)."""
        rel = os.path.relpath(folder, self.root)
        if rel == "." or rel.startswith(".."):
            return
        here = self.root
        for part in rel.split(os.sep):
            here = os.path.join(here, part)
            if os.path.islink(here):
                raise LakeLinked(path=os.path.relpath(here, self.root).replace(os.sep, "/"))

    def read_bytes(self, path: str) -> bytes:
        with open(self.local_path(path), "rb") as fh:
            return fh.read()

    def stamp(self, path: str) -> int:
        """Modification time (ns) of a folder: changes when a file enters or leaves it."""
        try:
            return os.stat(self.local_path(path)).st_mtime_ns
        except FileNotFoundError:
            return 0

    def _ensure_dir(self, folder: str, *, sync: bool = True) -> None:
        self._refuse_links(folder)
        if not os.path.isdir(folder):
            with self._writing(folder):
                try:
                    os.makedirs(folder, exist_ok=True)
                except FileExistsError:  # a file where the folder belongs
                    raise LakeSlotIsFile(path=self._rel(folder, folder), lake=self.root) from None
            if self.durable and sync:
                self._fsync_dir(os.path.dirname(folder))

    def sync(self, folders: Sequence[str] | None = None) -> None:
        """Make the files created in ``folders`` (and the folders themselves) durable, one
        fsync each; with None, every write so far, by one ``sync`` of the machine."""
        if not self.durable:
            return
        if folders is None:
            os.sync()
            return
        for folder in folders:
            self._fsync_dir(self.local_path(folder))
        self._fsync_dir(self.root)  # in case a folder named is itself new

    def _fsync_dir(self, folder: str) -> None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_atomic(self, path: str, data: bytes, *, sync: bool = True) -> None:
        """Write ``data`` to a temporary file beside the target, fsync it, rename it in.
        With ``sync=False`` nothing is fsynced (a derived file: after a crash it may be
        the older one, or torn, never half of this one and half of another)."""

        def write(tmp: str) -> None:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as fh:
                fh.write(data)
                fh.flush()
                if self.durable and sync:
                    os.fsync(fh.fileno())

        self._atomic(path, write, sync=sync)

    def write_atomic_with(self, path: str, fill: Callable[[str], T]) -> T:
        """Like :meth:`write_atomic`, but ``fill`` writes the file itself, given the local
        path of a temporary name: for output too large to hold in memory."""

        def write(tmp: str) -> T:
            result = fill(tmp)
            if self.durable:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return result

        return self._atomic(path, write)

    def _atomic(self, path: str, write: Callable[[str], T], *, sync: bool = True) -> T:
        final = self.local_path(path)
        folder = os.path.dirname(final)
        self._ensure_dir(folder, sync=sync)
        # The temporary name ends in .tmp so no reader's *.parquet glob matches it.
        tmp = os.path.join(folder, f".{os.path.basename(final)}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with self._writing(path):
                result = write(tmp)
                os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if self.durable and sync:
            self._fsync_dir(folder)
        return result

    def create_exclusive(self, path: str, data: bytes, *, sync: bool = True) -> bool:
        """Create ``path`` holding ``data`` only if it does not exist; False when someone
        else has it (S3's ``If-None-Match: *``).

        The file appears whole or not at all: ``data`` goes to a temporary name
        first, which is then hard-linked to ``path`` (``link`` fails when the name
        exists, atomically), so no reader ever sees a claim without its body. With
        ``sync`` (and a durable storage) the content and the folder are fsynced;
        with ``sync=False`` only the name is made durable, later, by the caller
        (:meth:`sync`), which suits files whose name is what counts (version claims).
        """
        final = self.local_path(path)
        folder = os.path.dirname(final)
        self._ensure_dir(folder, sync=sync)
        tmp = os.path.join(folder, f".{os.path.basename(final)}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with self._writing(path):
                with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as fh:
                    fh.write(data)
                    if self.durable and sync:
                        fh.flush()
                        os.fsync(fh.fileno())
                try:
                    os.link(tmp, final)
                except FileExistsError:
                    return False
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                        raise
                    return self._create_in_place(final, data)  # a file system without hard links
        finally:
            # (OSError: on a read-only mount, unlinking a name never created says EROFS)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if self.durable and sync:
            self._fsync_dir(folder)
        return True

    def _create_in_place(self, final: str, data: bytes) -> bool:
        """O_EXCL create then write: exclusive, but a reader may see it empty for a moment."""
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True

    def size(self, path: str) -> int:
        """Size in bytes (0 for a file that is gone)."""
        try:
            return os.path.getsize(self.local_path(path))
        except FileNotFoundError:
            return 0

    def stat(self, path: str) -> tuple[int, int, int]:
        """(size in bytes, modification time in ns, inode) of the file ``path``: what
        changes when it is rewritten. Raises FileNotFoundError when it is gone."""
        st = os.stat(self.local_path(path))
        return st.st_size, st.st_mtime_ns, st.st_ino

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError), self._writing(path):
            os.unlink(self.local_path(path))

    def move(self, path: str, to: str) -> None:
        """Rename ``path`` to ``to`` inside the lake (both folders fsynced when durable)."""
        source, target = self.local_path(path), self.local_path(to)
        self._ensure_dir(os.path.dirname(target))
        with self._writing(to):
            os.rename(source, target)
        if self.durable:
            self._fsync_dir(os.path.dirname(target))
            self._fsync_dir(os.path.dirname(source))

    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        """(content, tag) of the file ``path``, None when it is missing. The tag changes
        whenever the file is replaced: what :meth:`replace_if` compares (an ETag)."""
        try:
            data = self.read_bytes(path)
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def replace_if(self, path: str, data: bytes, tag: str | None, *, sync: bool = True) -> bool:
        """Write ``data`` to ``path`` only if its tag is still ``tag`` (None: only if it
        does not exist); False when someone changed it first. (S3's ``If-Match`` and
        ``If-None-Match: *``; here the compare and the rename run under an flock of a
        hidden file beside it, which one machine's folder can keep.)"""
        if tag is None:
            return self.create_exclusive(path, data, sync=sync)
        final = self.local_path(path)
        folder = os.path.dirname(final)
        self._ensure_dir(folder, sync=sync)
        guard = os.path.join(folder, f".{os.path.basename(final)}.cas")
        with self._writing(path):
            fd = os.open(guard, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            found = self.read_tagged(path)
            if found is None or found[1] != tag:
                return False
            if sync:
                self.write_atomic(path, data)
            else:
                self.write_atomic(path, data, sync=False)
            return True
        finally:
            os.close(fd)

    def purge_history(self, path: str) -> None:
        """Nothing to do: a folder keeps no older versions of a file (an object store with
        versioning does: see S3Storage.purge_history)."""


def open_storage(location: str | os.PathLike[str], *, durable: bool = True) -> Storage:
    """The storage for a lake location: a folder (or ``file://`` URL), or ``s3://bucket/prefix``
    (an object store, through the optional ``s3`` extra; see catalog.lake.s3)."""
    text = os.fspath(location)
    if text.startswith("s3://"):
        import importlib.util

        if importlib.util.find_spec("boto3") is None:  # the optional extra's client (imported on first use)
            from ..errors import ObjectStoreExtraMissing

            raise ObjectStoreExtraMissing(lake=text) from None
        from .s3 import S3Storage

        return S3Storage(text)
    if "://" in text and not text.startswith("file://"):
        from ..errors import InvalidValue

        raise InvalidValue(
            f"lake {text!r}: use a local folder, file://PATH or s3://BUCKET/PREFIX "
            "(other object stores through their S3-compatible endpoint)"
        )
    return LocalStorage(text.removeprefix("file://"), durable=durable)


def relative(storage: Storage, local: str) -> str:
    """The lake path of a file given by its local path (what :meth:`Storage.local_path` gave)."""
    return os.path.relpath(local, storage.root).replace(os.sep, "/")


def _entry_kind(entry: os.DirEntry[str]) -> str:
    """An entry's kind from the folder listing itself (no system call where the
    file system gives the type, as local ones do)."""
    if entry.is_symlink():
        return LINK
    if entry.is_file(follow_symlinks=False):
        return FILE
    if entry.is_dir(follow_symlinks=False):
        return DIR
    return _kind(entry.stat(follow_symlinks=False).st_mode)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return LINK
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return DIR
    return OTHER
