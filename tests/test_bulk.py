"""register_many: refuses what register refuses (same error, same message, with the
record's index), writes nothing when it refuses, numbers on from single registrations
(and they from it), and never shares a number with a concurrent writer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import Registry
from catalog import validate as check
from catalog.errors import CatalogError, InvalidName, InvalidValue, UnsafeURI, VersionNotFound
from catalog.provenance import local_path

from .conftest import snapshot

BASE: dict[str, Any] = {
    "owner": "ana", "description": "weekly churn", "tags": {"team": "retention"},
    "code_repo": "https://github.com/acme/churn", "code_version": "abc123", "runtime_image": "ghcr.io/acme/train:1",
    "data_refs": ["s3://data/churn@2026-11-01"], "metrics": {"auc": 0.91}, "params": {"lr": "0.1"},
    "dashboards": {"grafana": "https://grafana.example.com/d/churn?v=1"}, "artifact_sha256": "ab" * 32,
}

# Each a change to BASE: every rule `register` applies, and the plain shapes the lean
# path accepts next to near misses it must hand to register's own checks.
CASES: list[dict[str, Any]] = [
    {},
    {"model": "Churn"}, {"model": "con"}, {"model": 5}, {"model": "a" * 101}, {"model": "a/b"}, {"model": "a" * 151},
    {"model": "original name"}, {"model": " "}, {"model": "a\u200bb"},
    {"artifact_uri": "s3://user:secret@bucket/m.pkl"}, {"artifact_uri": "https://token@host/m.pkl"},
    {"artifact_uri": "https://host/m.pkl?sig=abc"}, {"artifact_uri": "https://host/m.pkl?X-Amz-Signature=1"},
    {"artifact_uri": "https://host/m.pkl?%73ig=1"}, {"artifact_uri": "https://host/m.pkl?a+b=1&token=2"},
    {"artifact_uri": "https://host/m.pkl#x?sig=1"}, {"artifact_uri": "https://host/m.pkl?x=1#frag"},
    {"artifact_uri": "bq://project.table@snapshot-12"}, {"artifact_uri": "s3://bucket/m.pkl@v3"},
    {"artifact_uri": "s3://bucket/m\x00.pkl"}, {"artifact_uri": "s3://bucket/m\n.pkl"}, {"artifact_uri": "   "},
    {"artifact_uri": ""}, {"artifact_uri": None}, {"artifact_uri": "s3://" + "a" * 5000},
    {"artifact_uri": "https://[::1]/m@x"}, {"artifact_uri": "https://ｈost@x/m"}, {"artifact_uri": "FILE://tmp/nowhere"},
    {"artifact_uri": "file:///nowhere/m.pkl"}, {"artifact_uri": "no/such/m.pkl"}, {"artifact_uri": "C://m.pkl"},
    {"owner": None}, {"owner": ""}, {"owner": "  "}, {"owner": "x" * 201}, {"owner": "a\x00b"}, {"owner": 5},
    {"description": "é ünïcode ✓"}, {"description": "x" * 100_001},
    {"tags": {"bad key!": "x"}}, {"tags": {"k": 5}}, {"tags": {"k": ""}}, {"tags": {"k": "a\x00"}}, {"tags": []},
    {"tags": {"k": "x" * 10_001}}, {"tags": None}, {"tags": {5: "x"}},
    {"metrics": {"auc": float("nan")}}, {"metrics": {"auc": True}}, {"metrics": {"auc": "0.5"}},
    {"metrics": {"auc": 3}}, {"metrics": {"auc": 10**400}}, {"metrics": {"auc": float("inf")}}, {"metrics": None},
    {"data_refs": ["s3://d@1", "s3://d@1"]}, {"data_refs": ["missing/table"]}, {"data_refs": "s3://x"},
    {"data_refs": ["s3://u:p@d/x"]}, {"data_refs": []}, {"data_refs": None}, {"data_refs": ["https://d/x?token=1"]},
    {"parents": [("base", 1)]}, {"parents": [("base", 1), ("base", 1, "distilled")]}, {"parents": ["base:1:fine-tuned"]},
    {"parents": [("Bad", 1)]}, {"parents": [("a/b", 1)]}, {"parents": [("base", 0)]}, {"parents": [("base", 9)]}, {"parents": [("gone", 1)]},
    {"parents": [5]}, {"parents": ("base:1",)},
    {"artifact_sha256": "AB" * 32}, {"artifact_sha256": "xyz"}, {"artifact_sha256": 5}, {"artifact_sha256": None},
    {"dashboards": {"g": "https://g/d?token=1"}}, {"dashboards": {"g": 5}}, {"dashboards": {"g": ""}},
    {"code_repo": "git@github.com:acme/churn.git"}, {"code_repo": "https://u:p@github.com/acme/churn"},
    {"code_repo": "   "}, {"code_version": None}, {"code_version": "x" * 201},
    {"allow_missing_data": True, "data_refs": ["missing/table"]},
    {"code_version": None, "capture_git": True}, {"code_version": None, "code_repo": None, "capture_git": True},
]


def _outcome(call: Any) -> tuple[str, Any]:
    """("ok", the stored version less what differs between lakes), or (error class, message)."""
    try:
        made = call()
    except CatalogError as exc:
        return type(exc).__name__, str(exc).removeprefix("record 1: ")
    except Exception as exc:  # noqa: BLE001 - whatever register raises, register_many must too
        return type(exc).__name__, str(exc)
    row = made.to_dict()
    for moving in ("version", "created_at", "state_at"):
        row.pop(moving)
    return "ok", row


@pytest.mark.parametrize("change", CASES, ids=[repr(c)[:60] for c in CASES])
def test_register_many_refuses_and_stores_exactly_what_register_does(tmp_path, change):
    single, many = (Registry(tmp_path / name, actor="ana", durable=False) for name in ("single", "many"))
    for reg in (single, many):
        reg.register("base", "s3://base/1", capture_git=False)
    record = {"model": "churn", "artifact_uri": "s3://models/churn/1.pkl", **BASE, **change}
    fields = {"capture_git": False, **{k: v for k, v in record.items() if k not in ("model", "artifact_uri")}}
    expected = _outcome(lambda: single.register(record["model"], record["artifact_uri"], **fields))
    before = snapshot(tmp_path / "many")
    got = _outcome(lambda: many.register_many([{"model": "base", "artifact_uri": "s3://base/2"}, record])[1])
    assert got == expected
    if expected[0] != "ok":
        assert snapshot(tmp_path / "many") == before


def test_refusals_name_the_record(registry):
    with pytest.raises(InvalidName, match=r"^record 1: invalid model name 'a/b'") as err:
        registry().register_many([{"model": "x", "artifact_uri": "s3://x"}, {"model": "a/b", "artifact_uri": "s3://y"}])
    assert (err.value.record, err.value.value) == (1, "a/b")


_uri_chars = st.sampled_from(list("ab3:/@?#&=%+.[]-_ ~ｈ\x00\t") + ["sig", "token", "s3://", "https://", "file://"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_uri_chars, max_size=12).map("".join))
def test_the_lean_uri_checks_vouch_only_for_what_the_full_checks_accept(value):
    if check.plain_uri(value):
        assert check.uri(value) == value
    if check.plain_uri(value) and check.remote_uri(value):
        assert local_path(value) is None


def test_a_refused_load_writes_nothing_and_names_the_record(registry, lake):
    reg = registry()
    reg.register("base", "s3://b/1", capture_git=False)
    before = snapshot(lake)
    good = [{"model": "x", "artifact_uri": f"s3://x/{i}"} for i in range(3)]
    with pytest.raises(UnsafeURI, match=r"^record 2: refusing artifact URI") as err:
        reg.register_many([*good[:2], {"model": "x", "artifact_uri": "https://u:p@host/m"}, *good])
    assert err.value.record == 2
    with pytest.raises(VersionNotFound, match="^record 3: version 9 of 'base'") as missing:
        reg.register_many([*good, {"model": "y", "artifact_uri": "s3://y", "parents": [("base", 9)]}])
    assert (missing.value.model, missing.value.version, missing.value.record) == ("base", 9, 3)
    with pytest.raises(InvalidValue, match="^record 1: artifact_uri is required"):
        reg.register_many([good[0], {"model": "x"}])
    assert snapshot(lake) == before  # no claim, no file, no folder


def test_numbering_continues_across_single_and_bulk_registrations(registry, lake):
    reg = registry()
    assert [reg.register("a", f"s3://a/{n}", capture_git=False).version for n in range(2)] == [1, 2]
    made = reg.register_many([{"model": "a", "artifact_uri": f"s3://a/b{n}"} for n in range(3)]
                             + [{"model": "new", "artifact_uri": "s3://new/1"}])
    assert [(v.model, v.version) for v in made] == [("a", 3), ("a", 4), ("a", 5), ("new", 1)]
    assert reg.register("a", "s3://a/next", capture_git=False).version == 6
    assert reg.register_many([{"model": "a", "artifact_uri": "s3://a/last"}])[0].version == 7
    assert sorted(p.name for p in (lake / "_claims" / "a").iterdir()) == ["1", "2", "3", "6", "7"]
    assert json.loads((lake / "_claims" / "a" / "3").read_text())["last"] == 5  # the bulk claim: 3 to 5
    rows = reg.sql("select version, artifact_uri from versions where model = 'a' order by version").rows
    assert [r["version"] for r in rows] == list(range(1, 8))
    assert reg.doctor().ok


def test_bulk_numbers_from_the_records_when_the_claims_folder_is_gone(registry, lake):
    reg = registry()
    for n in range(3):
        reg.register("m", f"s3://m/{n}", capture_git=False)
    shutil.rmtree(lake / "_claims")
    made = reg.register_many([{"model": "m", "artifact_uri": "s3://m/x"}, {"model": "fresh", "artifact_uri": "s3://f"}])
    assert [(v.model, v.version) for v in made] == [("m", 4), ("fresh", 1)]


def test_the_result_reads_back_every_version_in_order_from_a_generator(registry, lake):
    reg = registry()
    n = 5000  # several chunks of the spill file
    made = reg.register_many({"model": f"m{i % 7}", "artifact_uri": f"s3://m/{i}", "metrics": {"i": i}} for i in range(n))
    assert len(made) == n
    assert [v.artifact_uri for v in made] == [f"s3://m/{i}" for i in range(n)]
    assert made[-1].version == made[n - 1].version == len(range(n - 1, -1, -7)) == (n - 1) // 7 + 1
    assert [v.metrics for v in made[2046:2050]] == [{"i": float(i)} for i in range(2046, 2050)]
    assert made[3].state == "candidate" and made[3].created_by == "ana"
    with pytest.raises(IndexError):
        made[n]
    stored = reg.sql("select count(*) as n, count(distinct (model, version)) as k from versions").rows[0]
    assert stored == {"n": n, "k": n}
    assert reg.register_many([]) == []


def test_records_that_reuse_one_dict_keep_their_own_values(registry):
    def records():
        tags: dict[str, str] = {}
        for i in range(3):
            tags["run"] = str(i)  # one dict, changed for each record
            yield {"model": "m", "artifact_uri": f"s3://m/{i}", "tags": tags}

    reg = registry()
    reg.register_many(records())
    assert [reg.show("m", v).tags for v in (1, 2, 3)] == [{"run": "0"}, {"run": "1"}, {"run": "2"}]


def test_local_artifacts_are_hashed_and_local_data_must_exist(registry, tmp_path):
    reg = registry()
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(b"weights")
    made = reg.register_many([{"model": "m", "artifact_uri": str(artifact)},
                              {"model": "m", "artifact_uri": "s3://m/2", "data_refs": [str(tmp_path / "gone")],
                               "allow_missing_data": True}])
    assert made[0].artifact_sha256 and made[0].artifact_bytes == 7
    with pytest.raises(CatalogError, match="^record 0: data ref .* does not exist"):
        reg.register_many([{"model": "m", "artifact_uri": "s3://m/3", "data_refs": [str(tmp_path / "gone")]}])


WRITER = textwrap.dedent(
    """
    import sys, time
    from catalog import Registry
    lake, who, mode, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    reg = Registry(lake, actor=who)
    while time.time() < start:
        time.sleep(0.001)
    for i in range(8):
        if mode == "bulk":
            made = reg.register_many([{"model": m, "artifact_uri": f"s3://{who}/{i}/{k}"}
                                      for k, m in enumerate(["shared", "other"] * 3)])
            versions = [v.version for v in made if v.model == "shared"]
        else:
            versions = [reg.register("shared", f"s3://{who}/{i}", capture_git=False).version]
        print(*versions, flush=True)
    """
)


def test_concurrent_bulk_and_single_registrations_never_share_a_number(tmp_path):
    import time

    lake = tmp_path / "lake"
    Registry(lake, actor="setup").register("shared", "s3://setup/0", capture_git=False)
    start = time.time() + 1.5  # every process is up and waiting before the first write
    modes = ["bulk", "single", "bulk", "single"]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(lake), f"w{i}", mode, str(start)],
                              stdout=subprocess.PIPE, text=True) for i, mode in enumerate(modes)]
    printed: list[int] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        printed += [int(n) for n in out.split()]
    total = 1 + 2 * 8 * 3 + 2 * 8
    assert sorted(printed) == list(range(2, total + 1))  # every acknowledged number unique
    reg = Registry(lake, actor="check")
    rows = reg.sql("select version from versions where model = 'shared' order by version").rows
    assert [r["version"] for r in rows] == list(range(1, total + 1))  # no duplicate, no gap
    assert reg.doctor().ok


def test_a_bulk_load_steps_past_claims_made_meanwhile(tmp_path):
    """No lock: a bulk load whose number another writer claimed first reads how far that
    claim reaches (its body's "last") and claims the numbers after it."""
    lake = tmp_path / "lake"
    reg = Registry(lake, actor="ana", durable=False)
    reg.register("m", "s3://m/1", capture_git=False)
    reg.register_many([{"model": "m", "artifact_uri": "s3://m/2"}])  # this process knows the end is 2
    # Another machine's bulk load claims 3 to 5 (and has not written its records yet).
    (lake / "_claims" / "m" / "3").write_text(json.dumps({"by": "other", "last": 5}))
    made = reg.register_many([{"model": "m", "artifact_uri": f"s3://m/b{n}"} for n in range(2)])
    assert [v.version for v in made] == [6, 7]
    assert reg.register("m", "s3://m/next", capture_git=False).version == 8
    assert sorted(int(p.name) for p in (lake / "_claims" / "m").iterdir()) == [1, 2, 3, 6, 8]
