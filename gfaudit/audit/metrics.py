"""Separation metrics over scored models: ARUC (SPEC definition), ROC-AUC, TPR at fixed FPR.

ARUC: for thresholds tau on a grid over [0, 1], robustness R(tau) = share of pirated models with
score >= tau, uniqueness U(tau) = share of unrelated models with score < tau; ARUC is the area
under min(R, U) (trapezoid rule on 1001 points).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GRID", "aruc", "best_threshold", "curves", "roc_auc", "tpr_at_fpr"]

GRID = np.linspace(0.0, 1.0, 1001)


def curves(pirated, unrelated, grid=GRID) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p, u = np.asarray(pirated, float), np.asarray(unrelated, float)
    if p.size == 0 or u.size == 0:
        raise ValueError("ARUC needs at least one pirated and one unrelated model")
    robustness = (p[None, :] >= grid[:, None]).mean(1)
    uniqueness = (u[None, :] < grid[:, None]).mean(1)
    return grid, robustness, uniqueness


def aruc(pirated, unrelated, grid=GRID) -> float:
    g, r, u = curves(pirated, unrelated, grid)
    y = np.minimum(r, u)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(g)) / 2)


def best_threshold(pirated, unrelated, grid=GRID) -> tuple[float, float]:
    """(tau, min(R, U)) at the grid point that maximises min(R, U); the highest such tau on ties."""
    g, r, u = curves(pirated, unrelated, grid)
    y = np.minimum(r, u)
    i = int(np.flatnonzero(y == y.max())[-1])
    return float(g[i]), float(y[i])


def roc_auc(pirated, unrelated) -> float:
    """P(score of a pirated model > score of an unrelated one), ties counting one half."""
    p, u = np.asarray(pirated, float), np.asarray(unrelated, float)
    if p.size == 0 or u.size == 0:
        raise ValueError("ROC-AUC needs at least one pirated and one unrelated model")
    greater = (p[:, None] > u[None, :]).mean()
    ties = (p[:, None] == u[None, :]).mean()
    return float(greater + 0.5 * ties)


def tpr_at_fpr(pirated, unrelated, max_fpr: float) -> float:
    """The highest share of pirated models flagged by a threshold that flags at most max_fpr of unrelated ones."""
    p, u = np.asarray(pirated, float), np.asarray(unrelated, float)
    candidates = np.concatenate([p, u, [np.inf]])
    best = 0.0
    for t in candidates:
        if (u >= t).mean() <= max_fpr + 1e-12:
            best = max(best, float((p >= t).mean()))
    return best
