"""Baseline fingerprints, written from their papers and stored in the same bundle format (v1).

Each method maps seed images x to x' and is scored by the label matching rate on x' (manifest rule
``label_match``). All use the same victim, the same pools and the same seeds as GanFinger.

- IPGuard (Cao, Jia, Gong 2021): points near the victim's decision boundary, optimised without a
  norm bound so that the victim's top two classes are i and j with j ahead by a small margin k.
- ConferAE (Lukas, Zhang, Kerschbaum 2021): conferrable adversarial examples: a bounded targeted
  attack on the victim that the positive (surrogate) models follow and the negative (reference)
  models do not, by maximising the ensemble conferrability score.
- MetaFinger (Yang, Wang, Wang 2022): fingerprints meta-trained over model variants: the victim
  under random weight noise and pruning (stand-ins for pirated variants) must give the target,
  the negative pool must not; a larger bound and input augmentation make them robust.
- DeepFool fingerprint (Wang, Chang 2021): minimal DeepFool perturbations that just cross the
  victim's nearest decision boundary (overshoot 0.02).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .gan import to_uint8
from .training import to_float


@dataclass(frozen=True)
class Generated:
    x_prime: torch.Tensor  # uint8
    rank: torch.Tensor  # higher = better candidate (method's own score)
    seconds: float


def _batches(n: int, size: int = 100):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def _runner_up(model, x):
    with torch.no_grad():
        return model(x).topk(2, 1).indices[:, 1]


def ipguard(victim, positives, negatives, seeds_u8, device, steps: int = 100, k: float = 1.0, lr: float = 0.01) -> torch.Tensor:
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


def _pgd(loss_fn, x0, eps, steps, step_size):
    delta = torch.zeros_like(x0, requires_grad=True)
    for _ in range(steps):
        loss = loss_fn(torch.clamp(x0 + delta, 0, 1))
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta -= step_size * grad.sign()
            delta.clamp_(-eps, eps)
    return torch.clamp(x0 + delta.detach(), 0, 1)


def _mean_prob(models, x, t):
    return torch.stack([m(x).softmax(1).gather(1, t[:, None])[:, 0] for m in models]).mean(0)


def conferae(victim, positives, negatives, seeds_u8, device, eps: float = 0.05, steps: int = 40) -> tuple:
    """Maximise conferrability: surrogates agree on target t, references do not (Lukas et al., eq. 3-5)."""
    outs, ranks = [], []
    for sl in _batches(len(seeds_u8)):
        x0 = to_float(seeds_u8[sl], device)
        t = _runner_up(victim, x0)

        def loss_fn(x):
            conf = _mean_prob(positives, x, t) * (1 - _mean_prob(negatives, x, t)) if negatives else _mean_prob(positives, x, t)
            return (F.cross_entropy(victim(x), t, reduction="none") - torch.log(conf + 1e-8)).sum()

        xp = _pgd(loss_fn, x0, eps, steps, eps / 10)
        with torch.no_grad():
            ranks.append((_mean_prob(positives, xp, t) * (1 - _mean_prob(negatives, xp, t))).cpu())
        outs.append(xp)
    return torch.cat(outs), torch.cat(ranks)


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


def metafinger(victim, positives, negatives, seeds_u8, device, eps: float = 0.08, steps: int = 40, variants: int = 4) -> tuple:
    """Meta-trained over victim variants (noise, pruning) and the negative pool, with input jitter."""
    g = torch.Generator().manual_seed(1234)
    metas = [_variant(victim, g) for _ in range(variants)]
    outs, ranks = [], []
    for sl in _batches(len(seeds_u8)):
        x0 = to_float(seeds_u8[sl], device)
        t = _runner_up(victim, x0)

        def loss_fn(x):
            x = x + 0.01 * torch.randn_like(x)  # input augmentation
            pos = sum(F.cross_entropy(m(x), t, reduction="none") for m in [victim, *metas]) / (len(metas) + 1)
            neg = torch.log(1 - _mean_prob(negatives, x, t) + 1e-8) if negatives else 0
            return (pos - neg).sum()

        xp = _pgd(loss_fn, x0, eps, steps, eps / 10)
        with torch.no_grad():
            ranks.append((_mean_prob(metas, xp, t) * (1 - (_mean_prob(negatives, xp, t) if negatives else 0))).cpu())
        outs.append(xp)
    return torch.cat(outs), torch.cat(ranks)


def deepfool(victim, positives, negatives, seeds_u8, device, steps: int = 30, overshoot: float = 0.02,
             candidates: int = 4) -> tuple:
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
            grads = [torch.autograd.grad(zc[:, c].sum(), x, retain_graph=c < candidates - 1)[0] for c in range(candidates)]
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


BASELINES: dict[str, Callable] = {"ipguard": ipguard, "conferae": conferae, "metafinger": metafinger, "deepfool": deepfool}
STEPS = {"ipguard": 100, "conferae": 40, "metafinger": 40, "deepfool": 30}  # each method's default iterations


def generate(method: str, victim, positives, negatives, seeds_u8: torch.Tensor, device, effort: float = 1.0) -> Generated:
    """Run one baseline on the seeds; the time covers generation only, not pool building.
    ``effort`` scales the iteration count (the tiny preset uses a fraction, for tests)."""
    start = time.perf_counter()
    for m in [victim, *positives, *negatives]:
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
    steps = max(2, int(STEPS[method] * effort))
    xp, rank = BASELINES[method](victim, positives, negatives, seeds_u8, device, steps=steps)
    return Generated(to_uint8(xp).cpu(), rank.cpu(), time.perf_counter() - start)


def fingerprint(ctx, pools, preset, method: str):
    """Generate and select K pairs of one baseline: (selection, provenance part); the caller calibrates."""
    from . import pipeline, selection

    seeds = pipeline.seed_images(ctx, preset)
    seeds = seeds.subset(torch.arange(min(len(seeds), preset.baseline_seeds)))
    gen = generate(method, ctx.victim, [m.model for m in pools.get("positive", "train")],
                   [m.model for m in pools.get("negative", "train")], seeds.images, ctx.device,
                   effort=preset.baseline_effort)
    t = time.perf_counter()
    sel = selection.select_ranked(ctx.victim, seeds.images, gen.x_prime, seeds.labels, gen.rank, preset.k, ctx.device)
    seconds = gen.seconds + time.perf_counter() - t
    return sel, {"timings_s": {"fingerprint_generation": round(seconds, 1)}}
