"""ARD (paper eqs. 7-9) against cases computed by hand."""

import numpy as np
import pytest

from gfaudit.audit.check import decide
from gfaudit.bundle import scoring


def test_ard_victim_itself_is_one():
    y, yp = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])
    s = scoring.ard(y, yp, y, yp)
    assert (s.score, s.p_ori, s.p_conf) == (1.0, 0.0, 1.0)


def test_ard_hand_case():
    # 5 pairs. Suspect misses x on pairs 1 and 4 -> P_ori = 2/5.
    # On x' it matches y' on pairs 0, 1, 2; pair 2 has y' == y, so it does not count -> P_conf = 2/5.
    y = np.array([0, 1, 2, 3, 4])
    yp = np.array([5, 6, 2, 7, 8])
    pred_x = np.array([0, 9, 2, 3, 0])
    pred_xp = np.array([5, 6, 2, 0, 0])
    s = scoring.ard(y, yp, pred_x, pred_xp)
    assert s.p_ori == pytest.approx(0.4)
    assert s.p_conf == pytest.approx(0.4)
    assert s.score == pytest.approx(0.0)
    assert s.match_rate == pytest.approx(0.6)


def test_ard_unrelated_model_goes_negative():
    y = np.array([0, 0, 0, 0])
    yp = np.array([1, 1, 1, 1])
    s = scoring.ard(y, yp, pred_x=np.array([2, 2, 0, 0]), pred_xp=np.array([0, 0, 0, 1]))
    assert s.p_ori == 0.5 and s.p_conf == 0.25 and s.score == pytest.approx(-0.25)


def test_label_match_rule_scores_x_prime_only():
    y, yp = np.array([0, 1, 2, 3]), np.array([4, 5, 6, 7])
    s = scoring.label_match(y, yp, pred_x=np.array([9, 9, 9, 9]), pred_xp=np.array([4, 5, 0, 0]))
    assert s.score == 0.5 and s.p_ori == 1.0


def test_lengths_must_agree():
    with pytest.raises(ValueError):
        scoring.ard(np.array([0, 1]), np.array([1, 0]), np.array([0]), np.array([1, 0]))


@pytest.mark.parametrize(
    "score,threshold,expect,verdict,code",
    [
        (0.6, 0.5, None, "derived", 1),
        (0.5, 0.5, None, "derived", 1),  # score >= threshold
        (0.49, 0.5, None, "not-derived", 0),
        (0.9, 0.5, "derived", "derived", 0),
        (0.1, 0.5, "derived", "not-derived", 1),
        (0.1, 0.5, "not-derived", "not-derived", 0),
        (0.9, 0.5, "not-derived", "derived", 1),
    ],
)
def test_decide(score, threshold, expect, verdict, code):
    assert decide(score, threshold, expect) == (verdict, code)
