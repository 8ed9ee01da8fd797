"""GanFinger: a conditional GAN maps each seed x to x', then the pools vote on which pairs to keep.

The generator trains against the victim and the pools' training models (trainer/generation/gan.py, losses in
trainer/generation/losses.py); selection keeps the pairs the positive validation models follow and the
negatives do not (trainer/generation/selection.py). Scored by ARD (``gfaudit.bundle.scoring.ard``).
"""

from __future__ import annotations

import time

import torch

from gfaudit_trainer.generation import gan, selection
from gfaudit_trainer.generation.methods.shared.base import Candidates, Method
from gfaudit_trainer.models.context import Context, runner_up_of, seed_images, seed_indices
from gfaudit_trainer.models.data import Split
from gfaudit_trainer.models.pools import Pools
from gfaudit_trainer.presets import Preset

__all__ = ["GanFinger", "RefreshedGanFinger", "gan_candidates"]


def gan_candidates(ctx: Context, pools: Pools, preset: Preset) -> tuple[Split, torch.Tensor, gan.GanResult]:
    """Train the GAN and apply it to the candidate seeds: (seeds, x' as uint8, the trained GAN)."""
    seeds = seed_images(ctx, preset)
    # The generator learns a mapping x -> x'; it may train on more of the defender's own data (D_v)
    # than the candidates it is finally applied to.
    train_x = ctx.d_v.images[: preset.gan.train_images] if preset.gan.train_images else seeds.images
    trained = gan.train(
        ctx.victim,
        [m.model for m in pools.get("positive", "train")],
        [m.model for m in pools.get("negative", "train")],
        train_x,
        runner_up_of(ctx, train_x),
        preset.gan,
        ctx.device,
        ctx.seed,
        num_classes=ctx.num_classes,
    )
    return seeds, gan.generate(trained.generator, seeds.images, runner_up_of(ctx, seeds.images), ctx.device), trained


class GanFinger(Method):
    name = "ganfinger"
    rule = "ard"  # P_conf - P_ori (paper eqs. 7-9; gfaudit.bundle.scoring.ard)

    def candidates(self, ctx: Context, pools: Pools, preset: Preset) -> Candidates:
        start = time.perf_counter()
        seeds, x_prime, trained = gan_candidates(ctx, pools, preset)
        return Candidates(
            seeds.images,
            x_prime,
            seeds.labels,
            time.perf_counter() - start,
            gan_seconds=trained.seconds,
            provenance={"gan_history": trained.history, "gan_direction_checks": trained.direction_checks()},
            private={"generator": trained.generator, "seed_indices": seed_indices(ctx, preset)},
        )

    def select(self, ctx: Context, pools: Pools, preset: Preset, cand: Candidates) -> selection.Selection:
        return selection.select(
            ctx.victim,
            pools,
            cand.x,
            cand.x_prime,
            cand.labels,
            preset.k,
            preset.pos_agree,
            ctx.device,
            preset.x_agreement,
            preset.neg_follow,
            preset.max_cosine,
            preset.target_cap,
            ctx.num_classes,
            preset.robust_checks,
            preset.robust_share,
        )


class RefreshedGanFinger(GanFinger):
    """GanFinger from a saved generator (``gfaudit refresh``): the candidates of the given test-split
    seeds cost one forward pass of G, no GAN training; selection is GanFinger's own."""

    def __init__(self, generator: gan.Generator, seed_idx: torch.Tensor, provenance: dict | None = None):
        self.generator = generator
        self.seed_idx = seed_idx
        self.record = dict(provenance or {})

    def candidates(self, ctx: Context, pools: Pools, preset: Preset) -> Candidates:
        start = time.perf_counter()
        seeds = ctx.test.subset(self.seed_idx)
        G = self.generator.to(ctx.device).eval()
        x_prime = gan.generate(G, seeds.images, runner_up_of(ctx, seeds.images), ctx.device)
        return Candidates(
            seeds.images,
            x_prime,
            seeds.labels,
            time.perf_counter() - start,
            provenance=self.record,
            private={"seed_indices": self.seed_idx},
        )


METHOD = GanFinger()
