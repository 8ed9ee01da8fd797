"""How fast and how light is `gfaudit check`? Whole-process time and peak memory of one check of a
ResNet-20 ONNX suspect against a K=100 bundle, beside the same check done by a plain PyTorch
evaluation loop, in the same run. Prints a table (markdown). Memory is the peak over every process
the command starts (gfaudit check scores each suspect in a worker process), from a sampled run
beside the timed ones (benchmarks/measure.py).

    python benchmarks/check_speed.py [--bundle B --pubkey P --suspect S.onnx] [--runs 7]

Defaults: the shipped bundle fingerprints/resnet20-cifar10 and the victim ONNX exported on the fly
from ../shared/models/resnet20-cifar10-akamaster (needs gfaudit[train] for the export and for the
PyTorch comparison).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import median_of  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GFAUDIT_SHARED", REPO.parent / "shared"))
VICTIM_PT = SHARED / "models" / "resnet20-cifar10-akamaster" / "resnet20.pt"
SHIPPED = REPO / "fingerprints" / "resnet20-cifar10"

TORCH_CHECK = r"""
import sys, torch
from safetensors.torch import load_file
sys.path.insert(0, sys.argv[3])
from gfaudit_trainer import zoo
t = load_file(sys.argv[1])
model = zoo.Normalized(zoo.build("resnet20"), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
model.model.load_state_dict(torch.load(sys.argv[2], map_location="cpu", weights_only=True))
model.eval()
with torch.no_grad():
    px = model(t["x"].float() / 255).argmax(1)
    pxp = model(t["x_prime"].float() / 255).argmax(1)
y, yp = t["y"], t["y_prime"]
ard = ((yp != y) & (pxp == yp)).float().mean() - (px != y).float().mean()
sys.exit(1 if ard >= 0.5 else 0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=SHIPPED / "resnet20-cifar10.safetensors")
    ap.add_argument("--pubkey", type=Path, default=SHIPPED / "owner.pub")
    ap.add_argument("--suspect", type=Path, help="ONNX suspect (default: the shared ResNet-20 exported now)")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    suspect = args.suspect
    if suspect is None:
        from gfaudit_trainer.export import export
        from gfaudit_trainer.victim import load

        suspect = Path(tempfile.mkdtemp()) / "resnet20.onnx"
        export(load(VICTIM_PT, "resnet20"), suspect)
    gfaudit = str(Path(sys.executable).parent / "gfaudit")
    rows = [
        (
            "gfaudit check (onnxruntime, CPU)",
            median_of(
                [
                    gfaudit,
                    "check",
                    str(suspect),
                    "--bundle",
                    str(args.bundle),
                    "--pubkey",
                    str(args.pubkey),
                    "--device",
                    "cpu",
                ],
                args.runs,
            ),
        )
    ]
    if VICTIM_PT.is_file():
        rows.append(
            (
                "plain PyTorch loop (torch + safetensors)",
                median_of([sys.executable, "-c", TORCH_CHECK, str(args.bundle), str(VICTIM_PT), str(REPO)], args.runs),
            )
        )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.runs} runs each; bundle {args.bundle.name}"
    )
    print()
    print(
        "| what | median wall (s) | min wall (s) | peak memory, all processes (MB, PSS) | processes "
        "| peak RSS, main process (MB) | exit codes |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['median_s']} | {r['min_s']} | {r['peak_all_processes_mb']} | {r['processes']} "
            f"| {r['peak_rss_mb']} | {r['exit_codes']} |"
        )


if __name__ == "__main__":
    main()
