"""ConferAE (Lukas, Zhang, Kerschbaum 2021): conferrable adversarial examples: a bounded targeted
attack on the victim that the positive (surrogate) models follow and the negative (reference) models
do not, by maximising the ensemble conferrability score.

Moved unchanged from the former trainer/baselines.py (same numerics, same pairs for the same seeds).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gfaudit_trainer.generation.methods.shared.ops import (
    batches as _batches,
    mean_prob as _mean_prob,
    pgd as _pgd,
    runner_up as _runner_up,
)
from gfaudit_trainer.generation.methods.shared.ranked import RankedMethod
from gfaudit_trainer.models.training import to_float

__all__ = ["ConferAE", "conferae"]


def conferae(victim, positives, negatives, seeds_u8, device, eps: float = 0.05, steps: int = 40) -> tuple:
    """Maximise conferrability: surrogates agree on target t, references do not (Lukas et al., eq. 3-5)."""
    outs, ranks = [], []
    for sl in _batches(len(seeds_u8)):
        x0 = to_float(seeds_u8[sl], device)
        t = _runner_up(victim, x0)

        def loss_fn(x, t=t):  # t bound now: _pgd calls this within the same iteration
            conf = (
                _mean_prob(positives, x, t) * (1 - _mean_prob(negatives, x, t))
                if negatives
                else _mean_prob(positives, x, t)
            )
            return (F.cross_entropy(victim(x), t, reduction="none") - torch.log(conf + 1e-8)).sum()

        xp = _pgd(loss_fn, x0, eps, steps, eps / 10)
        with torch.no_grad():
            ranks.append((_mean_prob(positives, xp, t) * (1 - _mean_prob(negatives, xp, t))).cpu())
        outs.append(xp)
    return torch.cat(outs), torch.cat(ranks)


class ConferAE(RankedMethod):
    name = "conferae"
    steps = 40

    def perturb(self, victim, positives, negatives, seeds_u8, device, steps):
        return conferae(victim, positives, negatives, seeds_u8, device, steps=steps)


METHOD = ConferAE()
