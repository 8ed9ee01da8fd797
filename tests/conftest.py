"""Shared fixtures: a real Ed25519 key pair, real ONNX classifiers, real signed bundles."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from gfaudit.audit.create import create  # noqa: E402
from gfaudit.bundle import keys  # noqa: E402
from gfaudit.cli.app import app  # noqa: E402

import onnx_factory  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GFAUDIT_SHARED", REPO.parent / "shared"))
SHARED_VICTIM = SHARED / "models" / "resnet20-cifar10-jpeg" / "resnet20.pt"
SHARED_DATA = SHARED / "data" / "cifar10-jpeg"


def needs_shared():
    return pytest.mark.skipif(
        not SHARED_VICTIM.is_file() or not SHARED_DATA.is_dir(),
        reason=f"shared victim/data not found beside the clone ({SHARED})",
    )


def needs_torch():
    try:
        import torch  # noqa: F401

        return pytest.mark.skipif(False, reason="")
    except ImportError:
        return pytest.mark.skipif(True, reason="torch is not installed (pip install 'gfaudit[train]')")


@pytest.fixture(scope="session")
def keypair(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return keys.generate(d)


@pytest.fixture(scope="session")
def other_keypair(tmp_path_factory):
    return keys.generate(tmp_path_factory.mktemp("other-keys"))


@pytest.fixture(scope="session")
def weights():
    return onnx_factory.weights(seed=0)


@pytest.fixture(scope="session")
def victim_onnx(tmp_path_factory, weights):
    return onnx_factory.build(tmp_path_factory.mktemp("victim") / "victim.onnx", *weights)


@pytest.fixture(scope="session")
def pairs():
    return onnx_factory.random_pairs(k=120, eps=40)


@pytest.fixture(scope="session")
def signed_bundle(tmp_path_factory, keypair, victim_onnx, pairs):
    out = tmp_path_factory.mktemp("bundle") / "fp.safetensors"
    x, xp = pairs
    created = create(
        out,
        x=x,
        x_prime=xp,
        victim_onnx=victim_onnx,
        mean=list(onnx_factory.MEAN),
        std=list(onnx_factory.STD),
        key=keys.load_private(keypair[0]),
        threshold=0.5,
        class_names=[f"c{i}" for i in range(10)],
    )
    return created.path


@pytest.fixture()
def cli():
    runner = CliRunner()

    def invoke(*args, env=None):
        return runner.invoke(app, [str(a) for a in args], env=env)

    return invoke


def report(result) -> dict:
    return json.loads(result.stdout)


@pytest.fixture()
def copy_bundle(tmp_path, signed_bundle):
    """A private copy of the signed bundle (and its .sig) to tamper with."""

    def make(name: str = "fp.safetensors") -> Path:
        dst = tmp_path / name
        dst.write_bytes(signed_bundle.read_bytes())
        Path(str(dst) + ".sig").write_bytes(Path(str(signed_bundle) + ".sig").read_bytes())
        return dst

    return make


__all__ = ["np", "onnx_factory"]


def tiny_train_args(out, cache, keypair, *extra, data: bool = True) -> list:
    """The one spelling of ``gfaudit train`` at the tiny preset on the shared victim (and, unless
    ``data=False``, the shared data), writing ``out`` with ``cache``; ``extra`` options follow."""
    shared_data = ["--data", SHARED_DATA] if data else []
    common = ["--victim", SHARED_VICTIM, "--arch", "resnet20", *shared_data, "--preset", "tiny", "--device", "cpu"]
    return ["train", *common, "--key", keypair[0], "-o", out, "--cache", cache, *extra]


@dataclass(frozen=True)
class TinyTrain:
    """One ``gfaudit train --preset tiny`` run on the shared victim, shared by every test that needs a
    trained bundle: its output, the generator beside it, the summary on stdout and its cache."""

    folder: Path
    bundle: Path
    summary: dict
    stderr: str
    cache: Path

    def common_args(self, keypair) -> list:
        """The options a follow-up ``train`` or ``refresh`` repeats to reuse this run's data and pools."""
        return ["--victim", SHARED_VICTIM, "--data", SHARED_DATA, "--device", "cpu", "--key", keypair[0]] + [
            "--cache",
            self.cache,
        ]


@pytest.fixture(scope="session")
def tiny_train(tmp_path_factory, keypair) -> TinyTrain:
    """The tiny preset end to end, once per session (about a minute on 2 CPU cores)."""
    if not (SHARED_VICTIM.is_file() and SHARED_DATA.is_dir()):
        pytest.skip(f"{SHARED} not found: the shared victim and data are needed to train")
    pytest.importorskip("torch", reason="the trainer needs torch (pip install 'gfaudit[train]')")
    d = tmp_path_factory.mktemp("tiny-train")
    out = d / "fp.safetensors"
    run = TinyTrain(d, out, {}, "", d / "cache")
    args = tiny_train_args(out, run.cache, keypair)
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return TinyTrain(d, out, json.loads(r.stdout), r.stderr, run.cache)
