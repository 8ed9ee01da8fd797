"""DeepFool fingerprint (Wang, Chang 2021): minimal DeepFool perturbations that just cross the victim's
nearest decision boundary (overshoot 0.02).

Moved unchanged from the former trainer/baselines.py (same numerics, same pairs for the same seeds).
"""

from __future__ import annotations

import torch

from gfaudit_trainer.generation.methods.shared.ops import batches as _batches
from gfaudit_trainer.generation.methods.shared.ranked import RankedMethod
from gfaudit_trainer.models.training import to_float

__all__ = ["DeepFool", "deepfool"]


def deepfool(
    victim, positives, negatives, seeds_u8, device, steps: int = 30, overshoot: float = 0.02, candidates: int = 4
) -> tuple:
    """DeepFool (Moosavi-Dezfooli et al. 2016) over the top ``candidates`` classes, stopped per image as
    soon as the 8-bit image changes label."""
    outs = []
    for sl in _batches(len(seeds_u8), 100):
        x0 = to_float(seeds_u8[sl], device)
        with torch.no_grad():
            top = victim(x0).topk(candidates, 1).indices
        label = top[:, 0]
        r_total = torch.zeros_like(x0)
        active = torch.ones(len(x0), dtype=torch.bool, device=x0.device)
        for _ in range(steps):
            # Iterate on the 8-bit image the suspect will see, so the label change survives rounding.
            x = (torch.round((x0 + (1 + overshoot) * r_total).clamp(0, 1) * 255) / 255).requires_grad_(True)
            z = victim(x)
            active &= z.argmax(1) == label
            if not active.any():
                break
            zc = z.gather(1, top)  # [B, candidates]; column 0 is the original label
            grads = [
                torch.autograd.grad(zc[:, c].sum(), x, retain_graph=c < candidates - 1)[0] for c in range(candidates)
            ]
            best = torch.full((len(x0),), float("inf"), device=x0.device)
            step = torch.zeros_like(x0)
            for c in range(1, candidates):
                w = grads[c] - grads[0]
                f = (zc[:, c] - zc[:, 0]).detach()
                norm = w.flatten(1).norm(dim=1) + 1e-8
                dist = f.abs() / norm
                better = dist < best
                best = torch.where(better, dist, best)
                step = torch.where(better[:, None, None, None], ((dist + 1e-4) / norm)[:, None, None, None] * w, step)
            r_total = r_total + step * active[:, None, None, None]
        outs.append((x0 + (1 + overshoot) * r_total).clamp(0, 1).detach())
    xp = torch.cat(outs)
    return xp, -(xp - to_float(seeds_u8, device)).flatten(1).norm(dim=1).cpu()


class DeepFool(RankedMethod):
    name = "deepfool"
    steps = 30

    def perturb(self, victim, positives, negatives, seeds_u8, device, steps):
        return deepfool(victim, positives, negatives, seeds_u8, device, steps=steps)


METHOD = DeepFool()
