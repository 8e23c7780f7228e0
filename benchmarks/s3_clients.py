"""Compare two S3 clients for the lake's object-store Storage: boto3 and obstore.

    python benchmarks/s3_clients.py              # 200 of each operation
    python benchmarks/s3_clients.py --n 500

Starts the test server (SeaweedFS on 127.0.0.1, tests/s3server.py) and measures, for
each client, the median and 90th-percentile time of the operations a lake uses:
a plain PUT (an append), a conditional create (``If-None-Match: *``, a claim), a
refused conditional create (412), a compare-and-swap (``If-Match``), a GET of a
small object, and a listing of a 100-object folder; and how many HTTP requests each
operation sends (counted by a transparent proxy on loopback, so a client's hidden
extra requests would show). The import time of each client is measured in a
fresh interpreter. obstore is optional: ``pip install obstore``.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import s3server  # noqa: E402

BODY = b"x" * 10_000  # about one appended one-record Parquet file


class Counting(BaseHTTPRequestHandler):
    """Forwards every request unchanged (Host too, so signatures hold) and counts it."""

    upstream = ""
    counts: collections.Counter[str] = collections.Counter()

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Counting.counts[self.command] += 1
        s3server.relay(self, self.upstream, body, dict(self.headers.items()))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args: object) -> None:
        pass


class Boto3:
    name = "boto3"

    def __init__(self, endpoint: str, bucket: str) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, config=Config(retries={"mode": "standard", "max_attempts": 4})
        )

    def put(self, key: str, data: bytes) -> str:
        return self.client.put_object(Bucket=self.bucket, Key=key, Body=data)["ETag"]

    def create(self, key: str, data: bytes) -> bool:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            return True
        except self.client.exceptions.ClientError as exc:
            if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 412:
                return False
            raise

    def replace(self, key: str, data: bytes, tag: str) -> str:
        return self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfMatch=tag)["ETag"]

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def list(self, prefix: str) -> int:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sum(len(p.get("Contents", ())) for p in pages)


class Obstore:
    name = "obstore"

    def __init__(self, endpoint: str, bucket: str) -> None:
        from obstore.store import S3Store

        self.store = S3Store(bucket, endpoint=endpoint, client_options={"allow_http": True})

    def put(self, key: str, data: bytes) -> str:
        import obstore

        return obstore.put(self.store, key, data).get("e_tag") or ""

    def create(self, key: str, data: bytes) -> bool:
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            obstore.put(self.store, key, data, mode="create")
            return True
        except (AlreadyExistsError, PreconditionError):
            return False

    def replace(self, key: str, data: bytes, tag: str) -> str:
        import obstore

        return obstore.put(self.store, key, data, mode={"e_tag": tag}).get("e_tag") or ""

    def get(self, key: str) -> bytes:
        import obstore

        return bytes(obstore.get(self.store, key).bytes())

    def list(self, prefix: str) -> int:
        import obstore

        return sum(len(batch) for batch in obstore.list(self.store, prefix))


def timings(n: int, op: Callable[[int], Any]) -> tuple[float, float]:
    """(median, 90th percentile) in ms of ``n`` calls of ``op(i)``."""
    times = []
    for i in range(n):
        start = time.perf_counter()
        op(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def import_ms(module: str) -> float:
    """Median import time of ``module`` in a fresh interpreter (5 runs)."""
    code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(5)]
    return statistics.median(runs)


def measure(client: Any, n: int) -> dict[str, tuple[float, float]]:
    run = uuid.uuid4().hex[:8]
    out = {}
    out["put"] = timings(n, lambda i: client.put(f"{client.name}/{run}/put/{i}", BODY))
    out["create (If-None-Match)"] = timings(n, lambda i: client.create(f"{client.name}/{run}/claim/{i}", b"{}"))
    out["create refused (412)"] = timings(n, lambda i: client.create(f"{client.name}/{run}/claim/{i}", b"{}"))
    tag = {"t": client.put(f"{client.name}/{run}/cas", b"0")}

    def cas(i: int) -> None:
        tag["t"] = client.replace(f"{client.name}/{run}/cas", str(i).encode(), tag["t"])

    out["replace (If-Match)"] = timings(n, cas)
    out["get 10 KB"] = timings(n, lambda i: client.get(f"{client.name}/{run}/put/{i}"))
    for i in range(100):
        client.put(f"{client.name}/{run}/folder/{i}", b"")
    out["list 100 objects"] = timings(max(n // 4, 10), lambda i: client.list(f"{client.name}/{run}/folder/"))
    return out


def requests_per_op(client_type: type, endpoint: str) -> dict[str, int]:
    """HTTP requests each operation sends, through the counting proxy."""
    handler = type("Proxy", (Counting,), {"upstream": endpoint})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # loopback only
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        client = client_type(f"http://127.0.0.1:{proxy.server_address[1]}", s3server.BUCKET)
        key = f"{client.name}/{uuid.uuid4().hex}"
        client.put(key + "/warm", b"")  # connection set-up, credentials
        ops: dict[str, Callable[[], Any]] = {
            "put": lambda: client.put(key + "/a", BODY),
            "create (If-None-Match)": lambda: client.create(key + "/b", b""),
            "create refused (412)": lambda: client.create(key + "/b", b""),
            "replace (If-Match)": lambda: client.replace(key + "/a", b"2", client.put(key + "/a", b"1")),
            "get 10 KB": lambda: client.get(key + "/warm"),
            "list 100 objects": lambda: client.list(key + "/"),
        }
        out = {}
        for name, op in ops.items():
            Counting.counts.clear()
            op()
            out[name] = sum(Counting.counts.values()) - (1 if name == "replace (If-Match)" else 0)
        return out
    finally:
        proxy.shutdown()
        proxy.server_close()


def lake_operations(url: str, n: int) -> dict[str, tuple[float, float]]:
    """(median ms, requests) per register, resolve and approve on an s3:// lake through
    S3Storage, one process, with the lake's lock-free protocol (claims, the decision
    sequence) as every writer runs it."""
    import contextlib
    import tempfile

    from catalog import Registry
    from catalog.lake.s3 import S3Storage

    sent: collections.Counter[str] = collections.Counter()
    plain = S3Storage.client.fget  # type: ignore[attr-defined]

    def counted(self: S3Storage) -> Any:
        client = plain(self)
        if not getattr(client, "_counted", False):
            client.meta.events.register("before-send.s3", lambda **kw: sent.update(["request"]))
            client._counted = True
        return client

    S3Storage.client = property(counted)  # type: ignore[method-assign,assignment]
    out = {}
    with tempfile.TemporaryDirectory() as here, contextlib.chdir(here), Registry(url, actor="ana") as reg:
        reg.register("churn", "s3://m/0.pkl", capture_git=False)
        ops: dict[str, Callable[[int], Any]] = {
            "register": lambda i: reg.register("churn", f"s3://m/{i + 1}.pkl", capture_git=False),
            "resolve": lambda i: reg.resolve("churn:1"),
            "approve": lambda i: reg.approve("churn", i + 2),
        }
        for name, op in ops.items():
            sent.clear()
            median, _ = timings(n, op)
            out[name] = (median, sent["request"] / n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="calls of each operation")
    args = parser.parse_args()
    clients: list[type] = [Boto3]
    try:
        import obstore  # noqa: F401

        clients.append(Obstore)
    except ImportError:
        print("obstore is not installed (pip install obstore): measuring boto3 alone\n")
    server = s3server.start()
    saved = dict(os.environ)
    os.environ.update(server.env())
    try:
        results = {c.name: measure(c(server.endpoint, s3server.BUCKET), args.n) for c in clients}  # type: ignore[attr-defined]
        requests = {c.name: requests_per_op(c, server.endpoint) for c in clients}  # type: ignore[attr-defined]
        lake = lake_operations(server.new_url(), max(args.n // 10, 10))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
    imports = {"boto3": import_ms("boto3"), "obstore": import_ms("obstore") if Obstore in clients else None}
    names = [c.name for c in clients]  # type: ignore[attr-defined]
    print(f"S3 clients against SeaweedFS on 127.0.0.1 ({args.n} calls each; ms: median / p90; requests per call)\n")
    print("| operation | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for op in results[names[0]]:
        cells = [f"{results[n][op][0]:.2f} / {results[n][op][1]:.2f} ms, {requests[n][op]} req" for n in names]
        print(f"| {op} | " + " | ".join(cells) + " |")
    print("| import (fresh interpreter) | " + " | ".join(f"{imports[n]:.0f} ms" for n in names) + " |")
    print("\nAn s3:// lake through S3Storage (boto3), one process (median ms, requests per call)\n")
    print("| operation | time | requests |\n| --- | --- | --- |")
    for op, (ms, count) in lake.items():
        print(f"| {op} | {ms:.1f} ms | {count:.1f} |")


if __name__ == "__main__":
    main()
