"""GanFinger's losses, paper equations (1)-(6), in one place.

Logits in, scalars out. D outputs a logit; D(x) = sigmoid(logit).
  (1) L_D     = E log D(x) + E log(1 - D(x'))        (D maximises it; we minimise its negative)
  (2) L_GAN   = E log(1 - D(x'))                      (G minimises it)
  (3) L_ADV   = E margin_t(f_v(x'))                   (targeted, C&W-style margin toward t; SPEC)
  (4) L_hinge = E max(0, ||G(x)||_2 - c)
  (5) L_conf  = 1/M sum KL(f_v(x') || f_p(x')) - 1/N sum KL(f_v(x') || f_n(x'))
  (6) L       = eta L_ADV + alpha L_GAN + beta L_hinge + gamma L_conf
Not in the paper, weight 0 by default:
      L_div   = mean cosine(G(x_i), G(x_j)) over pairs i != j with the same target class
  (6') L      = (6) + lambda_div L_div
A conditional G can satisfy (3) with one pattern per target class: a near-universal perturbation,
exactly the kind that transfers to independently trained models. L_div asks for one perturbation
per input, as the paper's G(x) intends.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """-(1): -log sigmoid(d_real) - log(1 - sigmoid(d_fake))."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def gan_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """(2): log(1 - sigmoid(d_fake)) = -softplus(d_fake)."""
    return (-F.softplus(d_fake)).mean()


def adv_loss(victim_logits: torch.Tensor, target: torch.Tensor, kappa: float) -> torch.Tensor:
    """(3): max(max_{j != t} z_j - z_t, -kappa); reaches -kappa once t leads by kappa."""
    z_t = victim_logits.gather(1, target.view(-1, 1)).squeeze(1)
    others = victim_logits.masked_fill(F.one_hot(target, victim_logits.shape[1]).bool(), float("-inf"))
    return torch.clamp(others.max(1).values - z_t, min=-kappa).mean()


def hinge_loss(delta: torch.Tensor, c: float) -> torch.Tensor:
    """(4): soft bound on the per-image L2 norm of the perturbation."""
    return F.relu(delta.flatten(1).norm(dim=1) - c).mean()


def kl_per_sample(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(p) || softmax(q)) for each row."""
    logp, logq = F.log_softmax(p_logits, 1), F.log_softmax(q_logits, 1)
    return (logp.exp() * (logp - logq)).sum(1)


def kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(p) || softmax(q)), averaged over the batch."""
    return kl_per_sample(p_logits, q_logits).mean()


def conf_loss(
    victim_logits: torch.Tensor, positive: list[torch.Tensor], negative: list[torch.Tensor], cap: float | None = None
) -> torch.Tensor:
    """(5): close to the positive (pirate stand-in) models, far from the negative (unrelated) ones.

    The negative term is unbounded: with the paper's gamma = 10 the generator can lower the total
    loss without end by pushing negatives away while the victim never flips (SPEC: measured
    pitfalls). ``cap`` bounds each sample's negative KL (no reward beyond "far enough");
    ``cap=None`` is equation (5) exactly.
    """
    zero = victim_logits.new_zeros(())
    l_p = torch.stack([kl(victim_logits, z) for z in positive]).mean() if positive else zero
    if negative:
        per = torch.stack([kl_per_sample(victim_logits, z) for z in negative])
        l_n = (per.clamp(max=cap) if cap is not None else per).mean()
    else:
        l_n = zero
    return l_p - l_n


def diversity_loss(delta: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_div: mean cosine similarity of the perturbations of different inputs that share a target."""
    d = F.normalize(delta.flatten(1), dim=1)
    same = (target[:, None] == target[None, :]) & ~torch.eye(len(target), dtype=torch.bool, device=target.device)
    if not same.any():
        return delta.new_zeros(())
    return (d @ d.T)[same].mean()


@dataclass(frozen=True)
class Weights:
    eta: float = 1.0
    alpha: float = 5.0
    beta: float = 5.0
    gamma: float = 10.0
    diversity: float = 0.0


def generator_loss(terms: dict[str, torch.Tensor], w: Weights) -> torch.Tensor:
    """(6) or (6'): the weighted sum; a weight of 0 removes its term (the paper's ablation)."""
    total = w.eta * terms["adv"] + w.alpha * terms["gan"] + w.beta * terms["hinge"] + w.gamma * terms["conf"]
    if w.diversity and "div" in terms:
        total = total + w.diversity * terms["div"]
    return total
