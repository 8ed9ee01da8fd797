"""The GanFinger generator and discriminator, and the alternating training loop.

The generator maps x in [0,1] to a bounded perturbation delta = eps * tanh(raw), x' = clip(x + delta).
The models see x' through straight-through 8-bit rounding, because a suspect behind a real API
sees 8-bit images and the bundle stores uint8 pixels.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from gfaudit_trainer.generation import losses
from gfaudit_trainer.models import input_filters
from gfaudit_trainer.models.training import to_float
from gfaudit_trainer.presets import GanConfig
from gfaudit_trainer.progress import bar, log


def _norm(c: int) -> nn.Module:
    return nn.InstanceNorm2d(c, affine=True)


class _Res(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1), _norm(c), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, 1, 1), _norm(c)
        )

    def forward(self, x):
        return x + self.body(x)


class Generator(nn.Module):
    """G(x, t): the target class t enters as one-hot planes beside the image (a conditional
    generator; the paper writes G(x) and leaves open how a targeted G learns its target)."""

    def __init__(self, eps: float, width: int = 32, num_classes: int = 10):
        super().__init__()
        c = width
        self.eps = eps
        self.width = width
        self.num_classes = num_classes
        self.net = nn.Sequential(
            nn.Conv2d(3 + num_classes, c, 3, 1, 1),
            _norm(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, 2 * c, 3, 2, 1),
            _norm(2 * c),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * c, 4 * c, 3, 2, 1),
            _norm(4 * c),
            nn.ReLU(inplace=True),
            _Res(4 * c),
            _Res(4 * c),
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1),
            _norm(2 * c),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1),
            _norm(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, 3, 3, 1, 1),
        )

    def delta(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        planes = F.one_hot(t, self.num_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.eps * torch.tanh(self.net(torch.cat([x, planes], 1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + self.delta(x, t), 0.0, 1.0)


class Discriminator(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        c = width
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 2 * c, 4, 2, 1),
            nn.BatchNorm2d(2 * c),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1),
            nn.BatchNorm2d(4 * c),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(4 * c * 16, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(1)


def quantize_ste(x: torch.Tensor) -> torch.Tensor:
    """8-bit rounding in the forward pass, identity in the backward pass."""
    return x + (torch.round(x * 255.0) / 255.0 - x).detach()


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255.0).to(torch.uint8)


@dataclass
class GanResult:
    generator: Generator
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def direction_checks(self) -> dict[str, bool]:
        """Did each term move the way the paper intends, first epoch to last? (SPEC: measured pitfalls)
        L_ADV must fall (the victim is fooled), the target hit rate must rise, L_hinge must stay near 0."""
        if len(self.history) < 2:
            return {}
        first, last = self.history[0], self.history[-1]
        return {
            "adv_decreased": last["adv"] < first["adv"],
            "target_hits_rose": last["flip"] > first["flip"],
            "conf_decreased": last["conf"] <= first["conf"],
            "hinge_bounded": last["hinge"] < 0.5,
        }


def _frozen(models):
    for m in models:
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
    return models


def train(
    victim: nn.Module,
    positives: list[nn.Module],
    negatives: list[nn.Module],
    seeds_u8: torch.Tensor,
    targets: torch.Tensor,
    cfg: GanConfig,
    device: torch.device,
    seed: int = 0,
    num_classes: int | None = None,
) -> GanResult:
    """Alternate D and G steps over the seed images; log every loss term per epoch."""
    torch.manual_seed(seed)
    _frozen([victim, *positives, *negatives])
    G = Generator(cfg.eps, cfg.width, int(targets.max()) + 1 if num_classes is None else num_classes).to(device)
    D = Discriminator(cfg.width).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
    weights = losses.Weights(cfg.eta, cfg.alpha, cfg.beta, cfg.gamma, cfg.diversity)
    g = torch.Generator().manual_seed(seed)
    filter_rng = random.Random(seed)  # which input filter each batch's victim and pool terms see
    n = len(seeds_u8)
    steps = max(1, (n + cfg.batch_size - 1) // cfg.batch_size)
    result = GanResult(G)
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=g)
        sums = {k: 0.0 for k in ("d", "adv", "gan", "hinge", "conf", "div", "total", "flip", "l2")}
        G.train()
        D.train()
        with bar(f"GAN epoch {epoch + 1}/{cfg.epochs}", steps) as advance:
            for i in range(steps):
                idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
                x = to_float(seeds_u8[idx], device)
                t = targets[idx].to(device)
                delta = G.delta(x, t)
                xp = torch.clamp(x + delta, 0, 1)
                d_loss = losses.discriminator_loss(D(x), D(xp.detach()))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()

                xq = quantize_ste(xp)
                if cfg.filters:  # train through what a pirate puts in front of a stolen model
                    xq = input_filters.draw(cfg.filters, filter_rng).to(device)(xq)
                z_v = victim(xq)
                terms = {
                    "adv": losses.adv_loss(z_v, t, cfg.kappa),
                    "gan": losses.gan_loss(D(xp)),
                    "hinge": losses.hinge_loss(xp - x, cfg.c),
                    "conf": losses.conf_loss(
                        z_v.detach() if cfg.conf_detach_victim else z_v,
                        [m(xq) for m in positives],
                        [m(xq) for m in negatives],
                        cfg.conf_cap,
                    ),
                    "div": losses.diversity_loss(delta, t),
                }
                total = losses.generator_loss(terms, weights)
                opt_g.zero_grad(set_to_none=True)
                total.backward()
                opt_g.step()
                b = len(idx)
                for name, v in terms.items():
                    sums[name] += v.item() * b
                sums["d"] += d_loss.item() * b
                sums["total"] += total.item() * b
                sums["flip"] += (z_v.argmax(1) == t).sum().item()
                sums["l2"] += (xp - x).detach().flatten(1).norm(dim=1).sum().item()
                advance()
        row = {"epoch": epoch + 1, **{k: round(v / n, 5) for k, v in sums.items()}}
        result.history.append(row)
        log(
            "GAN epoch {epoch}/{total}: total {total_v:.3f} adv {adv:.3f} gan {gan:.3f} hinge {hinge:.3f} "
            "conf {conf:.3f} div {div:.3f} | D {d:.3f} | victim hits target {flip:.0%}, mean L2 {l2:.3f}".format(
                epoch=epoch + 1, total=cfg.epochs, total_v=row["total"], **{k: row[k] for k in sums if k != "total"}
            )
        )
    G.eval()
    result.seconds = time.perf_counter() - start
    failed = [name for name, ok in result.direction_checks().items() if not ok]
    if failed:
        log(
            f"warning: GAN loss terms did not move as intended: {', '.join(failed)}; "
            "check the per-epoch log before trusting an ARUC"
        )
    return result


@torch.no_grad()
def generate(
    G: Generator, images_u8: torch.Tensor, targets: torch.Tensor, device, batch_size: int = 500
) -> torch.Tensor:
    """x' as uint8 for uint8 x and target classes t."""
    out = []
    for i in range(0, len(images_u8), batch_size):
        x = to_float(images_u8[i : i + batch_size], device)
        out.append(to_uint8(G(x, targets[i : i + batch_size].to(device))).cpu())
    return torch.cat(out)
