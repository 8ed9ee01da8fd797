"""The auditor on the real thing: the shared ResNet-20 exported to ONNX, FGSM pairs from the shared
data, bundle create -> verify -> check, tampering, and a torch-free check process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from test_torch_free import BLOCK_TORCH

from conftest import SHARED_DATA, SHARED_VICTIM, needs_shared, needs_torch

pytestmark = [needs_torch(), needs_shared()]


@pytest.fixture(scope="module")
def fgsm_case(tmp_path_factory):
    import torch
    import torch.nn.functional as F

    from gfaudit.bundle.normalization import resolve
    from gfaudit_trainer.models import data, zoo
    from gfaudit_trainer.models.export import export
    from gfaudit_trainer.models.victim import load

    d = tmp_path_factory.mktemp("fgsm")
    bare = load(SHARED_VICTIM, "resnet20")
    onnx_path = export(bare, d / "resnet20.onnx")
    model = zoo.Normalized(bare, *resolve("imagenet")).eval()
    test = data.load_split(SHARED_DATA, "test", d / "cache", per_class=12)
    x = test.images.float() / 255
    x.requires_grad_(True)
    F.cross_entropy(model(x), test.labels).backward()
    xp = (x + 8 / 255 * x.grad.sign()).clamp(0, 1).detach()
    x_u8 = test.images.numpy()
    xp_u8 = torch.round(xp * 255).to(torch.uint8).numpy()
    np.save(d / "x.npy", x_u8)
    np.save(d / "xp.npy", xp_u8)
    # An unrelated model: same architecture, random weights.
    torch.manual_seed(1)
    other = export(zoo.build("resnet20").eval(), d / "unrelated.onnx")
    return d, onnx_path, other


def test_create_verify_check_tamper(cli, fgsm_case, keypair):
    d, victim, other = fgsm_case
    out = d / "fgsm.safetensors"
    r = cli(
        "bundle",
        "create",
        "--x",
        d / "x.npy",
        "--x-prime",
        d / "xp.npy",
        "--victim",
        victim,
        "--normalization",
        "imagenet",
        "--method",
        "fgsm",
        "--rule",
        "ard",
        "--threshold",
        "0.5",
        "--key",
        keypair[0],
        "-o",
        out,
    )
    assert r.exit_code == 0, r.output
    v = cli("verify", out, "--pubkey", keypair[1], "--victim", victim, "--format", "json")
    assert v.exit_code == 0 and json.loads(v.stdout)["authenticity"]["ok"]
    c = cli("check", victim, other, "--bundle", out, "--pubkey", keypair[1], "--format", "json")
    verdicts = {s["path"]: s for s in json.loads(c.stdout)["suspects"]}
    assert verdicts[str(victim)]["verdict"] == "derived" and verdicts[str(victim)]["ard"] == 1.0
    assert verdicts[str(other)]["verdict"] == "not-derived"
    assert c.exit_code == 1
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x10
    out.write_bytes(bytes(data))
    t = cli("check", victim, "--bundle", out, "--pubkey", keypair[1])
    assert t.exit_code == 3 and t.stdout == ""


def test_torch_free_process_checks_the_resnet20(cli, fgsm_case, keypair, tmp_path):
    d, victim, _ = fgsm_case
    out = tmp_path / "fp.safetensors"
    assert (
        cli(
            "bundle",
            "create",
            "--method",
            "ganfinger",
            "--x",
            d / "x.npy",
            "--x-prime",
            d / "xp.npy",
            "--victim",
            victim,
            "--normalization",
            "imagenet",
            "--key",
            keypair[0],
            "-o",
            out,
        ).exit_code
        == 0
    )
    code = "from gfaudit.cli.app import main\nsys.argv = ['gfaudit'] + sys.argv[1:]\nmain()\n"
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_TORCH + code,
            "check",
            str(victim),
            "--bundle",
            str(out),
            "--pubkey",
            str(keypair[1]),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["suspects"][0]["verdict"] == "derived"
