"""Tamper matrix: every altered byte region, wrong key, missing .sig, unknown version -> exit 3, nothing scored."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from gfaudit.bundle import container as bundle_io, keys


def _regions(data: bytes) -> dict[str, int]:
    """Offset of one byte inside each region of a safetensors file."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    regions = {"header_length": 3, "header_json": 8 + n // 2}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        regions[f"tensor_{name}"] = 8 + n + (start + end) // 2
    return regions


def _check(cli, bundle: Path, suspect: Path, pub: Path):
    return cli("check", suspect, "--bundle", bundle, "--pubkey", pub, "--format", "json")


def test_untampered_bundle_scores(cli, copy_bundle, victim_onnx, keypair):
    result = _check(cli, copy_bundle(), victim_onnx, keypair[1])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["suspects"][0]["verdict"] == "derived"


@pytest.mark.parametrize(
    "region", ["header_length", "header_json", "tensor_x", "tensor_x_prime", "tensor_y", "tensor_y_prime"]
)
def test_flipped_byte_in_safetensors(cli, copy_bundle, victim_onnx, keypair, region):
    path = copy_bundle()
    data = bytearray(path.read_bytes())
    data[_regions(bytes(data))[region]] ^= 0x01
    path.write_bytes(bytes(data))
    result = _check(cli, path, victim_onnx, keypair[1])
    assert result.exit_code == 3, result.output
    assert result.stdout == ""  # nothing scored, no report
    assert "sha256" in result.stderr


def _edit_envelope(path: Path, edit) -> None:
    sig = Path(str(path) + ".sig")
    env = json.loads(sig.read_bytes())
    edit(env)
    sig.write_text(json.dumps(env))


def _flip_b64(value: str, index: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _alter_threshold(env):
    stmt = json.loads(base64.b64decode(env["payload"]))
    stmt["predicate"]["scoring"]["threshold"] = "0.99"
    env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()


ENVELOPE_EDITS = {
    "payload_byte": lambda env: env.update(payload=_flip_b64(env["payload"], 40)),
    "payload_threshold": _alter_threshold,
    "signature_byte": lambda env: env["signatures"][0].update(sig=_flip_b64(env["signatures"][0]["sig"], 10)),
    "payload_type": lambda env: env.update(payloadType="application/json"),
    "no_signatures": lambda env: env.update(signatures=[]),
    "payload_not_base64": lambda env: env.update(payload="%%%" + env["payload"]),
}


@pytest.mark.parametrize("edit", list(ENVELOPE_EDITS))
def test_tampered_envelope(cli, copy_bundle, victim_onnx, keypair, edit):
    path = copy_bundle()
    _edit_envelope(path, ENVELOPE_EDITS[edit])
    result = _check(cli, path, victim_onnx, keypair[1])
    assert result.exit_code == 3, result.output
    assert result.stdout == ""


def test_envelope_not_json(cli, copy_bundle, victim_onnx, keypair):
    path = copy_bundle()
    sig = Path(str(path) + ".sig")
    sig.write_bytes(sig.read_bytes()[:-40])
    result = _check(cli, path, victim_onnx, keypair[1])
    assert result.exit_code == 3 and result.stdout == ""


def test_keyid_is_not_trusted(cli, copy_bundle, victim_onnx, keypair):
    """keyid is a label: changing it changes nothing, the signature is what counts."""
    path = copy_bundle()
    _edit_envelope(path, lambda env: env["signatures"][0].update(keyid="attacker"))
    assert _check(cli, path, victim_onnx, keypair[1]).exit_code == 1


def test_wrong_key(cli, copy_bundle, victim_onnx, other_keypair):
    result = _check(cli, copy_bundle(), victim_onnx, other_keypair[1])
    assert result.exit_code == 3 and result.stdout == ""
    assert "does not verify" in result.stderr


def test_missing_sig(cli, copy_bundle, victim_onnx, keypair):
    path = copy_bundle()
    Path(str(path) + ".sig").unlink()
    result = _check(cli, path, victim_onnx, keypair[1])
    assert result.exit_code == 3 and result.stdout == ""
    assert ".sig" in result.stderr


def test_missing_bundle(cli, tmp_path, victim_onnx, keypair):
    # A path that does not exist is a usage error (exit 2, "bundle not found"), not an integrity failure.
    result = _check(cli, tmp_path / "absent.safetensors", victim_onnx, keypair[1])
    assert result.exit_code == 2 and "not found" in result.stderr


def _resign(path: Path, key_path: Path, edit) -> None:
    """Sign an edited manifest with the right key: the signature is valid, the content is not acceptable."""
    data = path.read_bytes()
    stmt = json.loads(base64.b64decode(json.loads(Path(str(path) + ".sig").read_bytes())["payload"]))
    manifest = stmt["predicate"]
    edit(manifest)
    bundle_io.write_signed(path, data, manifest, keys.load_private(key_path))


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda m: m.update(format_version=2), "format version"),
        (lambda m: m["scoring"].update(threshold=0.5), "wrong type"),
        (lambda m: m["scoring"].update(threshold="1e-9"), "decimal string"),
        (lambda m: m["scoring"].update(rule="always_guilty"), "scoring rule"),
        (lambda m: m["tensors"]["x"].update(shape=[1, 2, 3]), "does not match"),
        (lambda m: m["input"].update(num_classes=2), "inconsistent"),
        (lambda m: m["input"].update(num_classes=2, class_names=[]), "out of range"),
        (
            lambda m: m["scoring"].update(
                null_model={"kind": "binomial-upper-bound", "hit_rate": "1.5", "false_accusation_rate": "0.001"}
            ),
            "null_model.hit_rate",
        ),
        (
            lambda m: m["scoring"].update(
                null_model={"kind": "binomial-upper-bound", "hit_rate": 0.1, "false_accusation_rate": "0.001"}
            ),
            "null_model.hit_rate",
        ),
        (lambda m: m["scoring"].update(null_model={"kind": "trust-me"}), "null_model"),
    ],
)
def test_signed_but_unacceptable_manifest(cli, copy_bundle, victim_onnx, keypair, edit, needle):
    path = copy_bundle()
    _resign(path, keypair[0], edit)
    result = _check(cli, path, victim_onnx, keypair[1])
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert needle in result.stderr


def test_verify_reports_integrity(cli, copy_bundle, keypair, other_keypair):
    path = copy_bundle()
    assert cli("verify", path, "--pubkey", keypair[1]).exit_code == 0
    assert cli("verify", path, "--pubkey", other_keypair[1]).exit_code == 3


def test_signed_null_model_gives_each_suspect_a_p_value(cli, copy_bundle, victim_onnx, keypair):
    from gfaudit.bundle import null_model as calibration

    plain = _check(cli, copy_bundle("plain.safetensors"), victim_onnx, keypair[1])
    assert json.loads(plain.stdout)["suspects"][0]["p_value"] is None  # signed without calibration: no p-value
    path = copy_bundle()
    _resign(
        path,
        keypair[0],
        lambda m: m["scoring"].update(
            null_model={"kind": "binomial-upper-bound", "hit_rate": "0.2", "false_accusation_rate": "0.001"}
        ),
    )
    result = _check(cli, path, victim_onnx, keypair[1])
    entry = json.loads(result.stdout)["suspects"][0]
    k = json.loads(result.stdout)["bundle"]["k"]
    assert entry["p_value"] == float(f"{calibration.p_value(entry['score'], k, 0.2):.3g}")
    text = cli("check", victim_onnx, "--bundle", path, "--pubkey", keypair[1])
    assert "p-value" in text.stdout and "hit rate <= 0.2" in text.stdout


def _population(**over):
    doc = {
        "kind": "beta-binomial-predictive",
        "calibration_hits": [1, 2, 0, 3],
        "pairs": 8,
        "false_accusation_rate": "0.001",
        "prior": {"mu": "uniform(0, 1)", "log_kappa": "uniform", "kappa_range": ["0.1", "10000"]},
        "grid": [199, 60],
    }
    doc.update(over)
    return doc


@pytest.mark.parametrize(
    "null_model,needle",
    [
        (_population(calibration_hits=[]), "calibration_hits"),
        (_population(calibration_hits=[1, 99]), "calibration_hits"),
        (_population(calibration_hits=[1, True]), "calibration_hits"),
        (_population(pairs=0), "pairs"),
        (_population(grid=[199, 100000]), "grid"),
        (_population(prior={"kappa_range": ["0", "10"]}), "kappa_range"),
        (_population(prior={"kappa_range": [0.1, 10]}), "kappa_range"),
        (_population(false_accusation_rate="2"), "false_accusation_rate"),
    ],
)
def test_signed_but_unacceptable_population_null_model(cli, copy_bundle, victim_onnx, keypair, null_model, needle):
    path = copy_bundle()
    _resign(path, keypair[0], lambda m: m["scoring"].update(null_model=null_model))
    result = _check(cli, path, victim_onnx, keypair[1])
    assert result.exit_code == 3, result.output
    assert result.stdout == "" and needle in result.stderr


def test_population_null_model_p_value_and_its_support(cli, copy_bundle, victim_onnx, keypair):
    """The auditor's p-value is the signed beta-binomial's predictive tail; one below 1/(n+1) is starred."""
    from gfaudit.bundle import null_model as calibration

    path = copy_bundle()
    k = json.loads(_check(cli, path, victim_onnx, keypair[1]).stdout)["bundle"]["k"]
    hits = [0, 1, 0, 1]
    _resign(path, keypair[0], lambda m: m["scoring"].update(null_model=_population(calibration_hits=hits, pairs=k)))
    result = _check(cli, path, victim_onnx, keypair[1])
    entry = json.loads(result.stdout)["suspects"][0]
    pmf = calibration.beta_binomial_predictive(hits, k)
    assert entry["p_value"] == float(f"{calibration.predictive_tail(pmf, round(entry['score'] * k)):.3g}")
    assert entry["p_value_supported"] == 0.2  # four calibration models: 1 / 5
    assert entry["p_value"] < entry["p_value_supported"]  # the victim itself: far out in the tail
    text = cli("check", victim_onnx, "--bundle", path, "--pubkey", keypair[1]).stdout
    assert f"{entry['p_value']:.2g}*" in text and "extrapolation" in text and "exchangeable" in text
    _resign(path, keypair[0], lambda m: m["scoring"].update(null_model=_population(calibration_hits=hits, pairs=k + 1)))
    mismatch = _check(cli, path, victim_onnx, keypair[1])
    assert mismatch.exit_code == 3 and "pairs" in mismatch.stderr
