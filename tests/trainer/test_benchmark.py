"""A tiny end-to-end run of the benchmark entry point: pools, library, five methods, ablation, report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO, SHARED_DATA, SHARED_VICTIM, needs_shared, needs_torch

pytestmark = [needs_torch(), needs_shared()]


def _bench(script: str, cache: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run one benchmark script at the tiny scale on the shared victim and data, into ``cache``."""
    common = ["--scale", "tiny", "--victim", str(SHARED_VICTIM), "--data", str(SHARED_DATA), "--cache", str(cache)]
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *common, "--device", "cpu", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_tiny_benchmark_writes_report(tmp_path):
    out = tmp_path / "docs" / "benchmark.md"
    cache = tmp_path / "cache"
    r = _bench("run.py", cache, "--out", str(out), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    text = out.read_text()
    for method in ("ganfinger", "ipguard", "conferae", "metafinger", "deepfool"):
        assert f"| {method} |" in text
    for variant in ("eta=0", "alpha=0", "beta=0", "gamma=0", "no-robustness"):
        assert f"| {variant} |" in text
    assert (out.parent / "benchmark-curves.png").stat().st_size > 5000
    # Fidelity is measured through onnxruntime against the victim's torch labels: the copy scores 1.
    assert "Fidelity (test images labelled like the victim)" in text
    assert re.search(r"^\| copy\.onnx \| pirated \| copy \| [0-9.]+ \| 1\.000 \|", text, re.M), text[-2000:]
    results = json.loads((cache / "bench-tiny" / "results.json").read_text())
    assert set(results) == {"ganfinger", "ipguard", "conferae", "metafinger", "deepfool"}
    for doc in results.values():
        assert 0.0 <= doc["aruc"] <= 1.0 and len(doc["models"]) == 8
    # Every bundle the benchmark wrote carries the method and its own scoring rule, signed.
    bundles = sorted((cache / "bench-tiny" / "bundles").glob("*.safetensors"))
    assert len(bundles) == 5
    # The separability diagnostic reuses the same cache: pools, library, and its own GAN run.
    r = _bench("separability.py", cache)
    assert r.returncode == 0, r.stderr[-3000:]
    arucs = [float(m) for m in re.findall(r"^\| (?:preset|oracle)[^|]*\| \d+ \| ([0-9.]+) \|", r.stdout, re.M)]
    assert len(arucs) == 2 and all(0.0 <= a <= 1.0 for a in arucs), r.stdout

    # Robustness curves on the same cache: real attacked models, scored by the auditor, in a figure.
    work = cache / "bench-tiny"
    figure = tmp_path / "robustness.png"
    r = _bench(
        "robustness.py",
        cache,
        "--bundle",
        f"ganfinger={work / 'bundles' / 'ganfinger.safetensors'}",
        "--pubkey",
        str(work / "owner.pub"),
        "--out-dir",
        str(tmp_path / "robustness"),
        "--only",
        "pruning,JPEG",
        "--figure",
        str(figure),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    rows = re.findall(r"^\| (pruning|JPEG) \| ([0-9.]+) \| ([0-9.]+)% \| (-?[0-9.]+)", r.stdout, re.M)
    assert len(rows) == 9 + 8, r.stdout
    pruned = {float(s): float(score) for curve, s, _, score in rows if curve == "pruning"}
    assert pruned[0.1] >= pruned[0.9]  # the lightest pruning keeps at least the heaviest's score
    assert figure.stat().st_size > 5000

    # A given signed bundle (the shipped one, in the docs' run) judged on a subset of the library: no
    # GAN is trained for it, and the report names it and lists only the subset.
    given = tmp_path / "given.safetensors"
    given.write_bytes((work / "bundles" / "ganfinger.safetensors").read_bytes())
    given.with_name("given.safetensors.sig").write_bytes((work / "bundles" / "ganfinger.safetensors.sig").read_bytes())
    subset_out = tmp_path / "subset.md"
    r = _bench(
        "run.py",
        cache,
        "--out",
        str(subset_out),
        "--no-ablation",
        "--methods",
        "ganfinger,ipguard",
        "--library-only",
        "copy,unrelated-vgg11:width=0.25-0",
        "--ganfinger-bundle",
        str(given),
        "--key-dir",
        str(work),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    text = subset_out.read_text()
    assert f"the signed bundle `{given}`" in text and "--library-only copy,unrelated-vgg11:width=0.25-0" in text
    appendix = re.findall(r"^\| ([a-z0-9_.-]+\.onnx) \|", text, re.M)
    assert sorted(appendix) == ["copy.onnx", "unrelated-vgg11_width0.25-0.onnx"], appendix
    assert "generating ganfinger" not in r.stderr
