"""A committed bundle signed with a discarded key: every future gfaudit must still verify and score it
the same way (bundle format v1 is a promise to users, not an implementation detail)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from gfaudit.bundle import keys
from gfaudit.bundle.container import load

import onnx_factory as f

GOLDEN = Path(__file__).parents[1] / "data" / "golden"
BUNDLE = GOLDEN / "golden-v1.safetensors"
PUB = GOLDEN / "test-only.pub"


def test_golden_verifies_and_parses():
    b = load(BUNDLE, keys.load_public(PUB))
    assert b.manifest.raw["format_version"] == 1
    assert b.manifest.method == "ganfinger" and b.manifest.rule == "ard"
    assert str(b.manifest.threshold) == "0.5"
    assert b.x.shape == b.x_prime.shape == (b.k, 3, 32, 32) and b.x.dtype.name == "uint8"
    assert b.manifest.input.mean == f.MEAN and b.manifest.input.num_classes == 10
    assert (b.y != b.y_prime).all()
    assert b.sha256 == hashlib.sha256(BUNDLE.read_bytes()).hexdigest()


def test_golden_scores_its_victim_and_is_authentic(cli, tmp_path):
    victim = f.build(tmp_path / "victim.onnx", *f.weights(seed=0))
    result = cli("check", victim, "--bundle", BUNDLE, "--pubkey", PUB, "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["suspects"][0]["ard"] == 1.0
    verified = cli("verify", BUNDLE, "--pubkey", PUB, "--victim", victim, "--format", "json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["authenticity"]["ok"] is True


def test_golden_rejects_forged_victim(cli, tmp_path):
    """The arbiter's check fails when the 'victim' offered is another model."""
    other = f.build(tmp_path / "other.onnx", *f.weights(seed=5))
    result = cli("verify", BUNDLE, "--pubkey", PUB, "--victim", other)
    assert result.exit_code == 3
    assert "not authentic" in result.stderr
