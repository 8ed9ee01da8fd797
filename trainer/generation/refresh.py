"""``gfaudit refresh``: a new bundle of K fresh pairs from the owner's saved generator, in seconds.

No GAN is trained: the generator that ``train`` kept (trainer/generation/generator.py) maps seeds the earlier
bundles of the same generator never drew (its ledger) to x', and the pairs go through the one path
every method takes, ``pipeline.select_and_calibrate``: the same selection on the pools, the same
calibration on the calibration negatives, signed with the owner's key. The bundle records its
parent generator (sha256 of weights and config) and the seeds it drew and kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from gfaudit.bundle.keys import load_private
from gfaudit.bundle.provenance import file_sha256
from gfaudit.errors import UsageError
from gfaudit_trainer import presets
from gfaudit_trainer.generation import generator as gen, pipeline
from gfaudit_trainer.generation.methods.ganfinger import RefreshedGanFinger
from gfaudit_trainer.models.context import Context, seed_order
from gfaudit_trainer.models.pools import Pools
from gfaudit_trainer.progress import log

__all__ = ["MAX_CHUNKS", "Fresh", "default_candidates", "fresh", "run"]

MAX_CHUNKS = 3  # extra draws a refresh makes when its first draw yields fewer than K pairs


def default_candidates(config: dict, k: int) -> int:
    """Candidates a refresh draws for K pairs: the parent bundle's selection yield, with a margin
    of 1.5 (at least 2K; the parent's own count when its yield is unknown)."""
    y = config.get("yield") or {}
    cand, eligible = int(y.get("candidates") or 0), int(y.get("eligible") or 0)
    if cand and eligible:
        return max(2 * k, math.ceil(1.5 * k * cand / eligible))
    return max(2 * k, cand)


@dataclass(frozen=True)
class Fresh:
    """One refreshed fingerprint, ready to sign, and the seeds behind it."""

    result: pipeline.Calibrated
    draw: gen.Draw
    kept: list[int]
    seconds: float  # candidates (one pass of G) and selection: what the baselines' generation time covers


def fresh(
    ctx: Context, pools: Pools, preset: presets.Preset, loaded: gen.LoadedGenerator, ledger: gen.Ledger, n: int
) -> Fresh:
    """Draw ``n`` seeds no earlier bundle of this generator used, make their x' with the saved
    generator, then select and calibrate through ``pipeline.select_and_calibrate``. When fewer than
    K pairs pass (the parent's yield overestimated this draw's), draw in chunks: half as many seeds
    again, up to ``MAX_CHUNKS`` times, while unkept seeds remain; the ledger records every seed drawn."""
    order = seed_order(ctx)
    seconds = 0.0
    for chunk in range(MAX_CHUNKS + 1):
        d = gen.draw(order, n, ledger)
        if d.reused:
            log(f"only {d.fresh} never-drawn seed(s) left; {d.reused} drawn before but never kept are drawn again")
        method = RefreshedGanFinger(loaded.generator, d.indices)
        exhausted, last = len(d.indices) < n, chunk == MAX_CHUNKS
        try:
            result = pipeline.select_and_calibrate(ctx, pools, preset, method)
        except pipeline.NoFingerprints:
            if exhausted or last:
                raise
            kept = []
        else:
            seconds += result.timings.fingerprint_generation
            kept = pipeline.kept_seed_indices(result)
            if len(kept) >= preset.k or exhausted or last:
                return Fresh(result, d, kept, seconds)
        log(f"{len(kept)} of K = {preset.k} pairs from {len(d.indices)} seeds: drawing {math.ceil(n / 2)} more")
        n += math.ceil(n / 2)
    raise AssertionError("unreachable")


def _check_same_world(ctx: Context, preset: presets.Preset, config: dict) -> None:
    if ctx.victim_sha256 != config.get("victim_source_sha256"):
        raise UsageError(
            f"{ctx.victim_path}: not the victim this generator was trained for (sha256 {ctx.victim_sha256[:12]}..., "
            f"the generator's {str(config.get('victim_source_sha256'))[:12]}...)"
        )
    if pipeline.pool_key(ctx, preset) != config.get("pool_key"):
        raise UsageError(
            "the data differ from the generator's (another --data, split or preset): its seed ledger "
            "would not name the same test images"
        )


def run(
    *,
    generator: str,
    victim: str,
    arch: str | None,
    data: str | None,
    device: str,
    key: str,
    out: str,
    cache: str | None = None,
    k: int | None = None,
    candidates: int | None = None,
    false_accusation: float | None = None,
    references: list[str] | None = None,
) -> dict:
    """Write a refreshed, signed bundle at ``out`` and record its seeds in the generator's ledger."""
    signing_key = load_private(key)
    loaded = gen.load(generator)
    config = loaded.config
    # One refresh at a time per generator: the ledger is read, drawn from and appended to under one
    # lock, so two refreshes can never draw or keep the same seeds.
    with gen.ledger_lock(loaded.files.ledger):
        ledger = gen.Ledger.read(loaded.files.ledger, loaded.weights_sha256)
        arch = arch or config.get("victim_arch")
        overrides = dict(config.get("preset_overrides") or {})
        overrides.update(
            {k_: v for k_, v in {"k": k, "false_accusation_rate": false_accusation}.items() if v is not None}
        )
        try:
            preset = presets.get(config["preset"], **overrides)
        except (KeyError, TypeError) as exc:
            raise UsageError(f"{loaded.files.config}: unusable preset record ({exc})") from None
        started = time.perf_counter()
        ctx = pipeline.load_context(
            victim,
            arch,
            config["normalization"],
            data,
            preset,
            device,
            Path(cache) if cache else None,
            int(config["seed"]),
        )
        _check_same_world(ctx, preset, config)
        # The reference models the generator's own bundle was calibrated with, unless others are given.
        refs = [Path(r) for r in (references or config.get("references") or [])]
        pools, run_dir, pool_seconds = pipeline.build_pools(ctx, preset, refs)
        n = candidates or default_candidates(config, preset.k)
        if n < 1:
            raise UsageError(f"--candidates {n}: must be at least 1")
        loaded.generator.to(ctx.device)
        f = fresh(ctx, pools, preset, loaded, ledger, n)
        provenance = pipeline.bundle_provenance(ctx, preset, pools, pool_seconds, f.result, tool="gfaudit refresh")
        provenance["data"]["source"] = str(data) if data else "torchvision CIFAR10 download"
        provenance["generator"] = loaded.provenance("reused")
        provenance["seed_draw"] = pipeline.seed_draw_json(ctx, f.draw.indices.tolist(), f.kept, f.draw)
        provenance["timings_s"]["refresh_generation"] = round(f.seconds, 2)
        provenance["timings_s"]["total"] = round(time.perf_counter() - started, 1)
        out_path = Path(out)
        created = pipeline.sign(ctx, run_dir, f.result, provenance, signing_key, out_path)
        ledger.record(created.path, file_sha256(created.path), f.draw.indices.tolist(), f.kept)
        log(
            f"wrote {created.path} ({created.kept} fresh pairs from {len(f.draw.indices)} new seeds, "
            f"threshold {f.result.calibration.threshold}) in {provenance['timings_s']['total']} s; "
            f"ledger {loaded.files.ledger} now lists {len(ledger.bundles)} bundle(s)"
        )
        return {
            "bundle": str(created.path),
            "figure": str(out_path.with_suffix(".png")),
            "victim_onnx": str(run_dir / "victim.onnx"),
            "generator": str(loaded.files.config),
            "threshold": f.result.calibration.threshold,
            "kept": created.kept,
            "seeds_drawn": len(f.draw.indices),
            "seeds_fresh": f.draw.fresh,
            **provenance["timings_s"],
        }
