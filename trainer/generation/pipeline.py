"""``gfaudit train``: victim -> pools -> GAN -> selection -> calibrated threshold -> signed bundle."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from gfaudit.audit import create as bundle_create
from gfaudit.audit.isolation import DEFAULT_TIMEOUT
from gfaudit.bundle import container as bundle_io, perturbation
from gfaudit.bundle.keys import load_private
from gfaudit.bundle.provenance import file_sha256, versions
from gfaudit.errors import GfauditError
from gfaudit_trainer import presets
from gfaudit_trainer.generation import calibration, methods, selection
from gfaudit_trainer.generation.figure import save_grid
from gfaudit_trainer.generation.methods.ganfinger import gan_candidates
from gfaudit_trainer.models import data_world, pools as pools_mod
from gfaudit_trainer.models.context import SEED_OFFSET, Context, default_cache, load_context, runner_up_of, seed_images
from gfaudit_trainer.models.export import export
from gfaudit_trainer.models.training import predict
from gfaudit_trainer.progress import log

# Context and its loaders live in trainer/models/context.py; these names stay importable from here.
__all__ = [
    "Calibrated",
    "Context",
    "NoFingerprints",
    "base_provenance",
    "build_pools",
    "bundle_provenance",
    "default_cache",
    "gan_candidates",
    "load_context",
    "pool_key",
    "run",
    "runner_up_of",
    "seed_images",
    "select_and_calibrate",
    "sign",
    "victim_onnx",
    "write_bundle",
]


class NoFingerprints(GfauditError):
    """No pair passed selection (exit 4)."""


def pool_key(ctx: Context, preset: presets.Preset) -> str:
    """The pools' folder: one per victim, data and partition; each model file names its own recipe."""
    ident = {
        "victim": ctx.victim_sha256,
        "arch": ctx.arch,
        "norm": ctx.normalization,
        "seed": ctx.seed,
        "n_train": len(ctx.train),
        "split": "v/p/a 50/25/25",
        "n_test": len(ctx.test),
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def build_pools(
    ctx: Context,
    preset: presets.Preset,
    references: list[Path] | None = None,
    executor=None,
    resources=None,
    reference_timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[pools_mod.Pools, Path, float]:
    """Pools (cached per victim, data, pool config and seed) plus any reference models (ONNX), their
    folder and the seconds spent. Missing pool models train through ``executor`` (trainer/executors.py;
    default: in this process) with ``resources`` per model."""
    run_dir = ctx.cache / "pools" / pool_key(ctx, preset)
    log(f"pools cached in {run_dir}")
    t0 = time.perf_counter()
    pools = pools_mod.build(
        ctx.victim,
        ctx.d_v,
        ctx.d_p,
        ctx.test,
        preset,
        run_dir,
        ctx.device,
        ctx.mean,
        ctx.std,
        ctx.num_classes,
        ctx.seed,
        executor=executor,
        resources=resources,
    )
    victim_test = predict(ctx.victim, ctx.test.images, ctx.device)
    world = data_world.check(victim_test, ctx.victim_accuracy, pools.models, ctx.test.images, ctx.device)
    if world is not None:
        pools.data_world = world.to_json()
        if world.warn:
            log(f"warning: two data worlds? {world.message()}")
    if references:
        from gfaudit_trainer.models import references as refs

        pools.models += refs.load(
            references,
            ctx.test.images,
            ctx.test.labels,
            victim_test,
            ctx.mean,
            ctx.std,
            ctx.num_classes,
            reference_timeout,
        )
    negatives = [m for m in pools.models if m.role == "negative"]
    weak = [m for m in negatives if m.accuracy < ctx.victim_accuracy]
    if weak:
        log(
            f"warning: {len(weak)} of {len(negatives)} negative model(s) are weaker than the victim "
            f"({ctx.victim_accuracy:.1%}): fingerprints may transfer to stronger unrelated models, which exist; "
            "add strong ones with --reference"
        )
    if not pools.get("negative", "calib"):
        log("warning: no calibration negatives: the threshold falls back to the validation pools")
    return pools, run_dir, time.perf_counter() - t0


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
        "data": {
            "train": len(ctx.train),
            "test": len(ctx.test),
            "d_v": len(ctx.d_v),
            "d_p": len(ctx.d_p),
            "d_a_reserved_for_library": len(ctx.d_a),
            "fingerprint_seeds": "test split, seeded draw",
        },
        "pools": pools.summary(),
        "data_world_check": pools.data_world,
        "timings_s": {"pool_building": round(pool_seconds, 1)},
        "training_versions": versions("torch", "torchvision"),
    }


def write_bundle(
    ctx: Context,
    run_dir: Path,
    sel: selection.Selection,
    *,
    method: str,
    rule: str,
    threshold: float,
    provenance: dict,
    key,
    out: Path,
    null_model=None,
) -> bundle_create.Created:
    """Sign the selected pairs through the auditor's bundle code, labelled by the victim's ONNX."""
    created = bundle_create.create(
        out,
        x=sel.x.numpy(),
        x_prime=sel.x_prime.numpy(),
        victim_onnx=victim_onnx(ctx, run_dir),
        mean=ctx.mean,
        std=ctx.std,
        key=key,
        method=method,
        rule=rule,
        threshold=threshold,
        class_names=list(ctx.train.classes),
        provenance=provenance,
        null_model=null_model,
    )
    # The picture shows exactly the signed pairs, with the labels the victim gave them in the bundle.
    signed = bundle_io.load(created.path, key.public_key())
    save_grid(
        signed.x,
        signed.x_prime,
        out.with_suffix(".png"),
        y=signed.y,
        y_prime=signed.y_prime,
        class_names=list(ctx.train.classes),
    )
    return created


@dataclass(frozen=True)
class Calibrated:
    """One method's fingerprint, ready to sign: the selected pairs, the calibrated threshold, the
    seconds spent and the provenance the bundle records about them."""

    method: str
    selection: selection.Selection
    calibration: calibration.Calibration
    timings: methods.Timings
    provenance: dict  # the method's own part, then validation_scores, selection, calibration, fingerprint_diversity
    private: dict = field(default_factory=dict)  # never signed: GanFinger's generator, the candidates' seed indices

    @property
    def rule(self) -> str:
        return self.calibration.rule


def select_and_calibrate(
    ctx: Context, pools: pools_mod.Pools, preset: presets.Preset, method: str | methods.Method
) -> Calibrated:
    """The one path every method takes: make and select candidate pairs (``Method.fingerprint``),
    then calibrate the threshold on the calibration negatives (trainer/generation/calibration.py)."""
    m = methods.get(method) if isinstance(method, str) else method
    fp = m.fingerprint(ctx, pools, preset)
    sel = fp.selection
    if sel.stats.selected == 0:
        # The stage counts say which rule removed the pairs (flipped by x', filter checks, pool votes).
        counts = ", ".join(f"{k} {v}" for k, v in sel.stats.to_json().items() if isinstance(v, int))
        raise NoFingerprints(f"{m.name}: no fingerprint pair passed selection ({counts}); train longer or raise --eps")
    if sel.stats.selected < preset.k:
        log(f"warning: only {sel.stats.selected} of K={preset.k} pairs passed selection")
    cal = calibration.calibrate(ctx.victim, pools, sel, m.rule, preset.false_accusation_rate, ctx.device)
    y_prime = predict(ctx.victim, sel.x_prime, ctx.device).numpy()
    part = {
        **fp.provenance,
        "validation_scores": cal.scores_json(),
        "selection": sel.stats.to_json(),
        "calibration": cal.to_json(),
        "fingerprint_diversity": perturbation.diversity(sel.x.numpy(), sel.x_prime.numpy(), y_prime),
    }
    return Calibrated(m.name, sel, cal, fp.timings, part, fp.private)


def bundle_provenance(
    ctx: Context, preset: presets.Preset, pools: pools_mod.Pools, pool_seconds: float, result: Calibrated, **extra
) -> dict:
    """The provenance a bundle signs: the shared part (``base_provenance``), the method's timings and
    record, then ``extra`` (e.g. ``tool``)."""
    provenance = base_provenance(ctx, preset, pools, pool_seconds)
    provenance["timings_s"].update(result.timings.to_json())
    provenance.update(result.provenance)
    provenance.update(extra)
    return provenance


def sign(ctx: Context, run_dir: Path, result: Calibrated, provenance: dict, key, out: Path) -> bundle_create.Created:
    """Write the signed bundle of ``result`` with its calibrated threshold and null model."""
    return write_bundle(
        ctx,
        run_dir,
        result.selection,
        method=result.method,
        rule=result.rule,
        threshold=result.calibration.threshold,
        provenance=provenance,
        key=key,
        out=out,
        null_model=result.calibration.null_model,
    )


def run(
    *,
    victim: str,
    arch: str | None,
    normalization: str,
    data: str | None,
    preset_name: str,
    device: str,
    key: str,
    out: str,
    cache: str | None = None,
    seed: int = 0,
    overrides: dict | None = None,
    method: str = "ganfinger",
    references: list[str] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    task_cpus: int | None = None,
    task_gpus: float | None = None,
    reference_timeout: float | None = DEFAULT_TIMEOUT,
) -> dict:
    """Build the fingerprints and write the signed bundle; returns a summary of what was signed.
    Each ``references`` model runs isolated under ``reference_timeout`` seconds per batch.
    ``method`` other than ganfinger makes a baseline's bundle from the same pools and seeds.
    ``executor`` (local or ray, at ``ray_address``) trains the missing pool models, each with
    ``task_cpus`` torch threads and ``task_gpus`` of a GPU (trainer/executors.py)."""
    from gfaudit_trainer import executors

    m = methods.get(method)  # UsageError naming the choices, before anything else
    signing_key = load_private(key)  # fail before hours of training, not after
    runner = executors.get(executor, ray_address)
    preset = presets.get(preset_name, **(overrides or {}))
    started = time.perf_counter()
    ctx = load_context(victim, arch, normalization, data, preset, device, Path(cache) if cache else None, seed)
    resources = executors.default_resources(ctx.device, task_cpus, task_gpus)
    pools, run_dir, pool_seconds = build_pools(
        ctx, preset, [Path(r) for r in references or []], runner, resources, reference_timeout
    )
    result = select_and_calibrate(ctx, pools, preset, m)
    threshold = result.calibration.threshold
    provenance = bundle_provenance(ctx, preset, pools, pool_seconds, result, tool="gfaudit train")
    provenance["data"]["source"] = str(data) if data else "torchvision CIFAR10 download"
    out_path = Path(out)
    kept_seeds = generator_files = None
    if "generator" in result.private:
        # The owner's private artefact: the generator beside the bundle (never in it), its hashes signed.
        from gfaudit_trainer.generation import generator as gen

        saved = gen.save(
            result.private["generator"],
            out_path,
            generator_meta(ctx, preset, overrides, references, result),
        )
        generator_files = saved.files
        provenance["generator"] = saved.provenance("trained")
        kept_seeds = kept_seed_indices(result)
        provenance["seed_draw"] = seed_draw_json(ctx, result.private["seed_indices"], kept_seeds)
    provenance["timings_s"]["total"] = round(time.perf_counter() - started, 1)
    created = sign(ctx, run_dir, result, provenance, signing_key, out_path)
    summary = {
        "bundle": str(created.path),
        "figure": str(out_path.with_suffix(".png")),
        "victim_onnx": str(run_dir / "victim.onnx"),
        "threshold": threshold,
        "kept": created.kept,
        **provenance["timings_s"],
    }
    if generator_files is not None and kept_seeds is not None:
        from gfaudit_trainer.generation import generator as gen

        ledger = gen.Ledger(generator_files.ledger, provenance["generator"]["weights_sha256"])
        ledger.record(created.path, file_sha256(created.path), result.private["seed_indices"].tolist(), kept_seeds)
        summary["generator"] = str(generator_files.config)
        log(f"kept the generator (private, mode 0600): {generator_files.weights}, {generator_files.config}")
    log(f"wrote {created.path} ({created.kept} pairs, threshold {threshold}) and {out_path.with_suffix('.png')}")
    return summary


def kept_seed_indices(result: Calibrated) -> list[int]:
    """Test-split indices of the selected pairs' x (``private["seed_indices"]`` in candidate order)."""
    return [int(i) for i in result.private["seed_indices"][result.selection.index].tolist()]


def seed_draw_json(ctx: Context, drawn, kept: list[int], draw=None) -> dict:
    """What a bundle signs about its seeds: the test-split indices it drew and kept."""
    if draw is not None:
        return draw.to_json(kept, ctx.seed + SEED_OFFSET, len(ctx.test))
    return {
        "split": "test",
        "permutation_seed": ctx.seed + SEED_OFFSET,
        "n_test": len(ctx.test),
        "drawn": [int(i) for i in drawn],
        "fresh": len(drawn),
        "reused_unkept": 0,
        "excluded_kept_by_earlier_bundles": 0,
        "kept": kept,
    }


def generator_meta(ctx: Context, preset: presets.Preset, overrides, references, result: Calibrated) -> dict:
    """What a saved generator's config records: enough for ``refresh`` to rebuild the same context."""
    stats = result.selection.stats
    return {
        "victim_source_sha256": ctx.victim_sha256,
        "victim_arch": ctx.arch,
        "normalization": ctx.normalization,
        "seed": ctx.seed,
        "preset": preset.name,
        "preset_overrides": {k: v for k, v in (overrides or {}).items() if v is not None},
        "pool_key": pool_key(ctx, preset),
        "references": [str(r) for r in references or []],
        "image_shape": list(ctx.test.images.shape[1:]),
        "seed_draw": {"split": "test", "permutation_seed": ctx.seed + SEED_OFFSET, "n_test": len(ctx.test)},
        "yield": {"candidates": stats.candidates, "eligible": stats.eligible, "selected": stats.selected},
        "gan_seconds": result.timings.gan_training,
    }
