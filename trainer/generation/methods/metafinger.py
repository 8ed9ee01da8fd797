"""MetaFinger (Yang, Wang, Wang 2022): fingerprints meta-trained over model variants: the victim under
random weight noise and pruning (stand-ins for pirated variants) must give the target, the negative
pool must not; a larger bound and input augmentation make them robust.

Moved unchanged from the former trainer/baselines.py (same numerics, same pairs for the same seeds).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from gfaudit_trainer.generation.methods.shared.ops import (
    batches as _batches,
    mean_prob as _mean_prob,
    pgd as _pgd,
    runner_up as _runner_up,
)
from gfaudit_trainer.generation.methods.shared.ranked import RankedMethod
from gfaudit_trainer.models.training import to_float

__all__ = ["MetaFinger", "metafinger"]


def _variant(victim: nn.Module, g: torch.Generator, noise: float = 0.01, prune: float = 0.2) -> nn.Module:
    """A pirated-looking variant of the victim: multiplicative weight noise and magnitude pruning."""
    v = copy.deepcopy(victim)
    with torch.no_grad():
        for m in v.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = m.weight
                w.mul_(1 + noise * torch.randn(w.shape, generator=g).to(w.device))
                cut = w.abs().flatten().kthvalue(max(1, int(prune * w.numel()))).values
                w.mul_((w.abs() > cut).to(w.dtype))
    return v.eval()


def metafinger(
    victim, positives, negatives, seeds_u8, device, eps: float = 0.08, steps: int = 40, variants: int = 4
) -> tuple:
    """Meta-trained over victim variants (noise, pruning) and the negative pool, with input jitter."""
    g = torch.Generator().manual_seed(1234)
    metas = [_variant(victim, g) for _ in range(variants)]
    outs, ranks = [], []
    for sl in _batches(len(seeds_u8)):
        x0 = to_float(seeds_u8[sl], device)
        t = _runner_up(victim, x0)

        def loss_fn(x, t=t):  # t bound now: _pgd calls this within the same iteration
            x = x + 0.01 * torch.randn_like(x)  # input augmentation
            pos = sum(F.cross_entropy(m(x), t, reduction="none") for m in [victim, *metas]) / (len(metas) + 1)
            neg = torch.log(1 - _mean_prob(negatives, x, t) + 1e-8) if negatives else 0
            return (pos - neg).sum()

        xp = _pgd(loss_fn, x0, eps, steps, eps / 10)
        with torch.no_grad():
            ranks.append((_mean_prob(metas, xp, t) * (1 - (_mean_prob(negatives, xp, t) if negatives else 0))).cpu())
        outs.append(xp)
    return torch.cat(outs), torch.cat(ranks)


class MetaFinger(RankedMethod):
    name = "metafinger"
    steps = 40

    def perturb(self, victim, positives, negatives, seeds_u8, device, steps):
        return metafinger(victim, positives, negatives, seeds_u8, device, steps=steps)


METHOD = MetaFinger()
