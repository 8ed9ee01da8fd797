"""The baselines' common shape: optimise each seed to an x' with the method's own score, keep the best K.

Every baseline runs on the first ``preset.baseline_seeds`` of the seed images, against the victim and
the pools' training models, for its own number of iterations scaled by ``preset.baseline_effort``;
selection keeps pairs the victim gets right on x and labels differently on x', best score first
(``selection.select_ranked``). All are scored by the label matching rate (``Method.rule``).
"""

from __future__ import annotations

import time
from abc import abstractmethod

import torch

from gfaudit_trainer.generation import selection
from gfaudit_trainer.generation.gan import to_uint8
from gfaudit_trainer.generation.methods.shared.base import Candidates, Method
from gfaudit_trainer.models.context import Context, seed_images
from gfaudit_trainer.models.pools import Pools
from gfaudit_trainer.presets import Preset

__all__ = ["RankedMethod"]


class RankedMethod(Method):
    """A baseline: ``perturb`` maps seeds to x' (floats in [0, 1]) and a rank, higher is better."""

    steps: int  # the method's default iterations (its paper's), scaled by preset.baseline_effort

    @abstractmethod
    def perturb(
        self, victim, positives, negatives, seeds_u8: torch.Tensor, device, steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x' as floats in [0, 1], rank) for the seeds."""

    def generate(
        self, victim, positives, negatives, seeds_u8: torch.Tensor, device, effort: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Run the method on the seeds: (x' as uint8 on the CPU, rank, seconds). The time covers
        generation only, not pool building; ``effort`` scales the iteration count (the tiny preset
        uses a fraction, for tests)."""
        start = time.perf_counter()
        for m in [victim, *positives, *negatives]:
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
        steps = max(2, int(self.steps * effort))
        xp, rank = self.perturb(victim, positives, negatives, seeds_u8, device, steps=steps)
        return to_uint8(xp).cpu(), rank.cpu(), time.perf_counter() - start

    def candidates(self, ctx: Context, pools: Pools, preset: Preset) -> Candidates:
        seeds = seed_images(ctx, preset)
        seeds = seeds.subset(torch.arange(min(len(seeds), preset.baseline_seeds)))
        x_prime, rank, seconds = self.generate(
            ctx.victim,
            [m.model for m in pools.get("positive", "train")],
            [m.model for m in pools.get("negative", "train")],
            seeds.images,
            ctx.device,
            effort=preset.baseline_effort,
        )
        return Candidates(seeds.images, x_prime, seeds.labels, seconds, rank=rank)

    def select(self, ctx: Context, pools: Pools, preset: Preset, cand: Candidates) -> selection.Selection:
        assert cand.rank is not None, "a ranked method ranks its own candidates"
        return selection.select_ranked(ctx.victim, cand.x, cand.x_prime, cand.labels, cand.rank, preset.k, ctx.device)
