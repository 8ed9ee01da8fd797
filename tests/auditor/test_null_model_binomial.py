"""The null model behind verdicts (gfaudit/bundle/null_model.py): exact binomial tails, the Clopper-Pearson
bound's coverage, the threshold's false-accusation rate, and the p-value, checked against brute
force and simulation rather than against numbers written down."""

from __future__ import annotations

import math
import random

import pytest

from gfaudit.bundle import null_model as null


@pytest.mark.parametrize("n,q", [(10, 0.3), (100, 0.05), (100, 0.5), (37, 0.9)])
def test_binomial_tail_matches_the_sum_of_the_pmf(n, q):
    for j in range(-1, n + 2):
        brute = sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(max(j, 0), n + 1))
        assert null.binomial_tail(n, q, j) == pytest.approx(min(brute, 1.0), rel=1e-9, abs=1e-15)


def test_clopper_pearson_bound_covers_the_true_rate():
    rng = random.Random(0)
    q, n, delta, misses, trials = 0.12, 100, 0.05, 0, 400
    for _ in range(trials):
        hits = sum(rng.random() < q for _ in range(n))
        misses += null.clopper_pearson_upper(hits, n, delta) < q
    assert misses / trials <= delta + 0.03  # exact bound: conservative up to sampling noise
    assert null.clopper_pearson_upper(0, 100, 0.05) == pytest.approx(1 - 0.05 ** (1 / 100), rel=1e-6)
    assert null.clopper_pearson_upper(100, 100, 0.05) == 1.0


def test_threshold_keeps_the_false_accusation_rate_below_alpha():
    n, q, alpha = 100, 0.1, 1e-3
    t = null.threshold_for(q, n, alpha)
    j = round(t * n)
    assert null.binomial_tail(n, q, j) <= alpha < null.binomial_tail(n, q, j - 1)
    assert null.threshold_for(q, n, 0.25) <= t <= null.threshold_for(0.2, n, alpha)  # monotone in alpha and q


def test_p_value_is_the_tail_at_the_score_and_one_for_non_positive_scores():
    assert null.p_value(0.0, 100, 0.1) == 1.0 and null.p_value(-0.3, 100, 0.1) == 1.0
    assert null.p_value(0.25, 100, 0.1) == pytest.approx(null.binomial_tail(100, 0.1, 25))
    assert null.p_value(1.0, 100, 0.1) < 1e-90


def test_hit_rate_bound_is_set_by_the_model_that_hits_most():
    low_and_high = null.hit_rate_bound([2, 30], 100, 0.05)
    assert low_and_high == pytest.approx(null.clopper_pearson_upper(30, 100, 0.025))
    assert low_and_high > 0.30
    with pytest.raises(ValueError):
        null.hit_rate_bound([], 100)
