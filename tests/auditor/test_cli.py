"""CLI behaviour users rely on: keys, bundle create, sign, inspect, doctor, reports, usage errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from gfaudit.bundle import keys
from gfaudit.bundle.container import load

import onnx_factory as f


def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.startswith("gfaudit ")


def test_keygen_modes_and_refuses_overwrite(cli, tmp_path):
    assert cli("keygen", "--out", tmp_path).exit_code == 0
    assert stat.S_IMODE(os.stat(tmp_path / "owner.key").st_mode) == 0o600
    assert b"PRIVATE KEY" in (tmp_path / "owner.key").read_bytes()
    assert b"PUBLIC KEY" in (tmp_path / "owner.pub").read_bytes()
    r = cli("keygen", "--out", tmp_path)
    assert r.exit_code == 2 and "--force" in r.stderr


def test_encrypted_key_needs_password(cli, tmp_path, victim_onnx, pairs):
    assert cli("keygen", "--out", tmp_path, env={"GFAUDIT_KEY_PASSWORD": "s3cret"}).exit_code == 0
    assert b"ENCRYPTED" in (tmp_path / "owner.key").read_bytes()
    np.save(tmp_path / "x.npy", pairs[0])
    np.save(tmp_path / "xp.npy", pairs[1])
    args = [
        "bundle",
        "create",
        "--method",
        "ganfinger",
        "--x",
        tmp_path / "x.npy",
        "--x-prime",
        tmp_path / "xp.npy",
        "--victim",
        victim_onnx,
        "--key",
        tmp_path / "owner.key",
        "-o",
        tmp_path / "fp.safetensors",
        "--normalization",
        "imagenet",
    ]
    r = cli(*args, env={"GFAUDIT_KEY_PASSWORD": ""})
    assert r.exit_code == 2 and "GFAUDIT_KEY_PASSWORD" in r.stderr
    assert not (tmp_path / "fp.safetensors").exists()
    r = cli(*args, env={"GFAUDIT_KEY_PASSWORD": "s3cret"})
    assert r.exit_code == 0, r.output
    assert "dropped" in r.stderr  # pairs whose x' keeps x's label are dropped with a warning
    b = load(tmp_path / "fp.safetensors", keys.load_public(tmp_path / "owner.pub"))
    assert (b.y != b.y_prime).all() and b.manifest.input.mean == f.MEAN


def test_bundle_create_bad_inputs_are_usage_errors(cli, tmp_path, keypair, victim_onnx, pairs):
    np.save(tmp_path / "float.npy", pairs[0].astype(np.float32))
    np.save(tmp_path / "x.npy", pairs[0])
    (tmp_path / "junk.npy").write_bytes(b"junk")
    base = [
        "bundle",
        "create",
        "--method",
        "ganfinger",
        "--victim",
        victim_onnx,
        "--key",
        keypair[0],
        "-o",
        tmp_path / "fp.safetensors",
    ]
    for x, xp in (("float.npy", "x.npy"), ("junk.npy", "x.npy"), ("x.npy", "missing.npy")):
        r = cli(*base, "--x", tmp_path / x, "--x-prime", tmp_path / xp)
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output
    r = cli(*base, "--x", tmp_path / "x.npy", "--x-prime", tmp_path / "x.npy")  # x' == x: nothing left
    assert r.exit_code == 2 and "no fingerprint pair" in r.stderr
    r = cli(*base, "--x", tmp_path / "x.npy", "--x-prime", tmp_path / "x.npy", "--mean", "0.5,0.5")
    assert r.exit_code == 2
    assert not (tmp_path / "fp.safetensors").exists()


def test_pubkey_from_env_path_pem_and_config(cli, tmp_path, signed_bundle, keypair, victim_onnx):
    base = ["check", victim_onnx, "--bundle", signed_bundle]
    assert cli(*base, env={"GFAUDIT_PUBKEY": str(keypair[1])}).exit_code == 1
    pem = Path(keypair[1]).read_text()
    assert cli(*base, env={"GFAUDIT_PUBKEY": pem}).exit_code == 1
    cfg = tmp_path / "gfaudit" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text(f'pubkey = "{keypair[1]}"\n')
    assert cli(*base, env={"GFAUDIT_PUBKEY": "", "XDG_CONFIG_HOME": str(tmp_path)}).exit_code == 1
    r = cli(*base, env={"GFAUDIT_PUBKEY": "", "XDG_CONFIG_HOME": str(tmp_path / "empty")})
    assert r.exit_code == 2 and "no public key" in r.stderr


def test_pubkey_must_be_a_public_key(cli, signed_bundle, keypair, victim_onnx):
    r = cli("check", victim_onnx, "--bundle", signed_bundle, "--pubkey", keypair[0])
    assert r.exit_code == 2 and "public key" in r.stderr


def test_report_formats_and_output_file(cli, tmp_path, signed_bundle, keypair, victim_onnx):
    base = ["check", victim_onnx, "--bundle", signed_bundle, "--pubkey", keypair[1]]
    text = cli(*base)
    assert text.exit_code == 1 and "derived" in text.stdout and "P_conf" in text.stdout
    js = json.loads(cli(*base, "--format", "json").stdout)
    assert js["schema_version"] == 1 and js["runtime"]["provider"] == "CPUExecutionProvider"
    for key in ("path", "verdict", "ard", "p_ori", "p_conf", "threshold", "exit_code"):
        assert key in js["suspects"][0]
    out = tmp_path / "report.sarif"
    r = cli(*base, "--format", "sarif", "-o", out)
    assert r.exit_code == 1 and r.stdout == ""
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"][0]["ruleId"] == "GFA001"
    assert sarif["runs"][0]["results"][0]["level"] == "error"
    assert not list(tmp_path.glob(".*tmp"))


def test_inspect_and_sign(cli, tmp_path, copy_bundle, keypair, other_keypair):
    path = copy_bundle()
    r = cli("inspect", path, "--pubkey", keypair[1], "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["manifest"]["scoring"]["threshold"] == "0.5"
    assert cli("inspect", path, "--pubkey", other_keypair[1]).exit_code == 3
    r = cli("inspect", path, "--unverified")
    assert r.exit_code == 0 and "UNVERIFIED" in r.stdout
    # Re-sign with a new key and a new threshold: the old key no longer verifies, the new one does.
    assert cli("sign", path, "--key", other_keypair[0]).exit_code == 2  # current signature must be checked
    r = cli("sign", path, "--key", other_keypair[0], "--pubkey", keypair[1], "--threshold", "0.7")
    assert r.exit_code == 0, r.output
    assert cli("verify", path, "--pubkey", keypair[1]).exit_code == 3
    b = load(path, keys.load_public(other_keypair[1]))
    assert str(b.manifest.threshold) == "0.7"


def test_sign_refuses_a_bundle_that_does_not_verify(cli, copy_bundle, keypair, other_keypair):
    path = copy_bundle()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert cli("sign", path, "--key", other_keypair[0], "--pubkey", keypair[1]).exit_code == 3


def test_doctor(cli):
    r = cli("doctor", "--format", "json")
    doc = json.loads(r.stdout)
    assert "CPUExecutionProvider" in doc["working_providers"]
    assert r.exit_code == (4 if doc["problems"] else 0)


@pytest.mark.parametrize(
    "args",
    [
        ["check"],
        ["check", "x.onnx"],
        ["check", "x.onnx", "--bundle", "b", "--format", "xml"],
        ["bundle", "create"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(cli, args):
    assert cli(*args).exit_code == 2
