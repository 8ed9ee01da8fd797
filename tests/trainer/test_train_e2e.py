"""The tiny preset end to end (train -> bundle -> verify -> check), and resuming interrupted training."""

from __future__ import annotations

import json

import pytest

from gfaudit.bundle import null_model as null

from conftest import REPO, needs_shared, needs_torch

pytestmark = needs_torch()


@needs_shared()
def test_tiny_train_verify_check(cli, tmp_path, keypair, tiny_train):
    out, summary = tiny_train.bundle, tiny_train.summary
    folder = tiny_train.folder
    assert out.is_file() and (folder / "fp.safetensors.sig").is_file() and (folder / "fp.png").is_file()
    victim_onnx = summary["victim_onnx"]
    v = cli("verify", out, "--pubkey", keypair[1], "--victim", victim_onnx, "--format", "json")
    assert v.exit_code == 0, v.output
    assert json.loads(v.stdout)["authenticity"]["ok"]
    c = cli("check", victim_onnx, "--bundle", out, "--pubkey", keypair[1], "--format", "json")
    assert c.exit_code == 1
    entry = json.loads(c.stdout)["suspects"][0]
    assert entry["verdict"] == "derived" and entry["ard"] == 1.0
    manifest = json.loads(cli("inspect", out, "--pubkey", keypair[1], "--format", "json").stdout)["manifest"]
    prov = manifest["provenance"]
    assert prov["preset"]["name"] == "tiny" and len(prov["pools"]) == 8
    # Weight-derived positives are recorded as what they are, with their own accuracy.
    derived = [m for m in prov["pools"] if m.get("inheritance", "").startswith("weights:")]
    assert [m["arch"] for m in derived] == ["victim/ftal", "victim/prune:0.5", "victim/filter:jpeg@60"]
    assert all(m["role"] == "positive" and m["recipe"] == "derived" for m in derived)
    assert set(manifest["provenance"]["selection"]["follow_on_selected"]) == {"student", "weights", "negative"}
    assert [m["split"] for m in prov["pools"] if m["role"] == "negative"] == ["train", "val", "calib"]
    # The threshold is the beta-binomial predictive tail over the calibration models' signed hit
    # counts, and the auditor's p-value uses the same signed null model.
    calib_rows = prov["validation_scores"]["calibration"]
    assert len(calib_rows) == 1 and calib_rows[0]["split"] == "calib"
    k = manifest["k"]
    null_model = manifest["scoring"]["null_model"]
    assert null_model["kind"] == "beta-binomial-predictive" and null_model["pairs"] == k
    assert null_model["calibration_hits"] == [r["hits"] for r in calib_rows]
    pmf = null.beta_binomial_predictive(null_model["calibration_hits"], k)
    assert float(manifest["scoring"]["threshold"]) == round(min(1.0, null.predictive_threshold(pmf, 0.001)), 4)
    assert entry["p_value"] == float(f"{null.predictive_tail(pmf, round(entry['score'] * k)):.3g}")
    assert entry["p_value_supported"] == 0.5  # one calibration model: 1 / (n + 1)
    loo = prov["calibration"]["leave_one_out"]
    assert len(loo) == 1 and loo[0]["hits"] == calib_rows[0]["hits"] and loo[0]["flagged"] is False
    # The shipped bundle's README is rendered from the same signed provenance.
    import sys

    sys.path.insert(0, str(REPO / "fingerprints"))
    from describe import describe

    text = describe(manifest)
    assert f"ARD >= {manifest['scoring']['threshold']}" in text and "beta-binomial" in text
    assert text.count("| negative, calibration only |") == 1 and "cosine" in text
    assert {"pool_building", "fingerprint_generation"} <= set(prov["timings_s"])
    assert len(prov["gan_history"]) == prov["preset"]["gan"]["epochs"]
    assert all({"adv", "gan", "hinge", "conf", "d"} <= set(row) for row in prov["gan_history"])
    assert manifest["perturbation"]["linf_max"] <= 0.05 + 1 / 255
    # A second run reuses every cached pool model (no training, same pools).
    r2 = cli(
        "train",
        "--arch",
        "resnet20",
        "--preset",
        "tiny",
        "-o",
        tmp_path / "fp2.safetensors",
        *tiny_train.common_args(keypair),
        "--false-accusation",
        "0.25",
    )
    assert r2.exit_code == 0
    assert "epoch 1/1" not in r2.stderr
    # The CLI's false-accusation rate reaches the signed calibration, and a looser alpha never raises the threshold.
    m2 = json.loads(cli("inspect", tmp_path / "fp2.safetensors", "--pubkey", keypair[1], "--format", "json").stdout)[
        "manifest"
    ]
    cal = m2["provenance"]["calibration"]
    assert cal["false_accusation_alpha"] == 0.25 and prov["calibration"]["false_accusation_alpha"] == 0.001
    assert m2["scoring"]["null_model"]["false_accusation_rate"] == "0.25"
    assert float(m2["scoring"]["threshold"]) <= float(manifest["scoring"]["threshold"])


def test_train_fails_fast_on_bad_key_and_victim(cli, tmp_path, keypair):
    r = cli(
        "train",
        "--victim",
        tmp_path / "none.pt",
        "--arch",
        "resnet20",
        "--key",
        tmp_path / "none.key",
        "-o",
        tmp_path / "o.safetensors",
    )
    assert r.exit_code == 2 and "key file not found" in r.stderr
    r = cli(
        "train",
        "--victim",
        tmp_path / "none.pt",
        "--arch",
        "resnet20",
        "--key",
        keypair[0],
        "-o",
        tmp_path / "o.safetensors",
        "--preset",
        "tiny",
    )
    assert r.exit_code == 2 and "victim not found" in r.stderr
    r = cli(
        "train",
        "--victim",
        tmp_path / "none.pt",
        "--key",
        keypair[0],
        "-o",
        tmp_path / "o.safetensors",
        "--preset",
        "huge",
    )
    assert r.exit_code == 2 and "unknown preset" in r.stderr


def test_interrupted_training_resumes_from_last_epoch(tmp_path):
    import torch

    from gfaudit_trainer.models import zoo
    from gfaudit_trainer.models.training import FitConfig, fit

    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    cfg = FitConfig(epochs=3, batch_size=32, seed=1)
    ckpt = tmp_path / "m.ckpt"
    calls = {"n": 0}

    def crash_in_epoch_3(model, xb, yb):
        calls["n"] += 1
        if calls["n"] == 5:  # two batches per epoch: the 5th batch is epoch 3's first
            raise KeyboardInterrupt
        return xb

    torch.manual_seed(0)
    model = zoo.Normalized(zoo.build("vgg11:width=0.25"), [0.5] * 3, [0.25] * 3)
    with pytest.raises(KeyboardInterrupt):
        fit(model, images, labels, cfg, torch.device("cpu"), perturb=crash_in_epoch_3, checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    calls["n"] = 100
    seen = []
    fit(model, images, labels, cfg, torch.device("cpu"), perturb=lambda m, x, y: seen.append(1) or x, checkpoint=ckpt)
    assert len(seen) == 2  # only epoch 3 ran again
    assert torch.load(ckpt, weights_only=True)["epoch"] == 3


def test_cached_pool_model_is_not_retrained(tmp_path, monkeypatch):
    import torch

    from gfaudit_trainer.models import pools
    from gfaudit_trainer.models.data import Split
    from gfaudit_trainer.models.training import FitConfig

    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (40,))
    test = Split(images, labels, tuple(str(i) for i in range(10)))
    args = (
        "vgg11:width=0.25",
        tmp_path / "m.safetensors",
        images,
        labels,
        FitConfig(epochs=1, batch_size=20),
        test,
        labels,
        [0.5] * 3,
        [0.25] * 3,
        10,
        torch.device("cpu"),
        "m",
    )
    model, meta = pools.train_or_load(*args)
    monkeypatch.setattr(pools, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    again, meta2 = pools.train_or_load(*args)
    assert meta2 == meta
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())


def test_train_on_cuda_without_a_gpu_is_exit_4(cli, tmp_path, keypair):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the missing-CUDA path cannot be shown here")
    r = cli(
        "train",
        "--victim",
        tmp_path / "none.pt",
        "--arch",
        "resnet20",
        "--key",
        keypair[0],
        "-o",
        tmp_path / "o.safetensors",
        "--preset",
        "tiny",
        "--device",
        "cuda",
    )
    assert r.exit_code == 4 and "cuda" in r.stderr.lower()
    assert not (tmp_path / "o.safetensors").exists()


def test_query_mode_learns_the_teachers_answers_not_the_given_targets():
    """Online extraction: each augmented batch is labelled by the teacher, so a student trained with
    targets that all say class 0 still learns the teacher's answer (here: always class 3)."""
    import torch
    import torch.nn as nn

    from gfaudit_trainer.models import zoo
    from gfaudit_trainer.models.training import FitConfig, fit, predict

    class AlwaysThree(nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), 3), 10).float() * 5.0

    images = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8)
    wrong = torch.zeros(96, dtype=torch.long)
    for query in ("label", "prob"):
        torch.manual_seed(0)
        student = zoo.Normalized(zoo.build("vgg11:width=0.25"), [0.5] * 3, [0.25] * 3)
        fit(
            student,
            images,
            wrong,
            FitConfig(epochs=3, batch_size=32, lr=0.02, query=query),
            torch.device("cpu"),
            teacher=AlwaysThree(),
        )
        assert (predict(student, images, "cpu") == 3).float().mean() > 0.9, query
    with pytest.raises(ValueError, match="needs a teacher"):
        fit(student, images, wrong, FitConfig(epochs=1, query="label"), torch.device("cpu"))


def test_pool_model_names_change_with_the_query_mode_only_when_set():
    from gfaudit_trainer.models.pools import model_name
    from gfaudit_trainer.models.training import FitConfig

    fixed = model_name("positive", "train", 0, "resnet20", FitConfig(epochs=10))
    assert model_name("positive", "train", 0, "resnet20", FitConfig(epochs=10, query="")) == fixed
    assert model_name("positive", "train", 0, "resnet20", FitConfig(epochs=10, query="label")) != fixed
