"""What a new user met on a fresh clone, running every documented command (issue 19): each finding,
now fixed, kept fixed here."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from gfaudit.audit.create import create
from gfaudit.bundle import keys
from gfaudit.errors import UsageError

from conftest import REPO, SHARED_VICTIM, needs_shared, needs_torch, tiny_train_args

DEMO = REPO / "fingerprints" / "resnet20-cifar10"
DEMO_BUNDLE = DEMO / "resnet20-cifar10.safetensors"


def _module(path: Path, name: str):
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(path.parent))


# ------------------------------------------------------------------ benchmarks


def test_benchmark_report_goes_to_its_own_folder_unless_the_docs_are_asked_for():
    run = _module(REPO / "benchmarks" / "run.py", "benchmark_run")
    md, png = run.output_paths(None, False, "tiny")
    assert md == REPO / "benchmarks" / "out" / "benchmark-tiny.md" and png.parent == md.parent
    ignored = subprocess.run(["git", "check-ignore", str(md), str(png)], cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout.split() == [str(md), str(png)]  # never shows up as a change to commit
    assert run.output_paths(None, True, "cpu") == (
        REPO / "docs" / "benchmark.md",
        REPO / "docs" / "benchmark-curves.png",
    )
    assert run.output_paths(Path("/x/r.md"), False, "cpu") == (Path("/x/r.md"), Path("/x/r-curves.png"))


CHILD = """
import os, signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "x = bytearray(160_000_000); x[::4096] = b'1' * len(x[::4096]); import time; time.sleep(30)"])
time.sleep(1.5)
os.kill(child.pid, signal.SIGKILL)  # like gfaudit's worker: ended, never waited for
"""


def test_memory_figure_includes_the_workers():
    measure = _module(REPO / "benchmarks" / "measure.py", "benchmark_measure")
    r = measure.median_of([sys.executable, "-c", CHILD], runs=1)
    assert r["processes"] >= 2
    assert r["peak_all_processes_mb"] >= 150 > r["peak_rss_mb"], r  # the main process alone misses the worker


# ------------------------------------------------------------------ training


@needs_torch()
def test_an_epoch_logs_its_progress_without_a_terminal(monkeypatch, capsys):
    import torch

    from gfaudit_trainer import progress
    from gfaudit_trainer.models import zoo
    from gfaudit_trainer.models.training import FitConfig, fit

    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    torch.manual_seed(0)
    model = zoo.Normalized(zoo.build("vgg11:width=0.25"), [0.5] * 3, [0.25] * 3)
    images = torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8)
    fit(model, images, torch.randint(0, 10, (48,)), FitConfig(epochs=1, batch_size=16), torch.device("cpu"), desc="m")
    err = capsys.readouterr().err
    assert "m epoch 1/1: 1/3 steps (33%), about" in err and "m epoch 1/1: 2/3 steps (67%)" in err
    assert "m: epoch 1/1 loss" in err


@needs_torch()
def test_pool_data_labels_nothing_when_every_student_queries_per_batch():
    """The cpu preset's students all ask the victim per augmented batch: labelling their 37,500
    training images up front (3 silent minutes on 2 cores) was work nothing read."""
    import dataclasses

    import torch

    from gfaudit_trainer import presets
    from gfaudit_trainer.models import zoo
    from gfaudit_trainer.models.data import Split
    from gfaudit_trainer.models.pools import member, pool_data
    from gfaudit_trainer.models.training import FitConfig, fit

    torch.manual_seed(0)
    victim = zoo.Normalized(zoo.build("vgg11:width=0.25"), [0.5] * 3, [0.25] * 3).eval()
    classes = tuple(str(i) for i in range(10))

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.arange(n) % 10, classes)

    d_v, d_p, test = split(40), split(30), split(20)
    tiny = presets.get("tiny")
    cpu = dataclasses.replace(tiny, positive=presets.get("cpu").positive)
    # Every cpu positive asks the victim per batch or is a weight-derived copy (which fine-tunes on true labels).
    entries = [member(s, cpu.positive, "positive") for s in cpu.positive.train_archs + cpu.positive.val_archs]
    assert all(m.query or m.derivation for m in entries) and any(m.derivation for m in entries)
    data = pool_data(victim, d_v, d_p, test, cpu, "cpu", [0.5] * 3, [0.25] * 3, 10)
    assert data.targets["positive"].numel() == 0 and len(data.images["positive"]) == 70  # d_v+d_p, unlabelled
    assert len(data.targets["negative"]) == 40 and len(data.victim_test) == 20  # tiny negatives: D_v
    # A querying student trains on those images with no fixed targets at all.
    student = zoo.Normalized(zoo.build("vgg11:width=0.25"), [0.5] * 3, [0.25] * 3)
    cfg = FitConfig(epochs=1, batch_size=32, query="label")
    fit(student, data.images["positive"], data.targets["positive"], cfg, torch.device("cpu"), teacher=victim)
    # A preset whose students learn fixed labels still gets them.
    fixed = pool_data(victim, d_v, d_p, test, tiny, "cpu", [0.5] * 3, [0.25] * 3, 10)
    assert len(fixed.targets["positive"]) == len(fixed.images["positive"]) == 30


@needs_torch()
@needs_shared()
def test_train_without_data_and_network_says_what_to_pass(cli, tmp_path, keypair):
    dead = "http://127.0.0.1:9"  # nothing listens: the download fails at once, as offline
    env = {"https_proxy": dead, "http_proxy": dead, "HTTPS_PROXY": dead, "HTTP_PROXY": dead, "no_proxy": ""}
    r = cli(*tiny_train_args(tmp_path / "fp.safetensors", tmp_path / "cache", keypair, data=False), env=env)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert lines[-1].startswith("gfaudit: error: no --data given and CIFAR-10 could not be downloaded")
    assert "pass --data FOLDER" in lines[-1]


# ------------------------------------------------------------------ bundle create, inspect, check


@pytest.fixture()
def npy_pairs(tmp_path, pairs):
    np.save(tmp_path / "x.npy", pairs[0])
    np.save(tmp_path / "xp.npy", pairs[1])
    return ["--x", tmp_path / "x.npy", "--x-prime", tmp_path / "xp.npy"]


def test_bundle_create_needs_a_known_method_and_says_the_threshold_is_uncalibrated(
    cli, tmp_path, keypair, victim_onnx, npy_pairs
):
    out = tmp_path / "fp.safetensors"
    base = ["bundle", "create", *npy_pairs, "--victim", victim_onnx, "--key", keypair[0], "-o", out]
    r = cli(*base)
    assert r.exit_code == 2 and "--method" in r.stderr and not out.exists()
    r = cli(*base, "--method", "nope")
    assert r.exit_code == 2 and "ganfinger" in r.stderr and "custom" in r.stderr and not out.exists()
    r = cli(*base, "--method", "custom")
    assert r.exit_code == 0, r.output
    assert "threshold 0.5 (the default) is not calibrated" in r.stderr and "gfaudit sign --threshold" in r.stderr
    insp = json.loads(cli("inspect", out, "--pubkey", keypair[1], "--format", "json").stdout)
    assert insp["manifest"]["method"] == "custom" and insp["manifest"]["scoring"]["rule"] == "label_match"
    assert insp["manifest"]["provenance"]["threshold_source"] == "bundle create default"
    assert insp["summary"]["null model"].startswith("none: the threshold is not calibrated")
    r = cli(*base, "--method", "ganfinger", "--threshold", "0.7")
    assert r.exit_code == 0 and "threshold 0.7 (given) is not calibrated" in r.stderr
    with pytest.raises(UsageError, match="unknown method 'nope'"):  # the library refuses it too
        create(
            tmp_path / "lib.safetensors",
            x=np.load(tmp_path / "x.npy"),
            x_prime=np.load(tmp_path / "xp.npy"),
            victim_onnx=victim_onnx,
            mean=[0.5] * 3,
            std=[0.5] * 3,
            key=keys.load_private(keypair[0]),
            method="nope",
        )


def test_inspect_opens_with_a_summary(cli):
    pub = DEMO / "owner.pub"
    r = cli("inspect", DEMO_BUNDLE, "--pubkey", pub)
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    manifest = json.loads(cli("inspect", DEMO_BUNDLE, "--pubkey", pub, "--format", "json").stdout)["manifest"]
    head = dict(line.split(":", 1) for line in lines[1:7])
    assert list(head) == ["method", "K", "threshold", "null model", "victim", "signer"]
    assert head["method"].split()[0] == manifest["method"]
    assert head["K"].strip() == str(manifest["tensors"]["x"]["shape"][0])
    assert head["threshold"].split()[0] == manifest["scoring"]["threshold"]
    null = manifest["scoring"]["null_model"]
    assert head["null model"].strip().startswith(null["kind"])  # whichever calibration the bundle signs
    assert all(str(v) in head["null model"] for k, v in null.items() if k in ("hit_rate", "false_accusation_rate"))
    assert manifest["provenance"]["victim_sha256"] in head["victim"]
    assert keys.keyid(keys.load_public(pub)) in head["signer"]


def test_a_mistyped_bundle_path_is_a_usage_error(cli, tmp_path, keypair, signed_bundle, victim_onnx):
    r = cli("check", victim_onnx, "--bundle", tmp_path / "typo.safetensors", "--pubkey", keypair[1])
    assert r.exit_code == 2 and "bundle not found" in r.stderr and ".sig" not in r.stderr
    r = cli("inspect", tmp_path / "typo.safetensors", "--unverified")
    assert r.exit_code == 2 and "bundle not found" in r.stderr
    alone = tmp_path / "alone.safetensors"
    alone.write_bytes(signed_bundle.read_bytes())  # the bundle without its signature: still exit 3
    r = cli("check", victim_onnx, "--bundle", alone, "--pubkey", keypair[1])
    assert r.exit_code == 3 and "signature file" in r.stderr


def _pytorch_like(tmp_path: Path) -> list[Path]:
    st = tmp_path / "model.safetensors"
    save_file({"conv.weight": np.zeros((4, 3, 3, 3), np.float32)}, str(st))
    files = [st]
    if SHARED_VICTIM.is_file():
        files.append(SHARED_VICTIM)  # a real torch.save state_dict
    return files


def test_a_pytorch_file_given_as_onnx_points_at_export_onnx(cli, tmp_path, keypair, signed_bundle):
    for model in _pytorch_like(tmp_path):
        r = cli("check", model, "--bundle", signed_bundle, "--pubkey", keypair[1], "--format", "json")
        assert r.exit_code == 4
        error = json.loads(r.stdout)["suspects"][0]["error"]
        assert (
            "not an ONNX model" in error and f"gfaudit export-onnx {model}" in error and "protobuf" not in error.lower()
        )
        r = cli("verify", signed_bundle, "--pubkey", keypair[1], "--victim", model)
        assert r.exit_code == 4 and "export-onnx" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_ci_keeps_the_demos_venv():
    ci = (REPO / ".ci" / "run").read_text()
    assert "rm -rf .venv\n" not in ci and 'venv=.venv-ci\nrm -rf "$venv"' in ci
    ignored = subprocess.run(["git", "check-ignore", "-q", str(REPO / ".venv-ci" / "x")], cwd=REPO)
    assert ignored.returncode == 0
