"""A lake in an S3-compatible object store: ``s3://bucket/prefix``.

Every lake primitive maps onto one or two requests:

* exclusive create: ``PUT`` with ``If-None-Match: *`` (412: someone has it);
* compare-and-swap: ``PUT`` with ``If-Match: <etag>``;
* atomic write: a plain ``PUT`` (an object appears whole or not at all);
* listing: ``ListObjectsV2``; a folder's stamp is a digest of its listing (names
  and ETags), exact where a folder's modification time is coarse.

The readers (DuckDB, Parquet footers, the tail tables) read local paths. So the
storage keeps a private, per-process *mirror* of the objects it has listed, in a
temporary folder that is its ``root``: each listing (:meth:`S3Storage.entries`,
:meth:`S3Storage.walk`) downloads the objects that are new or changed (by ETag)
and drops the mirrored files no longer listed. The mirror is nobody else's and is
removed when the storage is closed, garbage-collected or the process exits.

Endpoint, region and credentials come the way the AWS tools take them (boto3's
chain: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE`` and the profiles of ``~/.aws``), so any S3-compatible service works.

Before the first write of a process to a lake, the server is probed: a second
conditional create of one key must be refused, else nothing is written
(ObjectStoreUnsafe). No lake protocol takes a lock (see catalog.lake.lease).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from ..errors import (
    BucketNotFound,
    HistoryKept,
    InvalidValue,
    LakeReadOnly,
    ObjectStoreDenied,
    ObjectStoreNoCredentials,
    ObjectStoreUnreachable,
    ObjectStoreUnsafe,
)
from .storage import DIR, FILE, check_relative

T = TypeVar("T")

# Lakes (endpoint, bucket) whose server this process found to honour conditional writes.
_PROBED: set[tuple[str, str]] = set()
_PROBED_LOCK = threading.Lock()
# How often a conditional PUT is sent again after a 409 (a concurrent conditional write
# to the same key was in flight: AWS asks the client to retry).
_CONFLICT_RETRIES = 5


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket[/prefix]``; the prefix has no leading or trailing '/'."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not bucket or any(p in ("", ".", "..") for p in prefix.split("/") if prefix):
        raise InvalidValue(f"invalid object-store lake {url!r}: use s3://BUCKET or s3://BUCKET/PREFIX")
    return bucket, prefix


# One client per set of AWS settings, shared by the storages of a process (a client takes
# tens of ms to make, and boto3's clients are thread-safe).
_CLIENTS: dict[tuple[tuple[str, str], ...], Any] = {}
# A file written by write_atomic_with larger than this is uploaded in parts (one PUT
# takes at most 5 GB).
MULTIPART_BYTES = 256 * 2**20


def make_client() -> Any:
    """An S3 client configured the way the AWS CLI would be (environment, then profiles)."""
    settings = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_") or k == "HOME"))
    with _PROBED_LOCK:
        if settings in _CLIENTS:
            return _CLIENTS[settings]
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    client = session.client(
        "s3",
        config=Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=16,
                      connect_timeout=10, read_timeout=60),
    )
    with _PROBED_LOCK:
        return _CLIENTS.setdefault(settings, client)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: Exception) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _retried(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0) > 0


def _missing(exc: Exception) -> bool:
    return _code(exc) in ("NoSuchKey", "404", "NotFound") or _status(exc) == 404 and _code(exc) != "NoSuchBucket"


def _safe(path: str) -> bool:
    """Whether an object's lake path is one a file of the lake can have (no '..', no '//')."""
    try:
        check_relative(path)
    except InvalidValue:
        return False
    return True


def _etag_int(tag: str) -> int:
    """A stable 63-bit number from an ETag (what stat() reports in place of a modification time)."""
    return int.from_bytes(hashlib.sha256(tag.encode()).digest()[:8], "big") >> 1


class S3Storage:
    """A lake under ``s3://bucket/prefix``, read through a private local mirror (see the module)."""

    exact_stamps = True

    def __init__(self, url: str, *, client: Any = None) -> None:
        self.bucket, self.prefix = parse_url(url)
        self.location = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self._client = client
        self._base = tempfile.mkdtemp(prefix="catalog-s3-")
        self.root = os.path.realpath(os.path.join(self._base, "lake"))
        self._scratch = os.path.join(self._base, "tmp")
        os.makedirs(self.root)
        os.makedirs(self._scratch)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._base, True)
        self._tags: dict[str, str] = {}  # lake path -> ETag of the mirrored copy
        self._mutex = threading.RLock()

    # -- plumbing -----------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._calls(write=False):
                self._client = make_client()
        return self._client

    def close(self) -> None:
        """Remove the local mirror (also done at garbage collection and at exit). The
        storage stays usable: a later listing fills a new mirror."""
        with self._mutex:
            self._tags.clear()
            shutil.rmtree(self._base, ignore_errors=True)

    def _scratch_file(self) -> str:
        """A new temporary file name outside the mirror (never named *.parquet)."""
        os.makedirs(self._scratch, exist_ok=True)
        return os.path.join(self._scratch, f"{uuid.uuid4().hex}.tmp")

    def _key(self, path: str) -> str:
        check_relative(path)
        return f"{self.prefix}/{path}" if self.prefix else path

    def _folder_key(self, path: str) -> str:
        """The key prefix of the folder ``path`` ('' for the lake root)."""
        if path in ("", "."):
            return f"{self.prefix}/" if self.prefix else ""
        return self._key(path) + "/"

    @contextlib.contextmanager
    def _calls(self, *, write: bool) -> Iterator[None]:
        """Translate the client's failures into the catalog's one-line errors."""
        from botocore import exceptions as bx

        try:
            yield
        except bx.ClientError as exc:
            code = _code(exc)
            if code == "NoSuchBucket":
                raise BucketNotFound(bucket=self.bucket, lake=self.location) from None
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
                raise ObjectStoreNoCredentials(lake=self.location, detail=f"the server says {code}") from None
            if code in ("AccessDenied", "AllAccessDisabled", "403") or _status(exc) == 403:
                if write:
                    raise LakeReadOnly(lake=self.location, detail="access denied to these credentials") from None
                raise ObjectStoreDenied(lake=self.location, detail=code or "403") from None
            raise
        except (bx.NoCredentialsError, bx.PartialCredentialsError, bx.ProfileNotFound) as exc:
            raise ObjectStoreNoCredentials(lake=self.location, detail=str(exc).rstrip(".")) from None
        except (bx.ConnectionError, bx.HTTPClientError) as exc:  # no connection, a timeout, a connection closed
            raise ObjectStoreUnreachable(lake=self.location, detail=str(exc).split("\n")[0].rstrip(".")) from None
        except ValueError as exc:  # botocore refuses a malformed endpoint URL this way
            if "endpoint" in str(exc).lower():
                raise ObjectStoreUnreachable(lake=self.location, detail=str(exc).rstrip(".")) from None
            raise

    def _put(self, path: str, body: Any, **conditions: str) -> str:
        """PUT the object ``path``; returns its ETag. Raises the client's error on a refusal."""
        response = self.client.put_object(Bucket=self.bucket, Key=self._key(path), Body=body, **conditions)
        return str(response["ETag"])

    # -- the mirror ------------------------------------------------------------------

    def local_path(self, path: str) -> str:
        return os.path.join(self.root, *check_relative(path).split("/"))

    def _mirror_bytes(self, path: str, data: bytes, tag: str) -> None:
        """Put ``data`` (the object ``path`` at ``tag``) in the mirror."""
        tmp = self._scratch_file()
        with open(tmp, "wb") as fh:
            fh.write(data)
        self._mirror_file(path, tmp, tag)

    def _mirror_file(self, path: str, local: str, tag: str) -> None:
        """Move the local file ``local`` into the mirror as the object ``path`` at ``tag``."""
        final = self.local_path(path)
        with self._mutex:
            try:
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(local, final)
            except OSError:  # a key that is also a "folder" (possible in S3, not here): not mirrored
                with contextlib.suppress(OSError):
                    os.unlink(local)
                self._tags.pop(path, None)
                return
            self._tags[path] = tag

    def _forget(self, path: str) -> None:
        with self._mutex:
            self._tags.pop(path, None)
            with contextlib.suppress(OSError):
                os.unlink(self.local_path(path))

    def _fetch(self, path: str, tag: str) -> None:
        """Bring the object ``path`` into the mirror unless its copy there is at ``tag``."""
        if self._tags.get(path) == tag and os.path.isfile(self.local_path(path)):
            return
        with self._calls(write=False):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(path))
            except Exception as exc:
                if _missing(exc):  # removed since the listing: not there now
                    self._forget(path)
                    return
                raise
            tmp = self._scratch_file()
            with open(tmp, "wb") as fh:
                for chunk in response["Body"].iter_chunks(1 << 20):
                    fh.write(chunk)
        self._mirror_file(path, tmp, str(response["ETag"]))

    def _prune(self, folder: str, listed: set[str], *, deep: bool) -> None:
        """Drop mirrored files of ``folder`` (and below it when ``deep``) that are not ``listed``."""
        base = self.root if folder in ("", ".") else self.local_path(folder)
        if not os.path.isdir(base):
            return
        with self._mutex:
            for here, _dirs, files in os.walk(base):
                rel_here = os.path.relpath(here, self.root).replace(os.sep, "/")
                for name in files:
                    rel = name if rel_here == "." else f"{rel_here}/{name}"
                    if rel not in listed:
                        self._forget(rel)
                if not deep:
                    break

    def _list(self, path: str, *, deep: bool) -> tuple[dict[str, str], set[str]]:
        """({lake path: ETag} of the objects in folder ``path`` (below it when ``deep``),
        lake paths of its sub-folders (direct ones; every one when ``deep``))."""
        start = self._folder_key(path)
        strip = len(f"{self.prefix}/") if self.prefix else 0
        files: dict[str, str] = {}
        dirs: set[str] = set()
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": start}
        if not deep:
            args["Delimiter"] = "/"
        with self._calls(write=False):
            for page in self.client.get_paginator("list_objects_v2").paginate(**args):
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    if key.endswith("/") or not _safe(key[strip:]):
                        continue  # a "folder marker" some tools create, or a name no lake file has
                    files[key[strip:]] = str(item["ETag"])
                for common in page.get("CommonPrefixes", ()):
                    if _safe(common["Prefix"][strip:].rstrip("/")):
                        dirs.add(common["Prefix"][strip:].rstrip("/"))
        if deep:
            top = len(path.split("/")) if path not in ("", ".") else 0
            for rel in files:
                parts = rel.split("/")
                for i in range(top + 1, len(parts)):
                    dirs.add("/".join(parts[:i]))
        return files, dirs

    def _refresh(self, path: str, *, deep: bool) -> tuple[dict[str, str], set[str]]:
        """List ``path`` and make the mirror match what was listed."""
        files, dirs = self._list(path, deep=deep)
        os.makedirs(self.root, exist_ok=True)  # (again, after a close)
        self._prune(path, set(files), deep=deep)
        for rel, tag in files.items():
            self._fetch(rel, tag)
        return files, dirs

    # -- reading ------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """Whether ``path`` is an object or a folder (a prefix of some): one request when
        the guess is right (a name with a dot is asked as an object first)."""
        looks_like_file = "." in path.rsplit("/", 1)[-1]
        return (self._is_object(path) or self._is_folder(path)) if looks_like_file else \
            (self._is_folder(path) or self._is_object(path))

    def _is_folder(self, path: str) -> bool:
        with self._calls(write=False):
            found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._folder_key(path), MaxKeys=1)
        return bool(found.get("KeyCount") or found.get("Contents"))

    def listdir(self, path: str) -> list[str]:
        files, dirs = self._list(path, deep=False)
        return sorted({rel.rsplit("/", 1)[-1] for rel in (*files, *dirs)})

    def entries(self, path: str) -> list[tuple[str, str]]:
        files, dirs = self._refresh(path, deep=False)
        out = {rel.rsplit("/", 1)[-1]: FILE for rel in files}
        out.update({rel.rsplit("/", 1)[-1]: DIR for rel in dirs})
        return sorted(out.items())

    def walk(self, path: str) -> list[tuple[str, str]]:
        files, dirs = self._refresh(path, deep=True)
        if not files and not dirs:
            return [(path, FILE)] if self._is_object(path) else []
        children: dict[str, list[tuple[str, str]]] = {}
        for rel, kind in [*((f, FILE) for f in files), *((d, DIR) for d in dirs)]:
            children.setdefault(rel.rsplit("/", 1)[0] if "/" in rel else "", []).append((rel, kind))
        out: list[tuple[str, str]] = []

        def visit(folder: str) -> None:
            for rel, kind in sorted(children.get(folder, ())):
                out.append((rel, kind))
                if kind == DIR:
                    visit(rel)

        visit(path)
        return out

    def _is_object(self, path: str) -> bool:
        with self._calls(write=False):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(path))
                return True
            except Exception as exc:
                if _missing(exc):
                    return False
                raise

    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        with self._calls(write=False):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(path))
            except Exception as exc:
                if _missing(exc):
                    return None
                raise
            return response["Body"].read(), str(response["ETag"])

    def read_bytes(self, path: str) -> bytes:
        found = self.read_tagged(path)
        if found is None:
            raise FileNotFoundError(f"{self.location}/{path}")
        return found[0]

    def stamp(self, path: str) -> int:
        """A digest of the folder's listing (names and ETags): changes exactly when a
        file enters, leaves or is replaced. 0 for an empty or missing folder."""
        files, dirs = self._list(path, deep=False)
        if not files and not dirs:
            return 0
        digest = hashlib.sha256()
        for rel in sorted(files):
            digest.update(f"{rel}\0{files[rel]}\n".encode())
        for rel in sorted(dirs):
            digest.update(f"{rel}/\n".encode())
        return int.from_bytes(digest.digest()[:8], "big") >> 1 or 1

    def size(self, path: str) -> int:
        try:
            return self.stat(path)[0]
        except FileNotFoundError:
            return 0

    def stat(self, path: str) -> tuple[int, int, int]:
        """(size, a number from the ETag, 0): the mirrored copy's when the file was listed,
        else the object's (one HEAD). Raises FileNotFoundError when it is gone."""
        tag = self._tags.get(path)
        if tag is not None:
            with contextlib.suppress(FileNotFoundError):
                return os.path.getsize(self.local_path(path)), _etag_int(tag), 0
        with self._calls(write=False):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(path))
            except Exception as exc:
                if _missing(exc):
                    raise FileNotFoundError(f"{self.location}/{path}") from None
                raise
        return int(head["ContentLength"]), _etag_int(str(head["ETag"])), 0

    # -- writing ----------------------------------------------------------------------------

    def _before_write(self) -> None:
        """Probe, once per process and bucket, that the server honours conditional writes."""
        endpoint = str(getattr(self.client.meta, "endpoint_url", ""))
        with _PROBED_LOCK:
            if (endpoint, self.bucket) in _PROBED:
                return
            self._probe()
            _PROBED.add((endpoint, self.bucket))

    def _probe(self) -> None:
        """Create a probe key twice with If-None-Match: * (the second must be refused) and
        replace it with a wrong If-Match (must be refused); then delete it."""
        key = self._key(f"_probe/{uuid.uuid4().hex}")
        put = self.client.put_object
        versions = []  # what a bucket with versioning keeps: each is deleted too
        with self._calls(write=True):
            versions.append(put(Bucket=self.bucket, Key=key, Body=b"probe", IfNoneMatch="*").get("VersionId"))
            try:
                problem = None
                try:
                    versions.append(put(Bucket=self.bucket, Key=key, Body=b"again", IfNoneMatch="*").get("VersionId"))
                    problem = "let a second create of one key (If-None-Match: *) succeed"
                except Exception as exc:
                    if _status(exc) not in (409, 412):
                        raise
                if problem is None:
                    try:
                        stale = '"0000000000000000000000000000000f"'
                        versions.append(put(Bucket=self.bucket, Key=key, Body=b"again", IfMatch=stale).get("VersionId"))
                        problem = "let a replace with a stale ETag (If-Match) succeed"
                    except Exception as exc:
                        if _status(exc) not in (409, 412):
                            raise
            finally:
                kept = [v for v in versions if v and v != "null"]
                for version in kept:  # no delete marker left either
                    self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version)
                if not kept:
                    self.client.delete_object(Bucket=self.bucket, Key=key)
        if problem:
            raise ObjectStoreUnsafe(lake=self.location, detail=problem)

    def write_atomic(self, path: str, data: bytes, *, sync: bool = True) -> None:
        """PUT: an object appears whole or not at all."""
        self._before_write()
        with self._calls(write=True):
            tag = self._put(path, data)
        self._mirror_bytes(path, data, tag)

    def write_atomic_with(self, path: str, fill: Callable[[str], T]) -> T:
        """``fill`` writes a temporary local file (outside the mirror, never named *.parquet),
        which is uploaded, then moved into the mirror."""
        self._before_write()
        tmp = self._scratch_file()
        try:
            result = fill(tmp)
            with self._calls(write=True):
                if os.path.getsize(tmp) <= MULTIPART_BYTES:
                    with open(tmp, "rb") as fh:
                        tag = self._put(path, fh)
                else:  # in parts; the object appears whole when the upload completes
                    self.client.upload_file(tmp, self.bucket, self._key(path))
                    tag = str(self.client.head_object(Bucket=self.bucket, Key=self._key(path))["ETag"])
            self._mirror_file(path, tmp, tag)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return result

    def create_exclusive(self, path: str, data: bytes, *, sync: bool = True) -> bool:
        """PUT with ``If-None-Match: *``; False when the key exists (412)."""
        return self._conditional(path, data, IfNoneMatch="*")

    def replace_if(self, path: str, data: bytes, tag: str | None, *, sync: bool = True) -> bool:
        """PUT with ``If-Match: tag`` (``If-None-Match: *`` when ``tag`` is None); False
        when someone changed (or created) the object first."""
        if tag is None:
            return self.create_exclusive(path, data)
        return self._conditional(path, data, IfMatch=tag)

    def _conditional(self, path: str, data: bytes, **condition: str) -> bool:
        self._before_write()
        for attempt in range(_CONFLICT_RETRIES + 1):
            with self._calls(write=True):
                try:
                    tag = self._put(path, data, **condition)
                    break
                except Exception as exc:
                    status = _status(exc)
                    if status == 409 and attempt < _CONFLICT_RETRIES:
                        continue  # a concurrent conditional write was in flight: ask again
                    if status == 404 and "IfMatch" in condition:
                        return False  # replaced something that is gone
                    if status != 412:
                        raise
                    if _retried(exc) and self._ours(path, data):
                        tag = self.read_tagged(path)[1]  # type: ignore[index]
                        break  # our first attempt landed; its answer was lost and resent
                    return False
        self._mirror_bytes(path, data, tag)
        return True

    def _ours(self, path: str, data: bytes) -> bool:
        found = self.read_tagged(path)
        return found is not None and found[0] == data

    def remove(self, path: str) -> None:
        self._before_write()
        with self._calls(write=True):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(path))
        self._forget(path)

    def move(self, path: str, to: str) -> None:
        """Copy, then delete (an object store has no rename)."""
        self._before_write()
        with self._calls(write=True):
            try:
                response = self.client.copy_object(
                    Bucket=self.bucket, Key=self._key(to), CopySource={"Bucket": self.bucket, "Key": self._key(path)},
                )
            except Exception as exc:
                if _missing(exc):
                    raise FileNotFoundError(f"{self.location}/{path}") from None
                raise
            self.client.delete_object(Bucket=self.bucket, Key=self._key(path))
        tag = str(response.get("CopyObjectResult", {}).get("ETag", ""))
        source = self.local_path(path)
        if path in self._tags and os.path.isfile(source) and tag:
            tmp = self._scratch_file()
            os.replace(source, tmp)
            self._tags.pop(path, None)
            self._mirror_file(to, tmp, tag)
        else:
            self._forget(path)

    def sync(self, folders: Sequence[str] | None = None) -> None:
        """Nothing to do: a PUT is durable when it is answered."""

    def purge_history(self, path: str) -> None:
        """Where the bucket keeps old versions, delete every noncurrent version (and
        delete marker) of the object ``path`` and of the objects below it when it is a
        folder, so that no older copy survives a rewrite or a removal. Raises
        HistoryKept when the credentials may not."""
        with self._calls(write=True):
            try:
                status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
            except Exception as exc:
                if _status(exc) == 403:
                    raise HistoryKept(lake=self.location, detail="these credentials may not check whether it does") from None
                raise
            if status not in ("Enabled", "Suspended"):
                return
            key = self._key(path)
            try:
                pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key)
                old = []
                for page in pages:
                    for item in [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]:
                        if (item["Key"] == key or item["Key"].startswith(key + "/")) and not item.get("IsLatest"):
                            old.append({"Key": item["Key"], "VersionId": item["VersionId"]})
                for item in old:
                    self.client.delete_object(Bucket=self.bucket, Key=item["Key"], VersionId=item["VersionId"])
            except Exception as exc:
                if _status(exc) in (403, 501):
                    raise HistoryKept(lake=self.location, detail=f"these credentials may not delete them ({_code(exc)})") from None
                raise
