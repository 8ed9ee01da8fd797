"""Fingerprint generation side by side, in one run on the same pools: GanFinger's GAN training, a
refresh of K pairs from the kept generator, and each baseline's generation.

    python benchmarks/generation.py --scale cpu --cache /work/cache            # table to stdout and --out-dir
    python benchmarks/generation.py --scale cpu --cache /work/cache --update-docs   # also docs/benchmark.md

Every method goes through ``pipeline.select_and_calibrate`` (the path ``gfaudit train`` and
``gfaudit refresh`` take) on the pools cached for the victim; pool building is shared and excluded.
Each row's "generation" time is what the method spends making and selecting candidates (the
provenance's ``fingerprint_generation``): for GanFinger it includes training the GAN, for the
refresh one pass of the kept generator over seeds no earlier bundle drew plus the same selection,
for the baselines their per-pair optimisation from the same seeded draw of the test split plus
their ranked selection. "pairs/s" is the pairs kept per second of generation. The refresh also
reports its whole wall time (context, pools, calibration, signing) as ``gfaudit refresh`` spends it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gfaudit.files.atomic import write_text_atomic

from common import REPO, context_arguments  # noqa: E402

DOC_BEGIN = "<!-- generation-table: begin (benchmarks/generation.py --update-docs) -->"
DOC_END = "<!-- generation-table: end -->"


def log(msg: str) -> None:
    print(f"[generation {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def measure(args) -> dict:
    from gfaudit.bundle import keys
    from gfaudit_trainer import presets
    from gfaudit_trainer.generation import generator as gen, pipeline, refresh
    from gfaudit_trainer.generation.methods import METHODS

    overrides = {"epochs": args.gan_epochs, "train_images": args.gan_images, "k": args.k}
    preset = presets.get(args.scale, **{k: v for k, v in overrides.items() if v is not None})
    ctx = pipeline.load_context(
        args.victim, args.arch, args.normalization, str(args.data), preset, args.device, args.cache, 0
    )
    pools, run_dir, pool_seconds = pipeline.build_pools(ctx, preset)
    log(f"pools ready in {pool_seconds:.1f} s ({run_dir})")
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "owner.key").is_file():
        keys.generate(out)
    key = keys.load_private(out / "owner.key")
    rows: list[dict] = []

    def row(name: str, result, seconds: float, **extra) -> dict:
        kept = result.selection.stats.selected
        r = {
            "method": name,
            "generation_s": round(seconds, 2),
            "candidates": result.selection.stats.candidates,
            "eligible": result.selection.stats.eligible,
            "kept": kept,
            "pairs_per_s": round(kept / seconds, 2) if seconds > 0 else None,
            "threshold": result.calibration.threshold,
            **extra,
        }
        rows.append(r)
        log(f"{name}: {r}")
        return r

    # GanFinger: train the GAN (the generator is then kept, as `gfaudit train` keeps it).
    result = pipeline.select_and_calibrate(ctx, pools, preset, "ganfinger")
    row(
        "ganfinger (train: GAN + selection)",
        result,
        result.timings.fingerprint_generation,
        gan_training_s=round(result.timings.gan_training or 0.0, 2),
    )
    bundle = out / "ganfinger.safetensors"
    prov = pipeline.bundle_provenance(ctx, preset, pools, pool_seconds, result, tool="benchmarks/generation.py")
    saved = gen.save(result.private["generator"], bundle, pipeline.generator_meta(ctx, preset, overrides, [], result))
    kept = pipeline.kept_seed_indices(result)
    prov["generator"] = saved.provenance("trained")
    prov["seed_draw"] = pipeline.seed_draw_json(ctx, result.private["seed_indices"], kept)
    created = pipeline.sign(ctx, run_dir, result, prov, key, bundle)
    ledger = gen.Ledger(saved.files.ledger, saved.weights_sha256)
    from gfaudit.bundle.provenance import file_sha256

    ledger.record(created.path, file_sha256(created.path), result.private["seed_indices"].tolist(), kept)

    # Refresh from the kept generator, loaded from its files as `gfaudit refresh` does.
    for i in range(args.refreshes):
        started = time.perf_counter()
        loaded = gen.load(saved.files.config, ctx.device)
        n = args.candidates or refresh.default_candidates(loaded.config, preset.k)
        f = refresh.fresh(ctx, pools, preset, loaded, ledger, n)
        path = out / f"refresh{i + 1}.safetensors"
        rprov = pipeline.bundle_provenance(ctx, preset, pools, pool_seconds, f.result, tool="benchmarks/generation.py")
        rprov["generator"] = loaded.provenance("reused")
        rprov["seed_draw"] = pipeline.seed_draw_json(ctx, f.draw.indices.tolist(), f.kept, f.draw)
        c = pipeline.sign(ctx, run_dir, f.result, rprov, key, path)
        ledger.record(c.path, file_sha256(c.path), f.draw.indices.tolist(), f.kept)
        row(
            f"ganfinger refresh {i + 1} (kept generator)",
            f.result,
            f.seconds,
            seeds_drawn=len(f.draw.indices),
            wall_s=round(time.perf_counter() - started, 2),
        )

    for name in [m for m in METHODS if m != "ganfinger"] if args.methods is None else args.methods.split(","):
        result = pipeline.select_and_calibrate(ctx, pools, preset, name)
        row(name, result, result.timings.fingerprint_generation)
    return {
        "scale": args.scale,
        "k": preset.k,
        "seeds": preset.seeds,
        "baseline_seeds": preset.baseline_seeds,
        "gan": {"epochs": preset.gan.epochs, "train_images": preset.gan.train_images, "batch": preset.gan.batch_size},
        "device": str(ctx.device),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "pools": run_dir.name,
        "command": " ".join(["python", "benchmarks/generation.py", *sys.argv[1:]]),
        "rows": rows,
    }


def render(doc: dict) -> str:
    rows = doc["rows"]
    refresh = [r for r in rows if "refresh" in r["method"]]
    baselines = [r for r in rows if not r["method"].startswith("ganfinger")]
    train = rows[0]
    lines = [
        f"Scale `{doc['scale']}`, K = {doc['k']}, pools `{doc['pools']}`, device {doc['device']}; GAN {doc['gan']['epochs']} "
        f"epochs on {doc['gan']['train_images'] or doc['seeds']} images; baselines on the first {doc['baseline_seeds']} "
        "seeds of the same draw. Reproduce with:",
        "",
        "```bash",
        doc["command"],
        "```",
        "",
        "| method | generation (s) | GAN training (s) | candidates | eligible | kept | pairs kept / s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gan = r.get("gan_training_s", "-")
        lines.append(
            f"| {r['method']} | {r['generation_s']} | {gan} | {r['candidates']} | {r['eligible']} | {r['kept']} | "
            f"{r['pairs_per_s']} |"
        )
    if refresh and baselines:
        fastest = min(baselines, key=lambda r: r["generation_s"])
        slowest = max(baselines, key=lambda r: r["generation_s"])
        best = min(refresh, key=lambda r: r["generation_s"])
        ratio = fastest["generation_s"] / best["generation_s"] if best["generation_s"] else float("inf")
        gan_ok = train.get("gan_training_s", 0) <= slowest["generation_s"]
        walls = ", ".join(str(r.get("wall_s")) for r in refresh)
        lines += [
            "",
            f"Refresh is {ratio:.1f}x faster than the fastest baseline ({fastest['method']}, "
            f"{fastest['generation_s']} s): target 3.3x, {'met' if ratio >= 3.3 else 'missed'}. GAN training "
            f"{train.get('gan_training_s')} s against the slowest baseline's {slowest['generation_s']} s "
            f"({slowest['method']}): {'no slower' if gan_ok else 'slower'}. Whole refresh (load the generator, "
            f"draw, generate, select, calibrate, sign): {walls} s.",
        ]
    return "\n".join(lines) + "\n"


def update_docs(text: str, path: Path) -> None:
    doc = path.read_text()
    block = f"{DOC_BEGIN}\n{text}{DOC_END}"
    if DOC_BEGIN in doc and DOC_END in doc:
        head, rest = doc.split(DOC_BEGIN, 1)
        doc = head + block + rest.split(DOC_END, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n## Generation side by side\n\n" + block + "\n"
    write_text_atomic(path, doc)


def main() -> None:
    ap = context_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument(
        "--out-dir", type=Path, default=None, help="bundles, keys and generation.json (default: a temp dir)"
    )
    ap.add_argument("--update-docs", action="store_true", help="also write the table into docs/benchmark.md")
    ap.add_argument("--refreshes", type=int, default=2, help="refreshed bundles to time (default 2)")
    ap.add_argument("--candidates", type=int, default=None, help="seeds per refresh (default: from the yield)")
    ap.add_argument("--methods", default=None, help="baselines, comma-separated (default: all)")
    ap.add_argument("--gan-epochs", type=int, default=None, help="override the preset's GAN epochs")
    ap.add_argument("--gan-images", type=int, default=None, help="override the images of D_v the GAN trains on")
    ap.add_argument("-k", type=int, default=None, help="override K")
    args = ap.parse_args()
    if args.out_dir is None:
        args.out_dir = Path(tempfile.mkdtemp(prefix="gfaudit-generation-"))
    doc = measure(args)
    write_text_atomic(args.out_dir / "generation.json", json.dumps(doc, indent=2) + "\n")
    text = render(doc)
    print(text)
    log(f"wrote {args.out_dir / 'generation.json'}")
    if args.update_docs:
        update_docs(text, REPO / "docs" / "benchmark.md")
        log("updated docs/benchmark.md")


if __name__ == "__main__":
    main()
