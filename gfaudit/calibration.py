"""The null model behind a verdict: how high could an independent model score by chance?

An independent model "hits" a fingerprint pair when it does what a pirated copy does: under the
``ard`` rule it gives x' the victim's changed label, under ``label_match`` it matches the victim's
label of x'. The trainer scores calibration negatives (models that neither the GAN nor the
selection saw) on the selected pairs and signs ``q``, an upper confidence bound on any such
model's per-pair hit rate. Treating the K pairs as independent draws, an independent model's hit
count is at most Binomial(K, q); so

    threshold  = the smallest j/K with P[Binomial(K, q) >= j] <= alpha  (alpha: the false-accusation
                 rate aimed at), and
    p-value    = P[Binomial(K, q) >= ceil(score * K)]  for a suspect's score,

the probability that an independent model scores at least this high under that calibration.
ARD subtracts P_ori >= 0 from the hit rate, so for ``ard`` both are conservative. Pure Python: the
auditor needs no SciPy.
"""

from __future__ import annotations

import math

__all__ = ["binomial_tail", "clopper_pearson_upper", "threshold_for", "p_value", "hit_rate_bound"]


def binomial_tail(n: int, q: float, j: int) -> float:
    """P[Binomial(n, q) >= j], exact, summed in log space so large n stays finite."""
    if j <= 0:
        return 1.0
    if j > n:
        return 0.0
    q = min(max(q, 0.0), 1.0)
    if q == 0.0:
        return 0.0
    if q == 1.0:
        return 1.0
    lq, l1q = math.log(q), math.log1p(-q)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lq + (n - i) * l1q
        for i in range(j, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def clopper_pearson_upper(hits: int, n: int, delta: float) -> float:
    """The exact one-sided (1 - delta) upper confidence bound on a rate seen as ``hits`` of ``n``."""
    if n <= 0:
        return 1.0
    if hits >= n:
        return 1.0
    lo, hi = hits / n, 1.0
    for _ in range(60):  # bisection: P[Binomial(n, q) <= hits] falls as q rises
        mid = (lo + hi) / 2
        if 1.0 - binomial_tail(n, mid, hits + 1) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def hit_rate_bound(hits_per_model: list[int], n: int, delta: float = 0.05) -> float:
    """Upper bound on the hit rate of any independent model like the calibration ones: the largest
    per-model Clopper-Pearson bound, each at confidence 1 - delta/len(models) (Bonferroni), so that
    a model that hits more often than its peers sets the bound rather than being averaged away."""
    if not hits_per_model:
        raise ValueError("no calibration model")
    per_model = delta / len(hits_per_model)
    return max(clopper_pearson_upper(h, n, per_model) for h in hits_per_model)


def threshold_for(q: float, n: int, alpha: float) -> float:
    """The smallest score j/n that a Binomial(n, q) hit count reaches with probability <= alpha."""
    for j in range(0, n + 1):
        if binomial_tail(n, q, j) <= alpha:
            return j / n
    return 1.0 + 1.0 / max(n, 1)  # unreachable: no score is rare enough


def p_value(score: float, n: int, q: float) -> float:
    """P[an independent model scores >= ``score``] for ``n`` pairs and hit-rate bound ``q``."""
    j = math.ceil(score * n - 1e-9)
    return binomial_tail(n, q, j)
