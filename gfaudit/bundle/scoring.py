"""Scoring rules: turn a suspect's labels on (x, x') into a score. The ARD formula lives here.

GanFinger (paper eqs. 7-9), with y = f_v(x) and y' = f_v(x') stored in the bundle:
    P_ori  = mean_i [ f_p(x_i) != y_i ]
    P_conf = mean_i [ y'_i != y_i ] * [ f_p(x'_i) == y'_i ]
    ARD    = P_conf - P_ori
Baselines (IPGuard, ConferAE, MetaFinger, DeepFool) use the label matching rate on x'.
A suspect is judged derived when its score >= the signed threshold.

A bundle signs its rule (``scoring.rule``), so the auditor judges any method, known here or not, by
the rule its signer named. ``METHOD_RULES`` is the rule ``gfaudit bundle create --method`` signs
unless ``--rule`` names another: the paper's rule for each method whose pairs it packs. The
trainer's methods declare their own rule (``Method.rule`` in trainer/generation/methods/); a test
keeps the two equal where both name a method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_RULE", "METHOD_RULES", "RULES", "Score", "ard", "label_match", "rule_for", "score"]


@dataclass(frozen=True)
class Score:
    score: float
    p_ori: float
    p_conf: float
    match_rate: float


def _rates(y, y_prime, pred_x, pred_xp) -> tuple[float, float, float]:
    y, y_prime, pred_x, pred_xp = (np.asarray(a) for a in (y, y_prime, pred_x, pred_xp))
    if not (y.shape == y_prime.shape == pred_x.shape == pred_xp.shape) or y.ndim != 1 or y.size == 0:
        raise ValueError("labels must be four 1-D arrays of one non-zero length")
    p_ori = float(np.mean(pred_x != y))
    p_conf = float(np.mean((y_prime != y) & (pred_xp == y_prime)))
    match = float(np.mean(pred_xp == y_prime))
    return p_ori, p_conf, match


def ard(y, y_prime, pred_x, pred_xp) -> Score:
    p_ori, p_conf, match = _rates(y, y_prime, pred_x, pred_xp)
    return Score(p_conf - p_ori, p_ori, p_conf, match)


def label_match(y, y_prime, pred_x, pred_xp) -> Score:
    p_ori, p_conf, match = _rates(y, y_prime, pred_x, pred_xp)
    return Score(match, p_ori, p_conf, match)


RULES: dict[str, Callable[..., Score]] = {"ard": ard, "label_match": label_match}


def score(rule: str, y, y_prime, pred_x, pred_xp) -> Score:
    return RULES[rule](y, y_prime, pred_x, pred_xp)


DEFAULT_RULE = "label_match"  # a method METHOD_RULES does not name is judged by its label matching rate
METHOD_RULES: dict[str, str] = {
    "ganfinger": "ard",  # GanFinger (paper eqs. 7-9)
    "ipguard": "label_match",
    "conferae": "label_match",
    "metafinger": "label_match",
    "deepfool": "label_match",
    "fgsm": "label_match",  # pairs made elsewhere, packed by `gfaudit bundle create`
    "custom": "label_match",
}
assert set(METHOD_RULES.values()) <= set(RULES), "every method's rule is a scoring rule"


def rule_for(method: str) -> str:
    """The scoring rule a bundle of ``method`` is signed with unless the signer names another."""
    return METHOD_RULES.get(method, DEFAULT_RULE)
