"""ONNX suspects built with the onnx helper API: each is scored correctly or rejected with exit 4."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gfaudit.bundle import keys, scoring
from gfaudit.bundle.container import load

import onnx_factory as f

SCORED = {
    "nchw_float32_dynamic": {},
    "nhwc_float32": {"layout": "NHWC"},
    "fixed_batch_1": {"batch": 1},
    "fixed_batch_7": {"batch": 7},  # 120 pairs: 17 chunks and a padded last one
    "float16_input": {"dtype": "float16"},
    "uint8_input_normalises_inside": {"dtype": "uint8"},
    "probabilities_output": {"softmax": True},
    "nhwc_uint8_fixed_batch": {"layout": "NHWC", "dtype": "uint8", "batch": 5},
}


@pytest.fixture(scope="module")
def bundle(signed_bundle, keypair):
    return load(signed_bundle, keys.load_public(keypair[1]))


@pytest.mark.parametrize("variant", list(SCORED))
@pytest.mark.parametrize("seed", [0, 3])
def test_variant_scored_like_numpy_reference(cli, tmp_path, signed_bundle, keypair, bundle, variant, seed):
    """Seed 0 is the victim's own weights (a copy, ARD 1); seed 3 is an unrelated model."""
    W, b = f.weights(seed=seed)
    path = f.build(tmp_path / f"{variant}.onnx", W, b, **SCORED[variant])
    result = cli("check", path, "--bundle", signed_bundle, "--pubkey", keypair[1], "--format", "json")
    assert result.exit_code in (0, 1), result.output
    got = json.loads(result.stdout)["suspects"][0]
    expected = scoring.ard(
        bundle.y, bundle.y_prime, f.reference_labels(bundle.x, W, b), f.reference_labels(bundle.x_prime, W, b)
    )
    assert got["ard"] == pytest.approx(expected.score, abs=1e-6)
    assert got["p_ori"] == pytest.approx(expected.p_ori, abs=1e-6)
    assert got["p_conf"] == pytest.approx(expected.p_conf, abs=1e-6)
    if seed == 0:
        assert got["verdict"] == "derived" and got["ard"] == 1.0 and result.exit_code == 1
    else:
        assert got["verdict"] == "not-derived" and result.exit_code == 0


REJECTED = {
    "two_inputs": lambda p, W, b: f.build(p, W, b, extra_input=True),
    "wrong_class_count": lambda p, W, b: f.build(p, W[:, :7].copy(), b[:7].copy()),
    "rank3_output": lambda p, W, b: f.build(p, W, b, out_rank=3),
    "wrong_spatial_size": lambda p, W, b: f.build(p, np.zeros((3 * 16 * 16, 10), np.float32), b, h=16, w=16),
    "ir_version_too_new": lambda p, W, b: f.build(p, W, b, ir_version=99),
    "truncated_file": lambda p, W, b: p.write_bytes(f.build(p, W, b).read_bytes()[:5000]) or p,
    "not_onnx_at_all": lambda p, W, b: p.write_bytes(b"this is not a model\n") or p,
    "empty_file": lambda p, W, b: p.write_bytes(b"") or p,
}


@pytest.mark.parametrize("variant", list(REJECTED))
def test_bad_suspect_exit_4_one_line(cli, tmp_path, signed_bundle, keypair, weights, variant):
    path = tmp_path / f"{variant}.onnx"
    REJECTED[variant](path, *weights)
    result = cli("check", path, "--bundle", signed_bundle, "--pubkey", keypair[1], "--format", "json")
    assert result.exit_code == 4, result.output
    entry = json.loads(result.stdout)["suspects"][0]
    assert entry["verdict"] == "error" and entry["exit_code"] == 4
    assert "Traceback" not in result.output
    error_lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1 and str(path) in error_lines[0]


def test_missing_suspect_file(cli, tmp_path, signed_bundle, keypair):
    result = cli("check", tmp_path / "nope.onnx", "--bundle", signed_bundle, "--pubkey", keypair[1])
    assert result.exit_code == 4 and "no such file" in result.stderr


def test_several_suspects_most_severe_code(cli, tmp_path, signed_bundle, keypair, victim_onnx):
    unrelated = f.build(tmp_path / "unrelated.onnx", *f.weights(seed=3))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"junk")
    args = ["--bundle", signed_bundle, "--pubkey", keypair[1], "--format", "json"]
    assert cli("check", unrelated, *args).exit_code == 0
    assert cli("check", unrelated, victim_onnx, *args).exit_code == 1
    result = cli("check", unrelated, victim_onnx, broken, *args)
    assert result.exit_code == 4
    verdicts = [s["verdict"] for s in json.loads(result.stdout)["suspects"]]
    assert verdicts == ["not-derived", "derived", "error"]


def test_expect_gate(cli, tmp_path, signed_bundle, keypair, victim_onnx):
    unrelated = f.build(tmp_path / "unrelated.onnx", *f.weights(seed=3))
    args = ["--bundle", signed_bundle, "--pubkey", keypair[1]]
    assert cli("check", victim_onnx, *args, "--expect", "derived").exit_code == 0
    assert cli("check", unrelated, *args, "--expect", "derived").exit_code == 1
    assert cli("check", unrelated, *args, "--expect", "not-derived").exit_code == 0
    assert cli("check", victim_onnx, *args, "--expect", "not-derived").exit_code == 1


def test_cuda_requested_without_cuda_is_exit_4(cli, signed_bundle, keypair, victim_onnx):
    from gfaudit.audit.onnx_model import cuda_driver_present

    if cuda_driver_present():
        pytest.skip("this machine has an NVIDIA driver; the no-CUDA path cannot be shown here")
    result = cli("check", victim_onnx, "--bundle", signed_bundle, "--pubkey", keypair[1], "--device", "cuda")
    assert result.exit_code == 4
    assert "cuda" in result.stderr.lower() and result.stdout == ""
