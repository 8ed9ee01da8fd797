"""Perturbation statistics of fingerprint pairs (x, x'), measured on the stored uint8 pixels in [0, 1] scale."""

from __future__ import annotations

import numpy as np

__all__ = ["diversity", "matches", "statistics"]


def statistics(x: np.ndarray, x_prime: np.ndarray) -> dict[str, float | None]:
    """L-inf, L2 (per image) and PSNR of x' - x; the same function writes and re-checks the manifest."""
    d = (x_prime.astype(np.float64) - x.astype(np.float64)) / 255.0
    flat = d.reshape(d.shape[0], -1)
    linf = np.abs(flat).max(axis=1)
    l2 = np.sqrt((flat**2).sum(axis=1))
    mse = (flat**2).mean(axis=1)
    psnr = np.where(mse > 0, 10.0 * np.log10(1.0 / np.maximum(mse, 1e-30)), np.inf)
    finite = psnr[np.isfinite(psnr)]
    return {
        "linf_max": round(float(linf.max()), 6),
        "linf_mean": round(float(linf.mean()), 6),
        "l2_max": round(float(l2.max()), 6),
        "l2_mean": round(float(l2.mean()), 6),
        "psnr_min_db": round(float(finite.min()), 4) if finite.size else None,
        "psnr_mean_db": round(float(finite.mean()), 4) if finite.size else None,
    }


def diversity(x: np.ndarray, x_prime: np.ndarray, targets: np.ndarray) -> dict:
    """How input-specific the perturbations are: the mean cosine of x' - x between pairs with the same
    target class and with different ones (near-universal perturbations score high within a class),
    how many pairs each target class holds, and the largest class's share."""
    d = (x_prime.astype(np.float64) - x.astype(np.float64)).reshape(len(x), -1)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    cos = d @ d.T
    t = np.asarray(targets)
    same = (t[:, None] == t[None, :]) & ~np.eye(len(t), dtype=bool)
    other = t[:, None] != t[None, :]
    counts = {int(c): int((t == c).sum()) for c in np.unique(t)}
    return {
        "cosine_same_target": round(float(cos[same].mean()), 4) if same.any() else None,
        "cosine_other_target": round(float(cos[other].mean()), 4) if other.any() else None,
        "pairs_per_target": counts,
        "largest_target_share": round(max(counts.values()) / len(t), 4) if len(t) else None,
    }


def matches(measured: dict, claimed: dict, tol: float = 1e-4) -> list[str]:
    """Names of the statistics where the claim and the measurement differ."""
    bad = []
    for name, value in measured.items():
        other = claimed.get(name)
        if value is None or other is None:
            if value != other:
                bad.append(name)
        elif not isinstance(other, (int, float)) or abs(float(other) - value) > tol * max(1.0, abs(value)):
            bad.append(name)
    return bad
