"""Helpers the baseline methods share: batching, the victim's runner-up class, sign-PGD, mean probabilities.

Moved unchanged from the former trainer/baselines.py, so that the same seeds give the same pairs.
"""

from __future__ import annotations

import torch

__all__ = ["batches", "mean_prob", "pgd", "runner_up"]


def batches(n: int, size: int = 100):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def runner_up(model, x):
    with torch.no_grad():
        return model(x).topk(2, 1).indices[:, 1]


def pgd(loss_fn, x0, eps, steps, step_size):
    delta = torch.zeros_like(x0, requires_grad=True)
    for _ in range(steps):
        loss = loss_fn(torch.clamp(x0 + delta, 0, 1))
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta -= step_size * grad.sign()
            delta.clamp_(-eps, eps)
    return torch.clamp(x0 + delta.detach(), 0, 1)


def mean_prob(models, x, t):
    return torch.stack([m(x).softmax(1).gather(1, t[:, None])[:, 0] for m in models]).mean(0)
