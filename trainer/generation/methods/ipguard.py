"""IPGuard (Cao, Jia, Gong 2021): points near the victim's decision boundary, optimised without a norm
bound so that the victim's top two classes are i and j with j ahead by a small margin k.

Moved unchanged from the former trainer/baselines.py (same numerics, same pairs for the same seeds).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gfaudit_trainer.generation.methods.shared.ops import batches as _batches
from gfaudit_trainer.generation.methods.shared.ranked import RankedMethod
from gfaudit_trainer.models.training import to_float

__all__ = ["IPGuard", "ipguard"]


def ipguard(
    victim, positives, negatives, seeds_u8, device, steps: int = 100, k: float = 1.0, lr: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor]:
    """x' whose victim label is j (the runner-up class) with class i second: near the i/j boundary."""
    outs, ranks = [], []
    for sl in _batches(len(seeds_u8)):
        x0 = to_float(seeds_u8[sl], device)
        with torch.no_grad():
            top = victim(x0).topk(2, 1).indices
        i, j = top[:, 0], top[:, 1]
        x = x0.clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr)
        for _ in range(steps):
            z = victim(x.clamp(0, 1))
            zi, zj = z.gather(1, i[:, None])[:, 0], z.gather(1, j[:, None])[:, 0]
            others = z.scatter(1, torch.stack([i, j], 1), float("-inf")).max(1).values
            loss = (F.relu(zi - zj + k) + F.relu(others - zi)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        outs.append(x.detach().clamp(0, 1))
        ranks.append(torch.rand(len(x0)))
    return torch.cat(outs), torch.cat(ranks)


class IPGuard(RankedMethod):
    name = "ipguard"
    steps = 100

    def perturb(self, victim, positives, negatives, seeds_u8, device, steps):
        return ipguard(victim, positives, negatives, seeds_u8, device, steps=steps)


METHOD = IPGuard()
