"""Several bundles per check (--bundle repeated, --bundle-dir) and rotation (--operator, --served-ledger):
real signed bundles, real onnxruntime, one mechanism for both."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gfaudit.audit import isolation as isolation_mod
from gfaudit.audit.create import create
from gfaudit.bundle import keys

from conftest import onnx_factory as f


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keypair, victim_onnx):
    """Three bundles of different pairs in one folder (plus a generator file that must be skipped),
    and a fourth with another normalisation outside it."""
    d = tmp_path_factory.mktemp("bundles")
    key = keys.load_private(keypair[0])
    for name, seed in (("a.safetensors", 11), ("b.safetensors", 12), ("c.safetensors", 13)):
        x, xp = f.random_pairs(k=60, seed=seed, eps=40)
        create(d / name, x=x, x_prime=xp, victim_onnx=victim_onnx, mean=list(f.MEAN), std=list(f.STD), key=key)
    (d / "a.generator.safetensors").write_bytes(b"private weights, not a bundle")
    (d / "a.generator.json").write_text("{}")
    other = tmp_path_factory.mktemp("other") / "n.safetensors"
    x, xp = f.random_pairs(k=60, seed=14, eps=40)
    create(other, x=x, x_prime=xp, victim_onnx=victim_onnx, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], key=key)
    return d, other


@pytest.fixture(scope="module")
def models(tmp_path_factory, victim_onnx):
    d = tmp_path_factory.mktemp("suspects")
    (d / "copy.onnx").write_bytes(victim_onnx.read_bytes())
    f.build(d / "other.onnx", *f.weights(seed=5))
    return d


def _json(r) -> dict:
    return json.loads(r.stdout)


def test_bundle_dir_scores_every_bundle_and_labels_each_suspect_once_per_input(
    cli, bundles, models, keypair, monkeypatch
):
    folder, other = bundles
    calls = []
    real = isolation_mod.run_isolated

    def counting(job, timeout):
        calls.append((Path(job.path).name, len(job.x), tuple(job.mean)))
        return real(job, timeout)

    monkeypatch.setattr(isolation_mod, "run_isolated", counting)
    r = cli("check", models, "--bundle-dir", folder, "--bundle", other, "--pubkey", keypair[1], "--format", "json")
    assert r.exit_code == 1, r.output  # the copy is derived by some bundle
    doc = _json(r)
    names = [Path(b["path"]).name for b in doc["bundles"]]
    assert names == [
        "n.safetensors",
        "a.safetensors",
        "b.safetensors",
        "c.safetensors",
    ]  # --bundle first, then the folder
    assert doc["bundle"] == doc["bundles"][0] and all(b["pubkey"] == str(keypair[1]) for b in doc["bundles"])
    rows = doc["suspects"]
    assert len(rows) == 2 * 4
    by_sha = {b["sha256"]: Path(b["path"]).name for b in doc["bundles"]}
    for row in rows:
        assert by_sha[row["bundle_sha256"]] == Path(row["bundle"]).name
    copy_rows = [r_ for r_ in rows if r_["path"].endswith("copy.onnx")]
    assert {r_["verdict"] for r_ in copy_rows} == {"derived"} and len(copy_rows) == 4
    # Each suspect ran twice: once for the three bundles that share the input spec (their 180 pairs
    # together), once for the bundle with its own normalisation.
    ks = [b["k"] for b in doc["bundles"]]
    assert sorted(calls) == sorted(
        [
            (m, n, mean)
            for m in ("copy.onnx", "other.onnx")
            for n, mean in ((ks[0], (0.5, 0.5, 0.5)), (sum(ks[1:]), f.MEAN))
        ]
    )
    sarif = json.loads(cli("check", models, "--bundle-dir", folder, "--pubkey", keypair[1], "--format", "sarif").stdout)
    results = sarif["runs"][0]["results"]
    assert len(results) == 6 and len({json.dumps(x["partialFingerprints"]) for x in results}) == 6
    assert all(Path(x["properties"]["bundle"]).name in x["message"]["text"] for x in results)
    text = cli("check", models, "--bundle-dir", folder, "--pubkey", keypair[1]).stdout
    assert text.startswith("bundle   [1] ") and "by at least one of 3 bundles; exit 1" in text


def test_every_bundle_is_verified_before_any_suspect_runs(cli, bundles, models, keypair, tmp_path, monkeypatch):
    folder, _ = bundles
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in folder.glob("*.safetensors*"):
        (bad / p.name).write_bytes(p.read_bytes())
    data = bytearray((bad / "c.safetensors").read_bytes())
    data[-1] ^= 1
    (bad / "c.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(isolation_mod, "run_isolated", lambda job, timeout: pytest.fail("a suspect ran"))
    r = cli("check", models, "--bundle-dir", bad, "--pubkey", keypair[1], "--json-file-output", tmp_path / "r.json")
    assert r.exit_code == 3, r.output
    assert json.loads((tmp_path / "r.json").read_text())["error"]["kind"] == "integrity"
    assert cli("check", models, "--bundle-dir", tmp_path / "r.json", "--pubkey", keypair[1]).exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("check", models, "--bundle-dir", empty, "--pubkey", keypair[1])
    assert r.exit_code == 2 and "no bundle" in r.stderr


def test_rotation_serves_each_operator_unseen_bundles_and_records_them(cli, bundles, models, keypair, tmp_path):
    folder, _ = bundles
    ledger = tmp_path / "served.json"
    copy = models / "copy.onnx"
    base = ["check", copy, "--bundle-dir", folder, "--pubkey", keypair[1], "--served-ledger", ledger]
    served = []
    for i in range(3):
        r = cli(*base, "--operator", "acme", "--audit-id", f"acme-{i}", "--format", "json")
        assert r.exit_code == 1, r.output
        doc = _json(r)
        assert len(doc["bundles"]) == 1 and doc["audit"]["id"] == f"acme-{i}"
        assert (
            doc["audit"]["served"] == [doc["bundles"][0]["sha256"]] and doc["audit"]["served_to_operator_before"] == i
        )
        served.append(Path(doc["bundles"][0]["path"]).name)
    assert served == ["a.safetensors", "b.safetensors", "c.safetensors"]  # never the same bundle twice
    assert oct(os.stat(ledger).st_mode & 0o777) == "0o600"
    entries = json.loads(ledger.read_text())["served"]
    assert [(e["audit_id"], e["operator"], e["bundle"]) for e in entries] == [
        (f"acme-{i}", "acme", n) for i, n in enumerate(served)
    ]
    r = cli(*base, "--operator", "acme")
    assert r.exit_code == 2 and "gfaudit refresh" in r.stderr  # nothing unserved left for acme
    assert json.loads(ledger.read_text())["served"] == entries  # a refused audit records nothing
    # Another operator starts afresh; a reused audit id is refused; rotation needs both flags.
    r = cli(*base, "--operator", "globex", "--serve", "2", "--format", "json")
    assert r.exit_code == 1 and [Path(b["path"]).name for b in _json(r)["bundles"]] == served[:2]
    assert cli(*base, "--operator", "initech", "--audit-id", "acme-0").exit_code == 2
    assert cli("check", copy, "--bundle-dir", folder, "--pubkey", keypair[1], "--operator", "x").exit_code == 2
    assert cli("check", copy, "--bundle-dir", folder, "--pubkey", keypair[1], "--serve", "2").exit_code == 2


def test_gfaudit_bundle_environment_still_names_one_bundle(cli, bundles, models, keypair):
    folder, _ = bundles
    env = {"GFAUDIT_BUNDLE": str(folder / "a.safetensors"), "GFAUDIT_PUBKEY": str(keypair[1]), "GFAUDIT_FORMAT": "json"}
    r = cli("check", models / "copy.onnx", env=env)
    assert r.exit_code == 1 and [Path(b["path"]).name for b in _json(r)["bundles"]] == ["a.safetensors"]
    assert cli("check", models / "copy.onnx", "--pubkey", keypair[1], env={"GFAUDIT_BUNDLE": ""}).exit_code == 2
