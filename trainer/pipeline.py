"""``gfaudit train``: victim -> pools -> GAN -> selection -> calibrated threshold -> signed bundle."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gfaudit import bundle as bundle_io, create as bundle_create, perturbation
from gfaudit.errors import GfauditError, UsageError
from gfaudit.keys import load_private
from gfaudit.normalization import resolve as resolve_norm
from gfaudit.provenance import file_sha256, versions

from . import calibration, data as data_mod, gan, pools as pools_mod, presets, selection, zoo
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


class NoFingerprints(GfauditError):
    """No pair passed selection (exit 4)."""


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
    """The pools' folder: one per victim, data and partition; each model file names its own recipe."""
    ident = {"victim": ctx.victim_sha256, "arch": ctx.arch, "norm": ctx.normalization, "seed": ctx.seed,
             "n_train": len(ctx.train), "split": "v/p/a 50/25/25", "n_test": len(ctx.test)}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def runner_up_of(ctx: Context, images_u8: torch.Tensor) -> torch.Tensor:
    """The target t of each image: the victim's second most likely class (the nearest wrong one)."""
    return predict(ctx.victim, images_u8, ctx.device, probs=True).topk(2, dim=1).indices[:, 1]


def build_pools(ctx: Context, preset: presets.Preset, references: list[Path] | None = None, executor=None,
                resources=None) -> tuple[pools_mod.Pools, Path, float]:
    """Pools (cached per victim, data, pool config and seed) plus any reference models (ONNX), their
    folder and the seconds spent. Missing pool models train through ``executor`` (trainer/executors.py;
    default: in this process) with ``resources`` per model."""
    run_dir = ctx.cache / "pools" / pool_key(ctx, preset)
    log(f"pools cached in {run_dir}")
    t0 = time.perf_counter()
    pools = pools_mod.build(ctx.victim, ctx.d_v, ctx.d_p, ctx.test, preset, run_dir, ctx.device, ctx.mean, ctx.std,
                            ctx.num_classes, ctx.seed, executor=executor, resources=resources)
    if references:
        from . import references as refs

        victim_test = predict(ctx.victim, ctx.test.images, ctx.device)
        pools.models += refs.load(references, ctx.test.images, ctx.test.labels, victim_test, ctx.mean, ctx.std,
                                  ctx.num_classes)
    negatives = [m for m in pools.models if m.role == "negative"]
    weak = [m for m in negatives if m.accuracy < ctx.victim_accuracy]
    if weak:
        log(f"warning: {len(weak)} of {len(negatives)} negative model(s) are weaker than the victim "
            f"({ctx.victim_accuracy:.1%}): fingerprints may transfer to stronger unrelated models, which exist; "
            "add strong ones with --reference")
    if not pools.get("negative", "calib"):
        log("warning: no calibration negatives: the threshold falls back to the validation pools")
    return pools, run_dir, time.perf_counter() - t0


def seed_images(ctx: Context, preset: presets.Preset) -> data_mod.Split:
    """The candidate x: a seeded draw from the test split (no pool model trained on them)."""
    g = torch.Generator().manual_seed(ctx.seed + 7)
    return ctx.test.subset(torch.randperm(len(ctx.test), generator=g)[: preset.seeds])


def victim_onnx(ctx: Context, run_dir: Path) -> Path:
    path = run_dir / "victim.onnx"
    if not path.is_file():
        export(ctx.bare, path)
    return path


def base_provenance(ctx: Context, preset: presets.Preset, pools: pools_mod.Pools, pool_seconds: float) -> dict:
    return {
        "preset": preset.to_json(),
        "seed": ctx.seed,
        "device": str(ctx.device),
        "victim_arch": ctx.arch,
        "victim_source_sha256": ctx.victim_sha256,
        "victim_test_accuracy": round(ctx.victim_accuracy, 4),
        "data": {"train": len(ctx.train), "test": len(ctx.test), "d_v": len(ctx.d_v), "d_p": len(ctx.d_p),
                 "d_a_reserved_for_library": len(ctx.d_a), "fingerprint_seeds": "test split, seeded draw"},
        "pools": pools.summary(),
        "timings_s": {"pool_building": round(pool_seconds, 1)},
        "training_versions": versions("torch", "torchvision"),
    }


def write_bundle(ctx: Context, run_dir: Path, sel: selection.Selection, *, method: str, rule: str, threshold: float,
                 provenance: dict, key, out: Path, null_model=None) -> bundle_create.Created:
    """Sign the selected pairs through the auditor's bundle code, labelled by the victim's ONNX."""
    created = bundle_create.create(out, x=sel.x.numpy(), x_prime=sel.x_prime.numpy(), victim_onnx=victim_onnx(ctx, run_dir),
                                   mean=ctx.mean, std=ctx.std, key=key, method=method, rule=rule, threshold=threshold,
                                   class_names=list(ctx.train.classes), provenance=provenance, null_model=null_model)
    # The picture shows exactly the signed pairs, with the labels the victim gave them in the bundle.
    signed = bundle_io.load(created.path, key.public_key())
    save_grid(signed.x, signed.x_prime, out.with_suffix(".png"), y=signed.y, y_prime=signed.y_prime,
              class_names=list(ctx.train.classes))
    return created


def gan_candidates(ctx: Context, pools: pools_mod.Pools, preset: presets.Preset):
    """Train the GAN and apply it to the candidate seeds: (seeds, x' as uint8, the trained GAN)."""
    seeds = seed_images(ctx, preset)
    # The generator learns a mapping x -> x'; it may train on more of the defender's own data (D_v)
    # than the candidates it is finally applied to.
    train_x = ctx.d_v.images[: preset.gan.train_images] if preset.gan.train_images else seeds.images
    trained = gan.train(ctx.victim, [m.model for m in pools.get("positive", "train")],
                        [m.model for m in pools.get("negative", "train")], train_x, runner_up_of(ctx, train_x),
                        preset.gan, ctx.device, ctx.seed, num_classes=ctx.num_classes)
    return seeds, gan.generate(trained.generator, seeds.images, runner_up_of(ctx, seeds.images), ctx.device), trained


def ganfinger(ctx: Context, pools: pools_mod.Pools, preset: presets.Preset) -> tuple[selection.Selection, float, dict]:
    """Train the GAN on the seeds and select K pairs: (selection, seconds, provenance part)."""
    t1 = time.perf_counter()
    seeds, x_prime, trained = gan_candidates(ctx, pools, preset)
    sel = selection.select(ctx.victim, pools, seeds.images, x_prime, seeds.labels, preset.k, preset.pos_agree, ctx.device,
                           preset.x_agreement, preset.neg_follow, preset.max_cosine, preset.target_cap, ctx.num_classes)
    part = {"gan_history": trained.history, "gan_direction_checks": trained.direction_checks(),
            "timings_s": {"fingerprint_generation": round(time.perf_counter() - t1, 1), "gan_training": round(trained.seconds, 1)}}
    return sel, time.perf_counter() - t1, part


def select_and_calibrate(ctx: Context, pools: pools_mod.Pools, preset: presets.Preset, method: str
                         ) -> tuple[selection.Selection, calibration.Calibration, dict]:
    """The one path every method takes: make and select candidate pairs, then calibrate the
    threshold on the calibration negatives (trainer/calibration.py)."""
    from . import baselines

    if method == "ganfinger":
        sel, _, part = ganfinger(ctx, pools, preset)
    else:
        sel, part = baselines.fingerprint(ctx, pools, preset, method)
    if sel.stats["selected"] == 0:
        raise NoFingerprints(f"{method}: no fingerprint pair passed selection; train longer or raise --eps")
    if sel.stats["selected"] < preset.k:
        log(f"warning: only {sel.stats['selected']} of K={preset.k} pairs passed selection")
    cal = calibration.calibrate(ctx.victim, pools, sel, bundle_create.rule_for(method), preset.false_accusation_alpha,
                                ctx.device)
    y_prime = predict(ctx.victim, sel.x_prime, ctx.device).numpy()
    part.update({"validation_scores": cal.scores, "selection": sel.stats, "calibration": cal.to_json(),
                 "fingerprint_diversity": perturbation.diversity(sel.x.numpy(), sel.x_prime.numpy(), y_prime)})
    return sel, cal, part


def run(*, victim: str, arch: str | None, normalization: str, data: str | None, preset_name: str, device: str,
        key: str, out: str, cache: str | None = None, seed: int = 0, overrides: dict | None = None,
        method: str = "ganfinger", references: list[str] | None = None, executor: str = "local",
        ray_address: str | None = None, task_cpus: int | None = None, task_gpus: float | None = None) -> dict:
    """Build the fingerprints and write the signed bundle; returns a summary of what was signed.
    ``method`` other than ganfinger makes a baseline's bundle from the same pools and seeds.
    ``executor`` (local or ray, at ``ray_address``) trains the missing pool models, each with
    ``task_cpus`` torch threads and ``task_gpus`` of a GPU (trainer/executors.py)."""
    from . import baselines, executors

    if method != "ganfinger" and method not in baselines.BASELINES:
        raise UsageError(f"unknown method {method!r}; choose ganfinger or {', '.join(baselines.BASELINES)}")
    signing_key = load_private(key)  # fail before hours of training, not after
    runner = executors.get(executor, ray_address)
    preset = presets.get(preset_name, **(overrides or {}))
    started = time.perf_counter()
    ctx = load_context(victim, arch, normalization, data, preset, device, Path(cache) if cache else None, seed)
    resources = executors.default_resources(ctx.device, task_cpus, task_gpus)
    pools, run_dir, pool_seconds = build_pools(ctx, preset, [Path(r) for r in references or []], runner, resources)
    sel, cal, part = select_and_calibrate(ctx, pools, preset, method)
    threshold = cal.threshold
    provenance = base_provenance(ctx, preset, pools, pool_seconds)
    provenance["tool"] = "gfaudit train"
    provenance["data"]["source"] = str(data) if data else "torchvision CIFAR10 download"
    timings = {**provenance["timings_s"], **part.pop("timings_s")}
    provenance.update(part)
    provenance["timings_s"] = {**timings, "total": round(time.perf_counter() - started, 1)}
    out_path = Path(out)
    created = write_bundle(ctx, run_dir, sel, method=method, rule=cal.rule, threshold=threshold, provenance=provenance,
                           key=signing_key, out=out_path, null_model=cal.null_model)
    log(f"wrote {created.path} ({created.kept} pairs, threshold {threshold}) and {out_path.with_suffix('.png')}")
    return {"bundle": str(created.path), "figure": str(out_path.with_suffix(".png")), "victim_onnx": str(run_dir / "victim.onnx"),
            "threshold": threshold, "kept": created.kept, **provenance["timings_s"]}
