"""`gfaudit evaluate` scores through the same code as `check`, on a hand-made library.json."""

from __future__ import annotations

import json

import pytest

from gfaudit.audit import metrics

import onnx_factory as f


@pytest.fixture()
def library(tmp_path, victim_onnx):
    models = []
    (tmp_path / "copy.onnx").write_bytes(victim_onnx.read_bytes())
    models.append({"path": "copy.onnx", "label": "pirated", "attack": "copy", "arch": "linear", "accuracy": 0.1})
    for seed in (3, 4, 5):
        f.build(tmp_path / f"other{seed}.onnx", *f.weights(seed=seed))
        models.append({"path": f"other{seed}.onnx", "label": "unrelated", "attack": "independent"})
    (tmp_path / "library.json").write_text(json.dumps({"models": models}))
    return tmp_path


def test_evaluate_agrees_with_check_json(cli, library, signed_bundle, keypair, tmp_path):
    r = cli(
        "evaluate",
        "--library",
        library,
        "--bundle",
        signed_bundle,
        "--pubkey",
        keypair[1],
        "--format",
        "json",
        "--plot",
        tmp_path / "curves.png",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (tmp_path / "curves.png").stat().st_size > 1000
    scores = {}
    for m in json.loads((library / "library.json").read_text())["models"]:
        c = cli("check", library / m["path"], "--bundle", signed_bundle, "--pubkey", keypair[1], "--format", "json")
        scores[m["path"]] = (m["label"], json.loads(c.stdout)["suspects"][0]["ard"])
    pir = [s for lab, s in scores.values() if lab == "pirated"]
    unr = [s for lab, s in scores.values() if lab == "unrelated"]
    assert doc["aruc"] == pytest.approx(metrics.aruc(pir, unr), abs=1e-4)
    assert doc["roc_auc"] == pytest.approx(metrics.roc_auc(pir, unr), abs=1e-4)
    assert set(doc["tpr_at_fpr"]) == {"0.0", "0.01"}
    assert {m["verdict"] for m in doc["models"]} <= {"derived", "not-derived"}
    assert doc["signed_threshold"]["pirated_flagged"] == 1


def test_evaluate_markdown_has_family_table(cli, library, signed_bundle, keypair):
    r = cli(
        "evaluate",
        "--library",
        library / "library.json",
        "--bundle",
        signed_bundle,
        "--pubkey",
        keypair[1],
        "--format",
        "markdown",
    )
    assert r.exit_code == 0
    assert "| ARUC |" in r.stdout and "| unrelated | independent | 3 |" in r.stdout


@pytest.mark.parametrize(
    "content", ["not json", '{"models": []}', '{"models": [{"path": "a.onnx", "label": "maybe"}]}']
)
def test_bad_library_is_usage_error(cli, tmp_path, signed_bundle, keypair, content):
    (tmp_path / "library.json").write_text(content)
    r = cli("evaluate", "--library", tmp_path, "--bundle", signed_bundle, "--pubkey", keypair[1])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_missing_model_is_reported_not_crashed(cli, tmp_path, signed_bundle, keypair, victim_onnx):
    (tmp_path / "v.onnx").write_bytes(victim_onnx.read_bytes())
    (tmp_path / "library.json").write_text(
        json.dumps({"models": [{"path": "v.onnx", "label": "pirated"}, {"path": "gone.onnx", "label": "unrelated"}]})
    )
    r = cli("evaluate", "--library", tmp_path, "--bundle", signed_bundle, "--pubkey", keypair[1], "--format", "json")
    assert r.exit_code == 4
    doc = json.loads(r.stdout)
    assert doc["errors"] == 1 and doc["aruc"] is None
