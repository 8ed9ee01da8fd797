"""``gfaudit train``: victim -> pools -> GAN -> selection -> calibrated threshold -> signed bundle."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from gfaudit import create as bundle_create
from gfaudit.keys import load_private
from gfaudit.normalization import resolve as resolve_norm
from gfaudit.provenance import file_sha256, versions

from . import data as data_mod, gan, pools as pools_mod, presets, selection, zoo
from .export import export
from .figure import save_grid
from .progress import log
from .training import accuracy, predict, resolve_device
from .victim import load as load_victim


@dataclass
class Context:
    """Everything loaded once and shared by train, library build and the benchmarks."""

    victim: torch.nn.Module  # Normalized victim: [0,1] pixels -> logits
    bare: torch.nn.Module
    victim_path: Path
    victim_sha256: str
    arch: str | None
    mean: list[float]
    std: list[float]
    normalization: str
    train: data_mod.Split
    test: data_mod.Split
    d_v: data_mod.Split
    d_p: data_mod.Split
    d_a: data_mod.Split
    device: torch.device
    cache: Path
    seed: int
    victim_accuracy: float

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)


def default_cache() -> Path:
    import os

    return Path(os.environ.get("GFAUDIT_CACHE") or Path.home() / ".cache" / "gfaudit")


def load_context(victim: str | Path, arch: str | None, normalization: str, data: str | None, preset: presets.Preset,
                 device: str, cache: Path | None, seed: int) -> Context:
    dev = resolve_device(device)
    cache = Path(cache) if cache else default_cache()
    mean, std = resolve_norm(normalization)
    bare = load_victim(victim, arch)
    model = zoo.Normalized(bare, mean, std).to(dev).eval()
    train = data_mod.load_split(data, "train", cache, preset.train_per_class)
    test = data_mod.load_split(data, "test", cache, preset.test_per_class)
    d_v, d_p, d_a = data_mod.partition(train, seed)
    acc = accuracy(model, test.images, test.labels, dev)
    log(f"victim {Path(victim).name}: test accuracy {acc:.1%} on {len(test)} images; device {dev}")
    return Context(model, bare, Path(victim), file_sha256(victim), arch, mean, std, normalization, train, test,
                   d_v, d_p, d_a, dev, cache, seed, acc)


def pool_key(ctx: Context, preset: presets.Preset) -> str:
    ident = {"victim": ctx.victim_sha256, "arch": ctx.arch, "norm": ctx.normalization, "seed": ctx.seed,
             "n_train": len(ctx.train), "split": "v/p/a 50/25/25", "n_test": len(ctx.test), "pos": asdict(preset.positive),
             "neg": asdict(preset.negative), "batch": preset.batch_size}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def runner_up(logits: torch.Tensor) -> torch.Tensor:
    return logits.topk(2, dim=1).indices[:, 1]


def run(*, victim: str, arch: str | None, normalization: str, data: str | None, preset_name: str, device: str,
        key: str, out: str, cache: str | None = None, seed: int = 0, overrides: dict | None = None) -> dict:
    """Build the fingerprints and write the signed bundle; returns the provenance it signed."""
    signing_key = load_private(key)  # fail before hours of training, not after
    preset = presets.get(preset_name, **(overrides or {}))
    started = time.perf_counter()
    ctx = load_context(victim, arch, normalization, data, preset, device, Path(cache) if cache else None, seed)
    run_dir = ctx.cache / "pools" / pool_key(ctx, preset)
    log(f"pools cached in {run_dir}")

    t0 = time.perf_counter()
    pools = pools_mod.build(ctx.victim, ctx.d_v, ctx.d_p, ctx.test, preset, run_dir, ctx.device, ctx.mean, ctx.std,
                            ctx.num_classes, seed)
    pool_seconds = time.perf_counter() - t0
    weak = [m for m in pools.get("negative", "train") + pools.get("negative", "val")
            if m.accuracy < ctx.victim_accuracy - 0.10]
    if weak:
        log(f"warning: {len(weak)} negative model(s) are >10 points weaker than the victim; "
            "fingerprints may transfer to strong unrelated models (SPEC: measured pitfalls)")

    t1 = time.perf_counter()
    g = torch.Generator().manual_seed(seed + 7)
    seeds_idx = torch.randperm(len(ctx.test), generator=g)[: preset.seeds]
    seeds = ctx.test.subset(seeds_idx)
    with torch.no_grad():
        logits = torch.cat([ctx.victim(seeds.images[i:i + 500].to(ctx.device).float() / 255).cpu()
                            for i in range(0, len(seeds), 500)])
    targets = runner_up(logits)
    trained = gan.train(ctx.victim, [m.model for m in pools.get("positive", "train")],
                        [m.model for m in pools.get("negative", "train")], seeds.images, targets, preset.gan,
                        ctx.device, seed)
    x_prime = gan.generate(trained.generator, seeds.images, ctx.device)
    sel = selection.select(ctx.victim, pools, seeds.images, x_prime, seeds.labels, preset.k, preset.pos_agree, ctx.device,
                           preset.x_agreement)
    if sel.stats["selected"] == 0:
        raise RuntimeError("no fingerprint pair passed selection; train longer or raise eps")
    if sel.stats["selected"] < preset.k:
        log(f"warning: only {sel.stats['selected']} of K={preset.k} pairs passed selection")
    val_pos = selection.model_scores(pools.get("positive", "val"), sel, ctx.victim, ctx.device)
    val_neg = selection.model_scores(pools.get("negative", "val"), sel, ctx.victim, ctx.device)
    threshold = selection.calibrate([r["ard"] for r in val_pos], [r["ard"] for r in val_neg])
    gen_seconds = time.perf_counter() - t1
    log(f"selected {sel.stats['selected']} pairs; validation ARD positive {[r['ard'] for r in val_pos]} "
        f"negative {[r['ard'] for r in val_neg]}; threshold {threshold}")

    out_path = Path(out)
    victim_onnx = run_dir / "victim.onnx"
    export(ctx.bare, victim_onnx)
    provenance = {
        "tool": "gfaudit train",
        "preset": preset.to_json(),
        "seed": seed,
        "device": str(ctx.device),
        "victim_arch": arch,
        "victim_source_sha256": ctx.victim_sha256,
        "victim_test_accuracy": round(ctx.victim_accuracy, 4),
        "data": {"source": str(data) if data else "torchvision CIFAR10 download", "train": len(ctx.train),
                 "test": len(ctx.test), "d_v": len(ctx.d_v), "d_p": len(ctx.d_p),
                 "d_a_reserved_for_library": len(ctx.d_a),
                 "fingerprint_seeds": "test split, seeded draw"},
        "pools": pools.summary(),
        "validation_scores": {"positive": val_pos, "negative": val_neg},
        "selection": sel.stats,
        "gan_history": trained.history,
        "timings_s": {"pool_building": round(pool_seconds, 1), "fingerprint_generation": round(gen_seconds, 1),
                      "gan_training": round(trained.seconds, 1), "total": round(time.perf_counter() - started, 1)},
        "training_versions": versions("torch", "torchvision"),
    }
    created = bundle_create.create(out_path, x=sel.x.numpy(), x_prime=sel.x_prime.numpy(), victim_onnx=victim_onnx,
                                   mean=ctx.mean, std=ctx.std, key=signing_key, method="ganfinger", rule="ard",
                                   threshold=threshold, class_names=list(ctx.train.classes), provenance=provenance)
    figure = save_grid(sel.x, sel.x_prime, out_path.with_suffix(".png"))
    log(f"wrote {created.path} ({created.kept} pairs, threshold {threshold}) and {figure}")
    return {"bundle": str(created.path), "figure": str(figure), "victim_onnx": str(victim_onnx),
            "threshold": threshold, "kept": created.kept, **provenance["timings_s"]}
