"""The population null model (gfaudit/bundle/null_model.py): a beta-binomial with parameter uncertainty."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gfaudit.bundle import null_model as null


def test_beta_binomial_pmf_matches_known_cases():
    # Beta(1, 1) mixing: every count 0..K equally likely.
    uniform = np.exp(null.beta_binomial_logpmf(10, np.array([1.0]), np.array([1.0])))[0]
    assert np.allclose(uniform, 1 / 11)
    # A huge concentration is the binomial at the mean.
    a, b = np.array([0.3e6]), np.array([0.7e6])
    near = np.exp(null.beta_binomial_logpmf(20, a, b))[0]
    binom = [math.comb(20, j) * 0.3**j * 0.7 ** (20 - j) for j in range(21)]
    assert np.allclose(near, binom, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12))
def test_predictive_is_a_distribution(hits):
    pmf = null.beta_binomial_predictive(hits, 40)
    assert len(pmf) == 41 and abs(sum(pmf) - 1) < 1e-9 and min(pmf) >= 0
    assert null.predictive_tail(pmf, 0) == 1.0


def test_over_dispersed_hits_give_a_higher_threshold_than_tight_ones():
    """Same mean hit count (15 of 100), spread apart or close together: the spread population must
    be allowed to reach higher, and both sit above a binomial that ignores the spread."""
    tight = [14, 15, 16, 15, 14, 16, 15, 15]
    spread = [3, 8, 30, 12, 25, 5, 20, 17]
    t_tight = null.predictive_threshold(null.beta_binomial_predictive(tight, 100), 1e-3)
    t_spread = null.predictive_threshold(null.beta_binomial_predictive(spread, 100), 1e-3)
    t_binom = null.threshold_for(0.15, 100, 1e-3)
    assert t_binom <= t_tight < t_spread


def test_parameter_uncertainty_shrinks_with_more_models():
    """Eight models with the same spread as four leave less room for a new model's tail."""
    four = [5, 10, 15, 20]
    eight = four * 2
    tail = lambda hits: null.predictive_tail(null.beta_binomial_predictive(hits, 100), 45)  # noqa: E731
    assert tail(eight) < tail(four)


def test_leave_one_out_flags_an_outlier_and_passes_a_population():
    rows = null.leave_one_out([5, 6, 5, 7, 6, 5, 6, 90], 100, 1e-3)
    assert [r["flagged"] for r in rows] == [False] * 7 + [True]
    assert all(not r["flagged"] for r in null.leave_one_out([3, 8, 12, 5, 9, 7, 10, 4], 100, 1e-3))


def test_supported_p_value_and_bad_input():
    assert null.supported_p_value(8) == pytest.approx(1 / 9)
    with pytest.raises(ValueError):
        null.beta_binomial_predictive([], 10)
    with pytest.raises(ValueError):
        null.beta_binomial_predictive([11], 10)
