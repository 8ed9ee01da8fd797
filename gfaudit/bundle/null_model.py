"""The null model behind a verdict: how high could an independent model score by chance?

An independent model "hits" a fingerprint pair when it does what a pirated copy does: under the
``ard`` rule it gives x' the victim's changed label, under ``label_match`` it matches the victim's
label of x'. The trainer scores calibration negatives (models that neither the GAN nor the
selection saw, and reference models) on the selected pairs and signs their hit counts.

Two null models, both signed in ``scoring.null_model`` (docs/bundle-format.md):

``beta-binomial-predictive`` (bundles signed from this round on). The unit of evidence is the
model, not the pair: transfer is correlated across pairs, so hit counts spread from one
independent model to the next far more than a binomial allows. The calibration models' hit counts
are fitted with a beta-binomial whose parameters carry their own uncertainty (see the block
comment above :func:`beta_binomial_predictive`); with the predictive pmf p(j) of a new independent
model's hits,

    threshold  = the smallest j/K with P[H_new >= j] <= false_accusation_rate (the rate aimed at),
    p-value    = P[H_new >= ceil(score * K)] for a suspect's score.

n calibration models can show, without a model, no p-value below 1/(n + 1)
(:func:`supported_p_value`); smaller ones are the fit's extrapolation and every report marks them.

``binomial-upper-bound`` (older bundles): the K pairs taken as independent draws at a
Clopper-Pearson bound ``q`` on the calibration models' hit rate; threshold and p-value are the
Binomial(K, q) tail. It overstates certainty (p-values such as 4e-31) and is kept only to read the
bundles signed with it.

ARD subtracts P_ori >= 0 from the hit rate, so for ``ard`` both are conservative. numpy and the
standard library only: the auditor needs no SciPy.
"""

from __future__ import annotations

import math

__all__ = [
    "beta_binomial_logpmf",
    "beta_binomial_predictive",
    "binomial_tail",
    "clopper_pearson_upper",
    "hit_rate_bound",
    "leave_one_out",
    "p_value",
    "predictive_tail",
    "predictive_threshold",
    "supported_p_value",
    "threshold_for",
]


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


def threshold_for(q: float, n: int, false_accusation_rate: float) -> float:
    """The smallest score j/n that a Binomial(n, q) hit count reaches with probability <= false_accusation_rate."""
    for j in range(0, n + 1):
        if binomial_tail(n, q, j) <= false_accusation_rate:
            return j / n
    return 1.0 + 1.0 / max(n, 1)  # unreachable: no score is rare enough


def p_value(score: float, n: int, q: float) -> float:
    """P[an independent model scores >= ``score``] for ``n`` pairs and hit-rate bound ``q``."""
    j = math.ceil(score * n - 1e-9)
    return binomial_tail(n, q, j)


# ---------------------------------------------------------------------------------------------
# The population null model: a beta-binomial whose parameters carry their own uncertainty.
#
# Transfer is correlated across pairs: a model that follows one x' follows many, so hit counts of
# independent models spread far wider than one binomial allows (measured: 7 to 84 of the same 100
# pairs). The unit of evidence is the model. Each independent model m has its own hit rate
# theta_m ~ Beta(mu * kappa, (1 - mu) * kappa), and its hits H_m | theta_m ~ Binomial(K, theta_m);
# the calibration models' hit counts h_1..h_n are draws of H. mu and kappa are unknown: a grid
# posterior under a flat prior on mu in (0, 1) and on log kappa in [log KAPPA_MIN, log KAPPA_MAX]
# weighs every (mu, kappa) by the likelihood of h_1..h_n. The predictive distribution of a NEW
# independent model's hits is the posterior-weighted mixture of beta-binomials; the threshold is the
# smallest j/K whose predictive tail P[H_new >= j] <= false_accusation_rate, and a suspect's p-value is that tail at
# its own score. The assumption (stated in every report): the calibration models are exchangeable
# with the independent models a suspect could be, i.e. drawn from the same population.
# ---------------------------------------------------------------------------------------------

KAPPA_MIN, KAPPA_MAX = 0.1, 1e4  # prior range of the concentration kappa (small: strong over-dispersion)
GRID_MU, GRID_KAPPA = 199, 60  # grid points of the posterior


def _log_rising(base, n: int):
    """[..., n + 1]: log Gamma(base + j) - log Gamma(base) for j = 0..n (a cumulative sum of logs, so
    that numpy alone computes it: the auditor needs no SciPy)."""
    import numpy as np

    steps = np.log(base[..., None] + np.arange(n))
    return np.concatenate([np.zeros(base.shape + (1,)), np.cumsum(steps, axis=-1)], axis=-1)


def beta_binomial_logpmf(k: int, a, b):
    """[G, k + 1]: log P[H = j] under Beta-Binomial(k, a, b) for each of G (a, b) pairs."""
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    j = np.arange(k + 1)
    log_choose = np.array([math.lgamma(k + 1) - math.lgamma(i + 1) - math.lgamma(k - i + 1) for i in j])
    up_a = _log_rising(a, k)  # lgamma(a + j) - lgamma(a)
    up_b = _log_rising(b, k)[..., ::-1]  # lgamma(b + k - j) - lgamma(b)
    up_ab = _log_rising(a + b, k)[..., -1:]  # lgamma(a + b + k) - lgamma(a + b)
    return log_choose + up_a + up_b - up_ab


def beta_binomial_predictive(
    hits: list[int],
    k: int,
    kappa_range: tuple[float, float] = (KAPPA_MIN, KAPPA_MAX),
    grid: tuple[int, int] = (GRID_MU, GRID_KAPPA),
) -> list[float]:
    """P[H_new = j], j = 0..k: the posterior predictive pmf of a new independent model's hit count
    given the calibration models' ``hits`` (see the block comment above)."""
    import numpy as np

    if not hits:
        raise ValueError("no calibration model")
    if any(not 0 <= h <= k for h in hits):
        raise ValueError("a hit count is outside 0..K")
    mu = (np.arange(grid[0]) + 0.5) / grid[0]
    kappa = np.exp(np.linspace(math.log(kappa_range[0]), math.log(kappa_range[1]), grid[1]))
    m, c = (g.ravel() for g in np.meshgrid(mu, kappa, indexing="ij"))
    logpmf = beta_binomial_logpmf(k, m * c, (1 - m) * c)  # [G, k + 1]
    loglik = logpmf[:, np.asarray(hits)].sum(axis=1)
    w = np.exp(loglik - loglik.max())
    w /= w.sum()
    pmf = w @ np.exp(logpmf)
    return [float(p) for p in pmf / pmf.sum()]


def predictive_tail(pmf: list[float], j: int) -> float:
    """P[H_new >= j] from a pmf over 0..K."""
    if j <= 0:
        return 1.0
    return min(1.0, float(sum(pmf[j:])))


def predictive_threshold(pmf: list[float], false_accusation_rate: float) -> float:
    """The smallest score j/K whose predictive tail is <= false_accusation_rate (above 1: no score is rare enough)."""
    k = len(pmf) - 1
    for j in range(k + 1):
        if predictive_tail(pmf, j) <= false_accusation_rate:
            return j / k
    return 1.0 + 1.0 / max(k, 1)


def supported_p_value(n_models: int) -> float:
    """The smallest p-value that ``n_models`` calibration models can show without a model: a new
    independent model outranks all of them with probability 1 / (n + 1) under exchangeability.
    Smaller p-values are the beta-binomial's extrapolation, and reports say so."""
    return 1.0 / (n_models + 1)


def leave_one_out(hits: list[int], k: int, false_accusation_rate: float) -> list[dict]:
    """For each calibration model: its score against the threshold fitted without it. A model at
    or above its left-out threshold is one the null model would have falsely accused."""
    rows = []
    for i, h in enumerate(hits):
        rest = hits[:i] + hits[i + 1 :]
        thr = predictive_threshold(beta_binomial_predictive(rest, k), false_accusation_rate) if rest else 1.0 + 1.0 / k
        rows.append(
            {"index": i, "hits": h, "score": h / k, "threshold_without_it": round(thr, 4), "flagged": h / k >= thr}
        )
    return rows
