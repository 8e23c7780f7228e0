"""Leases: who may compact (or rewrite) a table, for how long, without a lock.

A lease is one small object ``_leases/<name>`` holding JSON ``{owner, expires}``
(``expires`` in seconds since the epoch, by the owner's clock). It is taken
with the storage's compare-and-swap (:meth:`Storage.replace_if`): created if
absent (``If-None-Match: *``), or taken over with ``If-Match`` on the tag last
read once it has expired; :class:`LakeBusy` while someone else holds it. The
owner renews it (again ``If-Match`` on its own last tag) between phases, and a
background thread renews it every third of its time while it is held, so a long
merge keeps it; a renewal that fails means someone took it over: the holder
stops before its next step that changes the lake. Released, it is rewritten
with ``expires`` 0 (object stores offer no conditional delete everywhere).

A lease is not a lock: a holder frozen (SIGSTOP, a long pause) past its expiry
and then resumed may take one step it had checked for before it froze. The
lake's protocols are built so that such a step never makes a record appear
twice or vanish (see ``catalog.lake.compaction``). Clocks of the machines
sharing a lake must agree to well within the lease time.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from types import TracebackType

from ..errors import LakeBusy
from .storage import Storage

# How long a lease lasts unless renewed; CATALOG_LEASE_SECONDS overrides it (tests).
LEASE_SECONDS = 60.0


def lease_seconds() -> float:
    value = os.environ.get("CATALOG_LEASE_SECONDS")
    try:
        return float(value) if value else LEASE_SECONDS
    except ValueError:
        return LEASE_SECONDS


class LeaseLost(LakeBusy):
    """Someone took over a lease this process held (it had expired): stop."""


class Lease:
    """One lease ``_leases/<name>`` on a lake's storage; use as a context manager."""

    def __init__(self, storage: Storage, name: str, *, ttl: float | None = None, heartbeat: bool = True) -> None:
        self.storage = storage
        self.name = name
        self.path = f"_leases/{name}"
        self.ttl = ttl if ttl is not None else lease_seconds()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tag: str | None = None
        self._lost = False
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._heartbeat = heartbeat

    def _body(self, expires: float) -> bytes:
        return json.dumps({"owner": self.owner, "expires": expires, "lease": self.name}).encode()

    def acquire(self) -> None:
        """Take the lease, or raise LakeBusy while another holder's is unexpired."""
        for _ in range(3):
            found = self.storage.read_tagged(self.path)
            if found is not None:
                holder, expires = _parse(found[0])
                if expires > time.time():
                    raise LakeBusy(
                        f"another process ({holder}) holds the lake's '{self.name}' lease until "
                        f"{time.strftime('%H:%M:%S', time.localtime(expires))}; try again when it is done"
                    )
            tag = None if found is None else found[1]
            if self.storage.replace_if(self.path, self._body(time.time() + self.ttl), tag):
                self._tag = self._read_tag()
                if self._tag is not None:
                    break
            # someone else created or took it meanwhile: look again
        else:
            raise LakeBusy(f"another process just took the lake's '{self.name}' lease; try again when it is done")
        if self._heartbeat:
            self._stop.clear()
            self._beat = threading.Thread(target=self._keep, name=f"lease-{self.name}", daemon=True)
            self._beat.start()

    def _read_tag(self) -> str | None:
        found = self.storage.read_tagged(self.path)
        if found is None or _parse(found[0])[0] != self.owner:
            return None
        return found[1]

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except LakeBusy:
                return
            except OSError:
                continue  # a network hiccup: the next beat tries again

    def renew(self) -> None:
        """Extend the lease by its full time; LeaseLost when someone took it over."""
        with self._guard:
            if self._lost or self._tag is None:
                raise LeaseLost(f"this process no longer holds the lake's '{self.name}' lease")
            body = self._body(time.time() + self.ttl)
            if not self.storage.replace_if(self.path, body, self._tag):
                self._lost = True
                raise LeaseLost(f"the lake's '{self.name}' lease expired and another process took it over")
            tag = self._read_tag()
            if tag is None:  # replaced again between our write and our read: not ours any more
                self._lost = True
                raise LeaseLost(f"the lake's '{self.name}' lease expired and another process took it over")
            self._tag = tag

    # What the holder calls before a step that changes the lake.
    check = renew

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        with self._guard:
            if self._tag is not None and not self._lost:
                try:
                    self.storage.replace_if(self.path, self._body(0.0), self._tag)
                except OSError:
                    pass  # it expires by itself
            self._tag = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


class Leases:
    """Several leases taken together (all or none), released together."""

    def __init__(self, storage: Storage, names: list[str], *, ttl: float | None = None, wait: float = 0.0) -> None:
        self.held = [Lease(storage, name, ttl=ttl) for name in names]
        self.wait = wait

    def check(self) -> None:
        for lease in self.held:
            lease.check()

    def __enter__(self) -> Leases:
        """Take every lease; while one is held elsewhere, give back those taken and try
        again for up to ``wait`` seconds, then raise LakeBusy."""
        deadline = time.monotonic() + self.wait
        pause = 0.05
        while True:
            taken: list[Lease] = []
            try:
                for lease in self.held:
                    lease.acquire()
                    taken.append(lease)
                return self
            except LakeBusy:
                for lease in reversed(taken):
                    lease.release()
                if time.monotonic() >= deadline:
                    raise
            except BaseException:
                for lease in reversed(taken):
                    lease.release()
                raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for lease in reversed(self.held):
            lease.release()


def _parse(data: bytes) -> tuple[str, float]:
    """(owner, expiry) of a lease body; an unreadable body counts as expired."""
    try:
        body = json.loads(data)
        return str(body.get("owner", "?")), float(body.get("expires", 0.0))
    except (ValueError, TypeError, AttributeError):
        return "?", 0.0
