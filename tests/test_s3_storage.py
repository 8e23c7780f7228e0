"""S3-compatible object storage (catalog.lake.s3) against a real server: SeaweedFS on
127.0.0.1 (tests/s3server.py). The Storage contract on both backends, a registry and
the CLI on an s3:// lake, the refusal of a server that ignores conditional headers,
read-only credentials, bucket versioning and redaction, and that a local lake never
imports the S3 client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from catalog import Registry
from catalog.errors import HistoryKept, LakeReadOnly, ObjectStoreUnsafe
from catalog.lake import LocalStorage, open_storage
from tests.conftest import churn_scenario

CATALOG = str(Path(sys.executable).parent / "catalog")


# -- helpers ---------------------------------------------------------------------------


def objects(server, url: str) -> dict[str, str]:
    """{key: ETag} of every object under the lake ``url``."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    out = {}
    for page in server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", ()):
            out[item["Key"]] = item["ETag"]
    return out


def upload(server, folder: Path, url: str) -> None:
    """Copy a local lake's files into the bucket (lock files excluded): a lake moved to S3."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = server.client()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not rel.startswith("_locks/"):
            client.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=path.read_bytes())


@pytest.fixture
def seeded(s3_server, s3_lake, registry, lake) -> str:
    """An S3 lake holding the churn scenario (built in a folder, then uploaded)."""
    churn_scenario(registry)
    upload(s3_server, lake, s3_lake)
    return s3_lake


def run(*args: str, env: dict[str, str] | None = None, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CATALOG, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


# -- the Storage contract, on both backends ----------------------------------------------


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        yield LocalStorage(tmp_path / "lake")
    else:
        url = request.getfixturevalue("s3_lake")
        store = open_storage(url)
        yield store
        store.close()  # type: ignore[attr-defined]


def test_create_exclusive(storage):
    assert storage.create_exclusive("_claims/churn/1", b"first")
    assert not storage.create_exclusive("_claims/churn/1", b"second")
    assert storage.read_bytes("_claims/churn/1") == b"first"
    assert storage.listdir("_claims/churn") == ["1"]


def test_replace_if_and_read_tagged(storage):
    assert storage.read_tagged("_leases/versions") is None
    assert storage.replace_if("_leases/versions", b"a", None)
    assert not storage.replace_if("_leases/versions", b"b", None)  # exists already
    data, tag = storage.read_tagged("_leases/versions")
    assert data == b"a"
    assert storage.replace_if("_leases/versions", b"c", tag)
    assert not storage.replace_if("_leases/versions", b"d", tag)  # stale tag
    data2, tag2 = storage.read_tagged("_leases/versions")
    assert (data2, tag2 != tag) == (b"c", True)


def test_listings_and_local_paths(storage):
    storage.write_atomic("versions/part-1.parquet", b"one")
    storage.write_atomic("versions/sub/part-2.parquet", b"two")
    storage.write_atomic("events/part-3.parquet", b"three")
    assert storage.entries("versions") == [("part-1.parquet", "file"), ("sub", "dir")]
    assert storage.walk("versions") == [
        ("versions/part-1.parquet", "file"), ("versions/sub", "dir"), ("versions/sub/part-2.parquet", "file"),
    ]
    assert storage.listdir("versions") == ["part-1.parquet", "sub"]
    assert storage.exists("versions") and storage.exists("versions/part-1.parquet") and not storage.exists("nothing")
    assert storage.entries("nothing") == [] and storage.walk("nothing") == []
    # what a listing names can be read at its local path (DuckDB, footers)
    assert Path(storage.local_path("versions/sub/part-2.parquet")).read_bytes() == b"two"
    assert storage.size("versions/part-1.parquet") == 3 and storage.size("versions/gone.parquet") == 0
    before = storage.stat("versions/part-1.parquet")
    storage.write_atomic("versions/part-1.parquet", b"one again")
    storage.entries("versions")
    assert storage.stat("versions/part-1.parquet") != before
    with pytest.raises(FileNotFoundError):
        storage.stat("versions/gone.parquet")


def test_write_atomic_with(storage):
    seen = {}

    def fill(tmp: str) -> int:
        assert not tmp.endswith(".parquet")  # no reader's *.parquet glob matches it
        Path(tmp).write_bytes(b"x" * 1000)
        seen["listed"] = storage.walk("versions")  # a reader meanwhile sees no half-written *.parquet
        return 42

    assert storage.write_atomic_with("versions/compacted-1.parquet", fill) == 42
    assert not [rel for rel, _ in seen["listed"] if rel.endswith(".parquet")]
    assert storage.read_bytes("versions/compacted-1.parquet") == b"x" * 1000
    assert Path(storage.local_path("versions/compacted-1.parquet")).read_bytes() == b"x" * 1000


def test_remove_and_move(storage):
    storage.write_atomic("versions/a.parquet", b"a")
    storage.move("versions/a.parquet", "_quarantine/t/versions/a.parquet")
    assert not storage.exists("versions/a.parquet")
    assert storage.read_bytes("_quarantine/t/versions/a.parquet") == b"a"
    storage.remove("_quarantine/t/versions/a.parquet")
    storage.remove("_quarantine/t/versions/a.parquet")  # removing what is gone is fine
    assert [rel for rel, kind in storage.walk("_quarantine") if kind == "file"] == []
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("versions/a.parquet")


def test_exact_stamps_follow_the_listing(storage):
    if not storage.exact_stamps:
        pytest.skip("a folder's stamp is its coarse modification time (see lake.settled)")
    empty = storage.stamp("versions")
    storage.write_atomic("versions/a.parquet", b"a")
    one = storage.stamp("versions")
    storage.write_atomic("versions/a.parquet", b"b")  # same name, new content: a new ETag
    two = storage.stamp("versions")
    assert len({empty, one, two}) == 3 and storage.stamp("versions") == two


# -- S3 only: the mirror, locks, location -----------------------------------------------------


def test_object_names_no_lake_file_has_are_not_listed():
    from catalog.lake.s3 import _safe

    assert _safe("versions/part-1.parquet")
    assert not any(_safe(p) for p in ("versions//x.parquet", "versions/../x", "a\\b", "/abs", ""))


def test_the_mirror_follows_other_writers_and_goes_at_close(s3_server, s3_lake):
    mine, theirs = open_storage(s3_lake), open_storage(s3_lake)
    assert mine.location == s3_lake and mine.root != theirs.root and s3_lake not in mine.root
    theirs.write_atomic("versions/a.parquet", b"a")
    theirs.write_atomic("versions/b.parquet", b"b")
    assert [n for n, _ in mine.entries("versions")] == ["a.parquet", "b.parquet"]
    theirs.remove("versions/a.parquet")
    theirs.write_atomic("versions/b.parquet", b"b2")
    assert [n for n, _ in mine.entries("versions")] == ["b.parquet"]
    assert not os.path.exists(mine.local_path("versions/a.parquet"))  # dropped: no longer listed
    assert Path(mine.local_path("versions/b.parquet")).read_bytes() == b"b2"  # changed ETag: fetched again
    root = mine.root
    mine.close()  # type: ignore[attr-defined]
    theirs.close()  # type: ignore[attr-defined]
    assert not os.path.exists(root)
    assert [n for n, _ in mine.entries("versions")] == ["b.parquet"]  # still usable: a new mirror
    assert Path(mine.local_path("versions/b.parquet")).read_bytes() == b"b2"
    mine.close()  # type: ignore[attr-defined]


def test_registry_close_removes_the_mirror(seeded):
    reg = Registry(seeded)
    assert reg.resolve("churn@prod")
    mirror = reg._s.lake.root
    assert os.path.isdir(mirror)
    reg.close()
    assert not os.path.exists(mirror)


def test_mirror_removed_at_exit(s3_server, s3_lake):
    code = (
        "from catalog.lake import open_storage; s = open_storage(%r); s.write_atomic('versions/a.parquet', b'a');"
        "s.entries('versions'); print(s.root)" % s3_lake
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() and not os.path.exists(out.stdout.strip())


def test_bad_endpoint_missing_bucket_no_credentials_are_one_line_errors(s3_server, s3_lake, tmp_path):
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "HOME": str(tmp_path)}
    bad = run("--lake", s3_lake, "list", env=env)
    assert bad.returncode == 1 and "cannot reach the object store" in bad.stderr and "Traceback" not in bad.stderr
    missing = run("--lake", "s3://no-such-bucket-here/lake", "list", env={**os.environ, "HOME": str(tmp_path)})
    assert missing.returncode == 1 and "bucket 'no-such-bucket-here'" in missing.stderr
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
    nocreds = run("--lake", s3_lake, "list", env={**bare, "HOME": str(tmp_path)})
    assert nocreds.returncode == 1 and "no credentials" in nocreds.stderr
    wrong = run("--lake", s3_lake, "list", env={**os.environ, "AWS_ACCESS_KEY_ID": "nobody", "HOME": str(tmp_path)})
    assert wrong.returncode == 1 and "InvalidAccessKeyId" in wrong.stderr, wrong.stderr
    for result in (bad, missing, nocreds, wrong):
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_profiles_from_aws_config(s3_server, s3_lake, tmp_path):
    """Credentials and endpoint from a named profile of ~/.aws, as the AWS CLI takes them."""
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        f"[team]\naws_access_key_id = {s3_server.env()['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {s3_server.env()['AWS_SECRET_ACCESS_KEY']}\n"
    )
    (tmp_path / ".aws" / "config").write_text(
        f"[profile team]\nregion = us-east-1\nendpoint_url = {s3_server.endpoint}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_PROFILE="team", AWS_EC2_METADATA_DISABLED="true")
    s3_server.client().put_object(Bucket="catalog-test", Key=s3_lake.split("/", 3)[3] + "/catalog.toml", Body=b"")
    result = run("--lake", s3_lake, "list", env=env)
    assert "no lake at " + s3_lake in result.stderr  # reached the bucket: a lake without tables


# -- a registry and the CLI on an s3:// lake ---------------------------------------------------


def test_registry_reads_an_s3_lake(s3_server, seeded, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bucket, _, prefix = seeded.removeprefix("s3://").partition("/")
    s3_server.client().put_object(Bucket=bucket, Key=f"{prefix}/catalog.toml", Body=b"")
    with Registry(seeded, actor="carol") as reg:
        assert reg.config.source == f"{seeded}/catalog.toml"  # its location, not the private mirror
        assert reg._s.policy_source() == "<lake>/catalog.toml"
        assert reg.root == seeded
        assert reg.resolve("churn@prod") == "s3://models/churn/1.pkl"
        assert [m.model for m in reg.list()] == ["churn"]
        assert [v.version for v in reg.show("churn").versions] == [1, 2, 3]
        assert reg.sql("select count(*) as n from versions").rows == [{"n": 3}]
        assert reg.doctor().lake == seeded


def test_registry_writes_an_s3_lake(s3_lake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # init writes a starter catalog.toml here
    with Registry(s3_lake, actor="ana") as reg:
        assert reg.init().lake == s3_lake
        reg.register("churn", "s3://models/churn/1.pkl", capture_git=False)
    with Registry(s3_lake, actor="bob") as bob:  # init's starter policy has four eyes on
        bob.approve("churn", 1)
        bob.deploy("churn", 1, target="prod")
        assert bob.resolve("churn@prod") == "s3://models/churn/1.pkl"


def test_init_creates_an_s3_lake(s3_server, s3_lake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Registry(s3_lake) as reg:
        report = reg.init()
    assert report.lake == s3_lake and report.lake_created
    keys = sorted(k.split("/", 1)[1] for k in objects(s3_server, s3_lake))
    assert [k.split("/")[0] for k in keys] == ["events", "versions"]  # the two anchors, and no probe left


def test_cli_with_lake_flag_and_env(seeded, tmp_path):
    flag = run("--lake", seeded, "resolve", "churn@prod", cwd=str(tmp_path))
    assert (flag.returncode, flag.stdout.strip()) == (0, "s3://models/churn/1.pkl"), flag.stderr
    env = {**os.environ, "CATALOG_LAKE": seeded}
    listed = run("list", env=env, cwd=str(tmp_path))
    assert listed.returncode == 0 and "churn" in listed.stdout, listed.stderr
    doctor = run("doctor", "--json", env=env, cwd=str(tmp_path))
    assert json.loads(doctor.stdout)["lake"] == seeded, doctor.stdout


def test_cli_register_on_s3(s3_lake, tmp_path):
    result = run("--lake", s3_lake, "register", "churn", "s3://m/1.pkl", "--no-git", cwd=str(tmp_path))
    assert result.returncode == 0 and result.stdout.strip() == "churn v1", result.stderr


# -- read-only credentials: everything read-only works, nothing is written ------------------------


def test_read_only_credentials(s3_server, seeded, tmp_path, monkeypatch):
    before = objects(s3_server, seeded)
    env = {**os.environ, **s3_server.read_only_env()}
    for args in (["resolve", "churn@prod"], ["show", "churn"], ["sql", "select count(*) from versions"],
                 ["build", "--out", str(tmp_path / "site")]):
        result = run("--lake", seeded, *args, env=env, cwd=str(tmp_path))
        assert result.returncode == 0, (args, result.stderr)
    assert (tmp_path / "site" / "index.html").exists()
    pages = "".join(p.read_text(errors="ignore") for p in (tmp_path / "site").rglob("*.html"))
    assert "catalog-s3-" not in pages  # no private mirror path in the site
    refused = run("--lake", seeded, "register", "churn", "s3://m/4.pkl", "--no-git", env=env, cwd=str(tmp_path))
    # refused, in one line: read-only (or, until the lock-free protocol lands, for want of locks)
    assert refused.returncode == 1 and "read-only" in refused.stderr, refused.stderr
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.read_only_credentials[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.read_only_credentials[1])
    store = open_storage(seeded)
    with pytest.raises(LakeReadOnly, match="read-only"):
        store.write_atomic("catalog.toml", b"")
    assert objects(s3_server, seeded) == before  # nothing written, no lock or probe left behind


# -- a server that ignores conditional headers is refused ------------------------------------------


class _StrippingProxy(BaseHTTPRequestHandler):
    """Forwards to the S3 server, dropping If-None-Match and If-Match (as some proxies do)
    and signing the request again with the admin key (a gateway holding credentials)."""

    upstream = ""

    def _forward(self) -> None:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        from tests import s3server

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        drop = {"if-none-match", "if-match", "authorization", "x-amz-date", "host", "connection", "x-amz-security-token"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in drop}
        request = AWSRequest(method=self.command, url=self.upstream + self.path, data=body, headers=headers)
        S3SigV4Auth(Credentials(s3server.ACCESS_KEY, s3server.SECRET_KEY), "s3", s3server.REGION).add_auth(request)
        s3server.relay(self, self.upstream, body, dict(request.headers.items()))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_ignores_conditional_writes_is_refused(s3_server, s3_lake, monkeypatch):
    handler = type("Proxy", (_StrippingProxy,), {"upstream": s3_server.endpoint})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # loopback only
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.server_address[1]}")
        store = open_storage(s3_lake)
        assert store.read_tagged("versions/none") is None  # reads pass through the proxy
        with pytest.raises(ObjectStoreUnsafe, match="second create of one key"):
            store.write_atomic("catalog.toml", b"")
        with pytest.raises(ObjectStoreUnsafe):
            store.create_exclusive("_claims/churn/1", b"")
        result = run("--lake", s3_lake, "init", env=dict(os.environ))
        assert result.returncode == 1 and "refusing to write" in result.stderr, result.stderr
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert objects(s3_server, s3_lake) == {}  # nothing written, the probe removed


# -- versioning: redaction leaves no older copy ------------------------------------------------------


def test_purge_history_on_a_versioned_bucket(s3_server, monkeypatch):
    client = s3_server.client()
    bucket = f"catalog-versioned-{uuid.uuid4().hex[:6]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = open_storage(f"s3://{bucket}/lake")
    store.write_atomic("versions/part-1.parquet", b"secret v1")
    store.write_atomic("versions/part-1.parquet", b"redacted")  # a rewrite: the old version stays
    store.write_atomic("versions/part-2.parquet", b"secret in a compacted input")
    store.remove("versions/part-2.parquet")  # a compaction's removal: the old version stays

    def kept() -> list[bytes]:
        out = []
        for item in client.list_object_versions(Bucket=bucket, Prefix="lake/").get("Versions", ()):
            out.append(client.get_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])["Body"].read())
        return sorted(out)

    assert b"secret v1" in kept() and b"secret in a compacted input" in kept()
    store.purge_history("versions")
    assert kept() == [b"redacted"]
    assert store.read_bytes("versions/part-1.parquet") == b"redacted"
    store.write_atomic("versions/part-1.parquet", b"redacted again")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.read_only_credentials[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.read_only_credentials[1])
    with pytest.raises(HistoryKept, match="keeps old versions"):  # may not delete them: refused, not ignored
        open_storage(f"s3://{bucket}/lake").purge_history("versions")


def test_redaction_on_a_versioned_bucket_leaves_no_copy(s3_server):
    client = s3_server.client()
    bucket = f"catalog-versioned-{uuid.uuid4().hex[:6]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    with Registry(f"s3://{bucket}/lake", actor="ana") as reg:
        reg.register("churn", "s3://m/1.pkl", description="SECRET-VALUE", capture_git=False)
        reg.redact("churn", 1, fields=["description"], reason="leak")
    for item in client.list_object_versions(Bucket=bucket, Prefix="lake/").get("Versions", ()):
        body = client.get_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])["Body"].read()
        assert b"SECRET-VALUE" not in body, item["Key"]


# -- a local lake never imports the S3 client ----------------------------------------------------------


def test_a_local_lake_does_not_import_the_s3_client(tmp_path):
    code = (
        "import sys\n"
        "from catalog import Registry\n"
        f"r = Registry({str(tmp_path / 'lake')!r}, actor='ana')\n"
        "r.register('churn', 's3://m/1.pkl', capture_git=False)\n"
        "r.resolve('churn:1'); r.sql('select 1'); r.doctor(); r.close()\n"
        "bad = [m for m in ('boto3', 'botocore', 'catalog.lake.s3') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_one_writer_whole_lifecycle(s3_server, monkeypatch, tmp_path):
    """Every write path of the lake through S3Storage (appends, claims, decisions,
    compaction's write_atomic_with, redaction's rewrite and purge on a versioned bucket,
    a fresh reader's mirror), for one writer (tests/test_protocol.py: many)."""
    monkeypatch.chdir(tmp_path)
    client = s3_server.client()
    bucket = f"catalog-versioned-{uuid.uuid4().hex[:6]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    url = f"s3://{bucket}/lake"
    with Registry(url, actor="ana") as reg:
        for n in range(1, 4):
            reg.register("churn", f"s3://m/{n}.pkl", description=f"SECRET-{n}", capture_git=False)
        reg.approve("churn", 2)
        reg.deploy("churn", 2, target="prod")
        assert reg.resolve("churn@prod") == "s3://m/2.pkl"
        reg.compact()
        assert not [k for k in objects(s3_server, url) if "/part-" in k.split("/")[-1]]
        reg.register("churn", "s3://m/4.pkl", capture_git=False)
        reg.redact("churn", 1, fields=["description"], reason="leak")
        assert reg.show("churn", 1).description is None
    with Registry(url, actor="bob") as other:  # a new process's view: a fresh mirror
        assert [v.version for v in other.show("churn").versions] == [1, 2, 3, 4]
        assert other.resolve("churn@prod") == "s3://m/2.pkl"
        assert other.sql("select description from versions where version = 3").rows == [{"description": "SECRET-3"}]
    for item in client.list_object_versions(Bucket=bucket, Prefix="lake/").get("Versions", ()):
        body = client.get_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])["Body"].read()
        assert b"SECRET-1" not in body, item["Key"]


def test_demo_builds_the_sample_lake_in_a_bucket(s3_lake, tmp_path):
    result = run("--lake", s3_lake, "demo", "--no-site", cwd=str(tmp_path))
    assert result.returncode == 0 and f"lake {s3_lake}" in result.stdout, result.stderr


def test_large_files_go_up_in_parts(s3_lake, monkeypatch):
    from catalog.lake import s3

    monkeypatch.setattr(s3, "MULTIPART_BYTES", 1 << 20)
    store = open_storage(s3_lake)
    data = os.urandom(9 << 20)  # above boto3's 8 MB multipart threshold too
    store.write_atomic_with("versions/compacted-big.parquet", lambda tmp: Path(tmp).write_bytes(data))
    assert store.read_bytes("versions/compacted-big.parquet") == data
    size, tag, _ = store.stat("versions/compacted-big.parquet")
    store.entries("versions")  # the listing's ETag is the one the mirror holds: nothing fetched again
    assert store.stat("versions/compacted-big.parquet") == (size, tag, 0) and size == len(data)


_RACE = """
import json, sys, time
from catalog.lake import open_storage
store = open_storage(sys.argv[1])
store.exists("versions")  # the client is made and connected before the start
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
won = [n for n in range(1, 61) if store.create_exclusive(f"_claims/churn/{n}", sys.argv[2].encode())]
print(json.dumps(won))
"""


def test_racing_creates_have_one_winner_each(s3_lake):
    """Four processes with separate mirrors create the same 60 keys at once: each key is
    won exactly once, and its content is its winner's (SeaweedFS's If-None-Match is atomic)."""
    start = str(time.time() + 4)  # all four start together
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, s3_lake, f"w{i}", start], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    wins = {f"w{i}": json.loads(p.communicate(timeout=120)[0]) for i, p in enumerate(procs)}
    assert sorted(n for won in wins.values() for n in won) == list(range(1, 61))
    assert sum(1 for won in wins.values() if won) >= 2, wins  # they did race
    store = open_storage(s3_lake)
    for writer, won in wins.items():
        for n in won:
            assert store.read_bytes(f"_claims/churn/{n}") == writer.encode()


def test_without_the_extra_an_s3_lake_is_refused_in_one_line(tmp_path):
    code = (
        "import sys; sys.modules['boto3'] = None  # as if the s3 extra were not installed\n"
        "from catalog.entry import main\n"
        "sys.argv = ['catalog', '--lake', 's3://bucket/lake', 'list']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path), timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: the lake s3://bucket/lake is in an object store, which needs the optional S3 client: "
        "pip install 'model-catalog[s3]'"
    ]
