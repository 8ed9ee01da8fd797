"""--reference: owner-collected ONNX models join selection and calibration label-only, with their
role and digest in the signed provenance, and they decide the signed threshold."""

from __future__ import annotations

import json

from conftest import needs_shared, needs_torch, tiny_train_args

pytestmark = [needs_torch(), needs_shared()]


def _export_tiny(path, seed):
    import torch

    from gfaudit_trainer.models import zoo
    from gfaudit_trainer.models.export import export

    torch.manual_seed(seed)
    return export(zoo.build("vgg11:width=0.25").eval(), path)


def test_references_take_calibration_and_selection_roles(cli, tmp_path, keypair):
    from gfaudit.bundle.provenance import file_sha256

    refs = tmp_path / "refs"
    a, b = _export_tiny(refs / "a.onnx", 1), _export_tiny(refs / "b.onnx", 2)
    out = tmp_path / "fp.safetensors"
    r = cli(*tiny_train_args(out, tmp_path / "cache", keypair, "--reference", refs))
    assert r.exit_code == 0, r.output
    manifest = json.loads(cli("inspect", out, "--pubkey", keypair[1], "--format", "json").stdout)["manifest"]
    prov = manifest["provenance"]
    by_file = {m["file"]: m for m in prov["pools"] if m.get("source") == "reference"}
    assert by_file["a.onnx"]["split"] == "calib" and by_file["b.onnx"]["split"] == "val"
    assert by_file["a.onnx"]["sha256"] == file_sha256(a) and by_file["b.onnx"]["sha256"] == file_sha256(b)
    calib = prov["validation_scores"]["calibration"]
    assert [row.get("file") for row in calib] == [None, "a.onnx"]  # the pool's calibration model, then the reference
    assert manifest["scoring"]["null_model"]["calibration_hits"] == [row["hits"] for row in calib]
    assert "b.onnx" in {row.get("file") for row in prov["validation_scores"]["negative"]}


def test_missing_reference_is_a_usage_error(cli, tmp_path, keypair):
    r = cli(
        *tiny_train_args(
            tmp_path / "fp.safetensors", tmp_path / "cache", keypair, "--reference", tmp_path / "nothing-here.onnx"
        )
    )
    assert r.exit_code == 2 and "nothing-here.onnx" in r.stderr
