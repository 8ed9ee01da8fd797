"""How does `gfaudit check` scale with many suspects? Suspects per second for 1, 10, 20 and 50
ResNet-20 suspects at K=100, sequential (--jobs 1) beside parallel (--jobs = CPUs), beside the
compute-bound limit measured in the same run: one onnxruntime session's bare inference time on each
suspect's 200 images (x and x'), sessions created outside the timing. Prints a markdown table.

    python benchmarks/check_parallel.py [--counts 1,10,20,50] [--jobs N]

Suspects are copies of fingerprints/resnet20-cifar10/suspects/*.onnx; the bundle is the shipped one.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "fingerprints" / "resnet20-cifar10"


def suspects(folder: Path, n: int) -> list[Path]:
    sources = sorted((SHIPPED / "suspects").glob("*.onnx"))
    out = []
    for i in range(n):
        dst = folder / f"s{i:03d}-{sources[i % len(sources)].name}"
        if not dst.exists():
            shutil.copyfile(sources[i % len(sources)], dst)
        out.append(dst)
    return out


def whole_check(paths: list[Path], bundle: Path, pubkey: Path, jobs: int) -> float:
    gfaudit = str(Path(sys.executable).parent / "gfaudit")
    start = time.perf_counter()
    r = subprocess.run(
        [
            gfaudit,
            "check",
            *map(str, paths),
            "--bundle",
            str(bundle),
            "--pubkey",
            str(pubkey),
            "--device",
            "cpu",
            "--format",
            "json",
            "-q",
            "--jobs",
            str(jobs),
        ],
        capture_output=True,
    )
    took = time.perf_counter() - start
    if r.returncode not in (0, 1):
        raise SystemExit(f"check failed ({r.returncode}): {r.stderr.decode()[-500:]}")
    return took


def bare_inference(paths: list[Path], bundle: Path, pubkey: Path) -> float:
    """Seconds onnxruntime alone needs for every suspect's 200 images (one session each, default threads)."""
    import numpy as np
    import onnxruntime as ort

    from gfaudit.bundle import container as bundle_io
    from gfaudit.bundle.keys import load_public

    b = bundle_io.load(bundle, load_public(pubkey))
    spec = b.manifest.input
    mean = np.asarray(spec.mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(1, -1, 1, 1)
    batch = ((np.concatenate([b.x, b.x_prime]).astype(np.float32) / 255.0 - mean) / std).astype(np.float32)
    total = 0.0
    for path in paths:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        start = time.perf_counter()
        session.run(None, {name: batch})
        total += time.perf_counter() - start
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=SHIPPED / "resnet20-cifar10.safetensors")
    ap.add_argument("--pubkey", type=Path, default=SHIPPED / "owner.pub")
    ap.add_argument("--counts", default="1,10,20,50")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gfaudit-parallel-"))
    try:
        rows = []
        for n in (int(c) for c in args.counts.split(",")):
            paths = suspects(work, n)
            bare = bare_inference(paths, args.bundle, args.pubkey)
            seq = whole_check(paths, args.bundle, args.pubkey, 1)
            par = whole_check(paths, args.bundle, args.pubkey, args.jobs)
            rows.append((n, seq, par, bare))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}; "
        f"bundle {args.bundle.name} (K=100, 200 images per suspect); one run each"
    )
    print()
    print(
        f"| suspects | --jobs 1: s (suspects/s) | --jobs {args.jobs}: s (suspects/s) | bare onnxruntime inference: s "
        f"(suspects/s) | parallel / bare |"
    )
    print("|---|---|---|---|---|")
    for n, seq, par, bare in rows:
        print(
            f"| {n} | {seq:.2f} ({n / seq:.1f}) | {par:.2f} ({n / par:.1f}) | {bare:.2f} ({n / bare:.1f}) | "
            f"{par / bare:.2f}x |"
        )


if __name__ == "__main__":
    main()
