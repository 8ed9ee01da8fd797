"""`import gfaudit` and `gfaudit check` never import torch: run them where importing torch fails."""

from __future__ import annotations

import json
import subprocess
import sys

BLOCK_TORCH = (
    "import sys\n"
    "class _NoTorch:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.') or name.startswith('torchvision'):\n"
    "            raise ImportError('torch is blocked in this test')\n"
    "sys.meta_path.insert(0, _NoTorch())\n"
)


def _run(code: str, *args: str):
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + code, *args], capture_output=True, text=True, timeout=120
    )


def test_import_gfaudit_does_not_import_torch():
    r = _run(
        "import gfaudit, gfaudit.cli.app, gfaudit_trainer.commands, gfaudit.bundle.container, gfaudit.audit.check, gfaudit.formats.render, gfaudit.api\n"
        "import gfaudit.formats.sarif, gfaudit.formats.json, gfaudit.formats.text, gfaudit.formats.destinations, gfaudit.files.outputs\n"
        "assert 'torch' not in sys.modules and 'ray' not in sys.modules\nprint('ok')"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_check_runs_where_torch_cannot_be_imported(signed_bundle, keypair, victim_onnx):
    code = (
        "from gfaudit.cli.app import main\nsys.argv = ['gfaudit'] + sys.argv[1:]\n"
        "try:\n    main()\nfinally:\n    assert 'torch' not in sys.modules and 'ray' not in sys.modules\n"
    )
    r = _run(
        code,
        "check",
        str(victim_onnx),
        str(victim_onnx),
        "--bundle",
        str(signed_bundle),
        "--pubkey",
        str(keypair[1]),
        "--format",
        "json",
        "--jobs",
        "2",
    )
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["suspects"][0]["verdict"] == "derived"


def test_trainer_commands_explain_the_missing_extra(tmp_path):
    code = "from gfaudit.cli.app import main\nsys.argv = ['gfaudit'] + sys.argv[1:]\nmain()\n"
    r = _run(code, "export-onnx", str(tmp_path / "m.pt"), "--arch", "resnet20", "-o", str(tmp_path / "m.onnx"))
    assert r.returncode == 4
    assert "pip install 'gfaudit[train]'" in r.stderr
    assert "Traceback" not in r.stderr
