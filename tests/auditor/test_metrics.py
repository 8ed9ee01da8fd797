"""ARUC, ROC-AUC and TPR@FPR on hand-made score sets."""

import numpy as np
import pytest

from gfaudit.audit import metrics


def test_perfect_separation_at_known_gap():
    # Pirated all at 0.9, unrelated all at 0.1: min(R, U) = 1 exactly for tau in (0.1, 0.9] -> area 0.8.
    assert metrics.aruc([0.9, 0.9], [0.1, 0.1]) == pytest.approx(0.8, abs=2e-3)
    assert metrics.roc_auc([0.9, 0.9], [0.1, 0.1]) == 1.0
    assert metrics.tpr_at_fpr([0.9, 0.9], [0.1, 0.1], 0.0) == 1.0


def test_identical_scores_give_no_area():
    assert metrics.aruc([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0, abs=1e-9)
    assert metrics.roc_auc([0.5], [0.5]) == 0.5


def test_hand_computed_mixed_case():
    pirated, unrelated = [0.8, 0.6, 0.2], [0.1, 0.3, 0.7]
    # ROC-AUC: pairs (p > u): 0.8>all 3, 0.6>0.1,0.3, 0.2>0.1 -> 6 of 9.
    assert metrics.roc_auc(pirated, unrelated) == pytest.approx(6 / 9)
    # At 0 % FPR the threshold must exceed 0.7: only 0.8 passes -> 1/3.
    assert metrics.tpr_at_fpr(pirated, unrelated, 0.0) == pytest.approx(1 / 3)
    # min(R,U) by hand: tau in (0.1,0.2]: R=1,U=1/3 -> 1/3; (0.2,0.3]: R=2/3,U=1/3 -> 1/3; (0.3,0.6]: R=2/3,U=2/3;
    # (0.6,0.7]: R=1/3,U=2/3 -> 1/3; (0.7,0.8]: R=1/3,U=1 -> 1/3; (0,0.1]: U=0 -> 0; above 0.8: R=0.
    expected = 0.1 / 3 + 0.1 / 3 + 0.3 * 2 / 3 + 0.1 / 3 + 0.1 / 3
    assert metrics.aruc(pirated, unrelated) == pytest.approx(expected, abs=3e-3)
    tau, level = metrics.best_threshold(pirated, unrelated)
    assert 0.3 < tau <= 0.6 and level == pytest.approx(2 / 3)


def test_negative_scores_count_as_below_every_threshold():
    assert metrics.aruc([1.0], [-0.5]) == pytest.approx(1.0, abs=2e-3)


def test_empty_sets_are_errors():
    with pytest.raises(ValueError):
        metrics.aruc([], [0.1])
    with pytest.raises(ValueError):
        metrics.roc_auc([0.1], [])


def test_grid_is_dense_enough():
    g, r, u = metrics.curves(np.array([0.42]), np.array([0.41]))
    assert len(g) == 1001 and r[420] == 1 and u[420] == 1  # 0.41 < 0.42
    assert u[400] == 0 and r[430] == 0
