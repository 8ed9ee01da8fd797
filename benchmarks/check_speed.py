"""How fast and how light is `gfaudit check`? Whole-process time and peak memory of one check of a
ResNet-20 ONNX suspect against a K=100 bundle, beside a bare onnxruntime process doing the same
inference (read the bundle's images, one session, label x and x'; no verification, no isolation)
and a plain PyTorch evaluation loop, in the same run; then 20 suspects with --jobs beside one bare
onnxruntime process labelling the same 20. Prints a table (markdown) and the two ratios beside
their targets (issue 18: <= 1.3x for one suspect, <= 1.1x for 20 with --jobs). Memory is the peak
over every process the command starts (gfaudit check scores each suspect in a worker process),
from a sampled run beside the timed ones (benchmarks/measure.py).

    python benchmarks/check_speed.py [--bundle B --pubkey P --suspect S.onnx] [--runs 7] [--many 20] [--jobs N]

Defaults: the shipped bundle fingerprints/resnet20-cifar10 and the victim ONNX exported on the fly
from ../shared/models/resnet20-cifar10-jpeg (needs gfaudit[train] for the export and for the
PyTorch comparison).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import median_of, medians_interleaved  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GFAUDIT_SHARED", REPO.parent / "shared"))
VICTIM_PT = SHARED / "models" / "resnet20-cifar10-jpeg" / "resnet20.pt"
SHIPPED = REPO / "fingerprints" / "resnet20-cifar10"

TORCH_CHECK = r"""
import sys, torch
from safetensors.torch import load_file
sys.path.insert(0, sys.argv[3])
from gfaudit_trainer.models import zoo
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


# The same inference as gfaudit check, with nothing else: safetensors + numpy + onnxruntime.
BARE_ORT = r"""
import sys
import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file
t = load_file(sys.argv[1])
mean = np.asarray([float(v) for v in sys.argv[2].split(",")], np.float32).reshape(1, -1, 1, 1)
std = np.asarray([float(v) for v in sys.argv[3].split(",")], np.float32).reshape(1, -1, 1, 1)
y, yp = t["y"], t["y_prime"]
def prep(a):
    return np.ascontiguousarray(((a.astype(np.float32) / 255.0 - mean) / std).astype(np.float32))
x, xp = prep(t["x"]), prep(t["x_prime"])
code = 0
for path in sys.argv[4:]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    s = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    px = s.run(None, {name: x})[0].argmax(1)
    pxp = s.run(None, {name: xp})[0].argmax(1)
    ard = ((yp != y) & (pxp == yp)).mean() - (px != y).mean()
    code = max(code, int(ard >= 0.5))
sys.exit(code)
"""

TARGET_ONE, TARGET_MANY = 1.3, 1.1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=SHIPPED / "resnet20-cifar10.safetensors")
    ap.add_argument("--pubkey", type=Path, default=SHIPPED / "owner.pub")
    ap.add_argument("--suspect", type=Path, help="ONNX suspect (default: the shared ResNet-20 exported now)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--many", type=int, default=20, help="suspects of the second comparison (0: skip it)")
    ap.add_argument("--jobs", type=int, default=None, help="--jobs of the many-suspect check (default: CPUs)")
    args = ap.parse_args()
    suspect = args.suspect
    if suspect is None:
        from gfaudit_trainer.models.export import export
        from gfaudit_trainer.models.victim import load

        suspect = Path(tempfile.mkdtemp()) / "resnet20.onnx"
        export(load(VICTIM_PT, "resnet20"), suspect)
    gfaudit = str(Path(sys.executable).parent / "gfaudit")
    from gfaudit.bundle import container as bundle_io
    from gfaudit.bundle.keys import load_public

    spec = bundle_io.load(args.bundle, load_public(args.pubkey)).manifest.input
    norm = [",".join(map(str, spec.mean)), ",".join(map(str, spec.std))]
    check_cmd = [gfaudit, "check", "--bundle", str(args.bundle), "--pubkey", str(args.pubkey), "--device", "cpu", "-q"]
    bare_cmd = [sys.executable, "-c", BARE_ORT, str(args.bundle), *norm]
    # Alternate the two commands run by run, so that a change of background load hits both alike.
    one = medians_interleaved([[*check_cmd, str(suspect)], [*bare_cmd, str(suspect)]], args.runs)
    rows = [("gfaudit check, 1 suspect (onnxruntime, CPU)", one[0]), ("bare onnxruntime process, 1 suspect", one[1])]
    ratios = [("1 suspect", one[0]["median_s"] / one[1]["median_s"], TARGET_ONE)]
    if args.many > 0:
        folder = Path(tempfile.mkdtemp())
        many = [folder / f"s{i:03d}.onnx" for i in range(args.many)]
        for path in many:
            shutil.copyfile(suspect, path)
        jobs = ["--jobs", str(args.jobs)] if args.jobs else []
        both = medians_interleaved(
            [[*check_cmd, *jobs, *map(str, many)], [*bare_cmd, *map(str, many)]], max(1, args.runs // 2)
        )
        label = f"--jobs {args.jobs}" if args.jobs else "--jobs default (one per CPU)"
        rows += [
            (f"gfaudit check, {args.many} suspects, {label}", both[0]),
            (f"bare onnxruntime process, {args.many} suspects one after another", both[1]),
        ]
        ratios.append((f"{args.many} suspects", both[0]["median_s"] / both[1]["median_s"], TARGET_MANY))
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
    print()
    print("| gfaudit check / bare onnxruntime (median wall) | ratio | target | met |")
    print("|---|---|---|---|")
    for name, ratio, target in ratios:
        print(f"| {name} | {ratio:.2f}x | <= {target}x | {'yes' if ratio <= target else 'no'} |")


if __name__ == "__main__":
    main()
