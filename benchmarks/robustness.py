"""Robustness curves: each bundle's score on the victim after an attack, against the attack's strength.

Attacks on the victim (trainer/models/derived.py, on D_a, the library's data): global magnitude
pruning 10-90 %, fine-tuning all layers for 1-10 epochs (one epoch at a time, lr 0.01), FGSM
adversarial fine-tuning (2 epochs) at L-inf bounds 1-16/255, and the victim behind an input filter
(trainer/models/input_filters.py): Gaussian blur sigma 0.3-1.5, JPEG quality 95-30, bit depth 8-3.
Every attacked model is exported to ONNX and scored by the auditor itself (real onnxruntime,
``gfaudit.audit.check.check_one``); models and scores are cached in --out-dir, so a killed run
resumes. The figure marks each bundle's signed threshold and shades the range of its signed
calibration models' scores (independent models the bundle never saw), and prints a table.

    python benchmarks/robustness.py --scale cpu --cache ~/.cache/gfaudit \\
        --bundle ganfinger=fingerprints/resnet20-cifar10/resnet20-cifar10.safetensors \\
        --pubkey fingerprints/resnet20-cifar10/owner.pub --out-dir ~/.cache/gfaudit/robustness \\
        --figure docs/benchmark-robustness.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gfaudit.files.atomic import write_bytes_atomic, write_text_atomic  # noqa: E402

from common import context_arguments, load_context  # noqa: E402

# attack family -> (x-axis label, strengths, spec of one attacked model per strength)
CURVES: dict[str, tuple[str, tuple, str]] = {
    "pruning": ("share of weights pruned", (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), "prune:{s}"),
    "fine-tuning": ("epochs of fine-tuning all layers", tuple(range(1, 11)), "ftal-epochs:{s}"),
    "FGSM adversarial fine-tuning": ("FGSM bound (/255)", (1, 2, 4, 8, 16), "fgsm:{s}"),
    "blur": ("Gaussian blur sigma (pixels)", (0.3, 0.5, 0.7, 1.0, 1.5), "filter:gaussian_blur@{s}"),
    "JPEG": ("JPEG quality", (95, 90, 80, 70, 60, 50, 40, 30), "filter:jpeg@{s}"),
    "bit depth": ("bits per channel", (8, 7, 6, 5, 4, 3), "filter:bit_depth@{s}"),
}


def attacked(spec: str, ctx, state: dict, out: Path, lib_scale):
    """The ONNX file of the victim after ``spec`` (made once, cached), and its test accuracy."""
    import torch

    from gfaudit_trainer.models import derived, zoo
    from gfaudit_trainer.models.export import export
    from gfaudit_trainer.models.training import FitConfig, accuracy

    path = out / f"{spec.replace(':', '-').replace('@', '-')}.onnx"
    meta = out / f"{path.stem}.json"
    if path.is_file() and meta.is_file():
        return path, json.loads(meta.read_text())["accuracy"]
    d_a = ctx.d_a
    kind, _, arg = spec.partition(":")
    if kind == "ftal-epochs":  # one more epoch on the previous one: 1..10 epochs from one run
        epochs = int(arg)
        prev = state.get("ftal") or (0, ctx.bare)
        bare = prev[1]
        for e in range(prev[0] + 1, epochs + 1):
            cfg = FitConfig(1, lib_scale.lr_finetune, lib_scale.batch_size, seed=2_000_000 + e)
            bare = derived.finetune(bare, ctx.mean, ctx.std, d_a.images, d_a.labels, cfg, ctx.device, desc=f"ftal {e}")
        state["ftal"] = (epochs, bare)
    elif kind == "fgsm":
        cfg = FitConfig(lib_scale.adv_epochs, lib_scale.lr_finetune, lib_scale.batch_size, seed=2_100_000)
        bare = derived.finetune(
            ctx.bare, ctx.mean, ctx.std, d_a.images, d_a.labels, cfg, ctx.device, fgsm_bound=int(arg) / 255, desc=spec
        )
    elif spec == "filter:bit_depth@8":
        bare = ctx.bare
    else:
        bare = derived.derive(spec, ctx.bare, ctx.mean, ctx.std)
    torch.manual_seed(0)
    model = zoo.Normalized(bare, ctx.mean, ctx.std).to(ctx.device)
    acc = accuracy(model, ctx.test.images, ctx.test.labels, ctx.device)
    export(bare.cpu().eval(), path)
    write_text_atomic(meta, json.dumps({"spec": spec, "accuracy": acc}) + "\n")
    return path, acc


def main(argv: list[str] | None = None) -> int:
    ap = context_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    ap.add_argument("--bundle", action="append", required=True, help="NAME=PATH of a signed bundle; repeatable")
    ap.add_argument("--pubkey", type=Path, required=True, help="the bundles' public key")
    ap.add_argument("--out-dir", type=Path, required=True, help="attacked models and scores (cached, resumable)")
    ap.add_argument("--figure", type=Path, default=None, help="PNG to write (default: none)")
    ap.add_argument("--only", default=None, help="comma-separated curve names to run (default: all)")
    args = ap.parse_args(argv)

    from gfaudit.audit.check import check_one
    from gfaudit.bundle import container, keys
    from gfaudit_trainer.library.build import SCALES

    preset, ctx = load_context(args)
    lib_scale = SCALES[args.scale].scale
    key = keys.load_public(args.pubkey)
    bundles = {}
    for item in args.bundle:
        name, _, path = item.partition("=")
        bundles[name] = container.load(path, key)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    scores_path = args.out_dir / "scores.json"
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    curves = [c for c in CURVES if not args.only or c in args.only.split(",")]
    state: dict = {}
    for curve in curves:
        _, strengths, template = CURVES[curve]
        for s in strengths:
            spec = template.format(s=s)
            path, acc = attacked(spec, ctx, state, args.out_dir, lib_scale)
            for name, b in bundles.items():
                key_ = f"{name}|{spec}"
                if key_ not in scores:
                    row, _ = check_one(str(path), b, "cpu", None)
                    scores[key_] = {"score": row.score, "accuracy": acc}
                    write_text_atomic(scores_path, json.dumps(scores, indent=1) + "\n")
            print(
                f"{curve:<30} {s!s:>6}  acc {acc:6.1%}  "
                + "  ".join(f"{n} {scores[f'{n}|{spec}']['score']:+.2f}" for n in bundles),
                flush=True,
            )
    _table(bundles, scores, curves)
    if args.figure:
        write_bytes_atomic(args.figure, _figure(bundles, scores, curves))
        print(f"wrote {args.figure}", file=sys.stderr)
    return 0


def _calibration_range(bundle) -> tuple[float, float] | None:
    rows = bundle.manifest.raw.get("provenance", {}).get("validation_scores", {}).get("calibration", [])
    vals = [r["score"] for r in rows if isinstance(r, dict) and isinstance(r.get("score"), (int, float))]
    return (min(vals), max(vals)) if vals else None


def _table(bundles, scores, curves) -> None:
    names = list(bundles)
    print(
        "\n| attack | strength | victim accuracy | "
        + " | ".join(f"{n} (threshold {float(bundles[n].manifest.threshold):.2f})" for n in names)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(names))
    for curve in curves:
        _, strengths, template = CURVES[curve]
        for s in strengths:
            spec = template.format(s=s)
            row = [scores[f"{n}|{spec}"] for n in names]
            flags = [
                f"{r['score']:.2f}{' flagged' if r['score'] >= float(bundles[n].manifest.threshold) else ''}"
                for n, r in zip(names, row, strict=True)
            ]
            print(f"| {curve} | {s} | {row[0]['accuracy']:.1%} | " + " | ".join(flags) + " |")


def _figure(bundles, scores, curves) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = (len(curves) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, curve in zip(axes.flat, curves, strict=False):
        label, strengths, template = CURVES[curve]
        xs = list(strengths)
        for i, (name, b) in enumerate(bundles.items()):
            c = colors[i % len(colors)]
            ys = [scores[f"{name}|{template.format(s=s)}"]["score"] for s in strengths]
            ax.plot(xs, ys, marker="o", ms=3, color=c, label=name)
            ax.axhline(float(b.manifest.threshold), color=c, ls="--", lw=0.8)
            rng = _calibration_range(b)
            if rng:
                ax.axhspan(rng[0], rng[1], color=c, alpha=0.12)
        acc = [scores[f"{next(iter(bundles))}|{template.format(s=s)}"]["accuracy"] for s in strengths]
        ax2 = ax.twinx()
        ax2.plot(xs, acc, color="0.5", ls=":", lw=1)
        ax2.set_ylim(0, 1)
        ax2.tick_params(labelsize=7, colors="0.4")
        ax.set_title(curve, fontsize=9)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("score", fontsize=8)
        ax.tick_params(labelsize=7)
        if curve == "JPEG":
            ax.invert_xaxis()
    for ax in list(axes.flat)[len(curves) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(
        "score of the attacked victim (solid), signed threshold (dashed), calibration models' range (shaded), "
        "attacked model's accuracy (dotted, right axis)",
        fontsize=8,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


if __name__ == "__main__":
    raise SystemExit(main())
