"""Copies of the victim a pirate makes in minutes: fine-tuned, adversarially fine-tuned, pruned, or
deployed behind an input filter. One implementation, used twice with different data, seeds and
strengths: as weight-derived positives of the pools (on the owner's D_v + D_p, so the GAN and the
selection learn pairs that survive them) and as the suspect library's attacks (on D_a, the quarter
no pool model saw, at the library's own strengths: docs/attacks.md).

A derivation is named by a spec ``KIND[:ARG]``:

``ftal``            all layers fine-tuned on true labels (SGD, cosine lr)
``fgsm``            adversarial fine-tuning: half of each batch replaced by FGSM inputs
``prune:R``         global magnitude pruning of a share R of the conv and linear weights
``filter:SPEC``     the unchanged victim behind an input filter (trainer/models/input_filters.py)

Each returns a bare classifier (normalised input -> logits), like the victim's ``bare``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gfaudit_trainer.models import input_filters, zoo
from gfaudit_trainer.models.training import FitConfig, fit

__all__ = ["DERIVATIONS", "Derivation", "derive", "fgsm_perturb", "finetune", "parse", "prune"]


def fgsm_perturb(fgsm_bound: float) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """FGSM on the current model inside training: half of each batch clean, half at L-inf ``fgsm_bound``."""

    def perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        model.eval()
        x = x.clone().requires_grad_(True)
        loss = (
            F.cross_entropy(model(x), y)
            if y.dtype == torch.long
            else F.kl_div(F.log_softmax(model(x), 1), y, reduction="batchmean")
        )
        (grad,) = torch.autograd.grad(loss, x)
        adv = (x + fgsm_bound * grad.sign()).clamp(0, 1).detach()
        half = len(x) // 2  # the usual mix that keeps clean accuracy
        return torch.cat([x.detach()[:half], adv[half:]])

    return perturb


def last_layer(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no final nn.Linear to fine-tune")
    return linears[-1]


def finetune(
    bare: nn.Module,
    mean,
    std,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: FitConfig,
    device,
    *,
    last_only: bool = False,
    reinit: bool = False,
    fgsm_bound: float | None = None,
    desc: str = "fine-tune",
) -> nn.Module:
    """``bare`` fine-tuned on (images, labels): all layers or the last; the last re-initialised if
    asked; with ``fgsm_bound``, adversarially (FGSM on half of each batch)."""
    torch.manual_seed(cfg.seed)
    model = zoo.Normalized(copy.deepcopy(bare), mean, std)
    head = last_layer(model)
    if reinit:
        head.reset_parameters()
    fit(
        model,
        images,
        labels,
        cfg,
        device,
        params=list(head.parameters()) if last_only else None,
        perturb=None if fgsm_bound is None else fgsm_perturb(fgsm_bound),
        desc=desc,
    )
    return model.model.eval()


def prune(bare: nn.Module, ratio: float) -> nn.Module:
    """Global magnitude pruning: the ``ratio`` smallest |w| of all conv and linear weights set to 0."""
    model = copy.deepcopy(bare)
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    k = int(ratio * flat.numel())
    if k == 0:
        return model.eval()
    cut = flat.kthvalue(k).values
    with torch.no_grad():
        for w in weights:
            w.mul_((w.abs() > cut).to(w.dtype))
    return model.eval()


@dataclass(frozen=True)
class Derivation:
    """A parsed derivation spec: its kind, its argument, and whether it trains (or only edits)."""

    kind: str
    arg: str

    @property
    def trains(self) -> bool:
        return self.kind in ("ftal", "fgsm")

    def describe(self) -> str:
        return DERIVATIONS[self.kind].format(arg=self.arg)


DERIVATIONS: dict[str, str] = {
    "ftal": "the victim, all layers fine-tuned on true labels",
    "fgsm": "the victim, adversarially fine-tuned (FGSM on half of each batch)",
    "prune": "the victim, {arg} of its weights pruned by magnitude",
    "filter": "the victim behind the input filter {arg}",
}


def parse(spec: str) -> Derivation:
    """``"prune:0.7"`` -> Derivation("prune", "0.7"). ValueError naming the kinds, or a bad argument."""
    kind, _, arg = spec.partition(":")
    if kind not in DERIVATIONS:
        raise ValueError(f"unknown derivation {kind!r}; choose one of {', '.join(DERIVATIONS)}")
    if kind == "prune" and not (arg and 0.0 < float(arg) < 1.0):
        raise ValueError(f"{spec}: prune needs a share in (0, 1), e.g. prune:0.7")
    if kind == "filter":
        input_filters.parse(arg)
    if kind in ("ftal", "fgsm") and arg:
        raise ValueError(f"{spec}: {kind} takes no argument")
    return Derivation(kind, arg)


def derive(
    spec: str,
    bare: nn.Module,
    mean,
    std,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    cfg: FitConfig | None = None,
    device="cpu",
    fgsm_bound: float = 4 / 255,
    desc: str = "derive",
) -> nn.Module:
    """The copy of ``bare`` that ``spec`` names, trained (where it trains) on (images, labels) with ``cfg``."""
    d = parse(spec)
    if d.trains:
        if images is None or labels is None or cfg is None:
            raise ValueError(f"{spec} trains: it needs images, labels and a FitConfig")
        bound = fgsm_bound if d.kind == "fgsm" else None
        return finetune(bare, mean, std, images, labels, cfg, device, fgsm_bound=bound, desc=desc)
    if d.kind == "prune":
        return prune(bare, float(d.arg))
    return input_filters.Filtered(copy.deepcopy(bare), input_filters.make(d.arg), mean, std).eval()
