"""Calibrate a selection's threshold on negatives it was not tuned against (one path for every method).

The validation models report how the pools score the selected pairs; the verdict does not rest on
them, because selection filtered the candidates on the validation negatives (their scores are near
0 by construction). The threshold comes from the calibration negatives, which neither the GAN nor
the selection ever saw: an upper confidence bound ``q`` on their per-pair hit rate, then the
binomial tail over K at the false-accusation rate ``alpha`` (gfaudit/calibration.py has the
formulas, which the auditor also uses for each suspect's p-value). A preset without calibration
negatives falls back to the older rule: between the validation pools, raised to a floor from the
validation negatives' follow rate before selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from gfaudit import calibration as null
from gfaudit.manifest import NullModel, decimal_string

from . import selection
from .pools import Pools
from .progress import log

__all__ = ["CONFIDENCE_DELTA", "Calibration", "calibrate"]

CONFIDENCE_DELTA = 0.05  # q is an upper bound at confidence 1 - delta (Bonferroni over the calibration models)


@dataclass(frozen=True)
class Calibration:
    threshold: float
    rule: str
    alpha: float
    between_pools: float
    hit_rate_bound: float | None  # q; None without calibration negatives
    floor: float | None  # the fallback's floor
    # {"positive": ..., "negative": ..., "calibration": ...}: the validation and calibration models' scores
    scores: dict[str, list[selection.ModelScore]] = field(default_factory=dict)

    @property
    def null_model(self) -> NullModel | None:
        if self.hit_rate_bound is None:
            return None
        return NullModel(Decimal(decimal_string(self.hit_rate_bound, 6)), Decimal(decimal_string(self.alpha, 8)))

    def scores_json(self) -> dict[str, list[dict]]:
        """The scores as signed into the provenance (``validation_scores``)."""
        return {group: [row.to_json() for row in rows] for group, rows in self.scores.items()}

    def to_json(self) -> dict:
        return {
            "rule": self.rule,
            "false_accusation_alpha": self.alpha,
            "threshold": self.threshold,
            "between_pools": self.between_pools,
            "hit_rate_bound": self.hit_rate_bound,
            "confidence_delta": CONFIDENCE_DELTA if self.hit_rate_bound is not None else None,
            "floor_without_calibration_negatives": self.floor,
            "method": (
                "binomial tail over K at the calibration negatives' Clopper-Pearson hit-rate bound"
                if self.hit_rate_bound is not None
                else "between validation pools, raised to the floor"
            ),
        }


def calibrate(victim, pools: Pools, sel: selection.Selection, rule: str, alpha: float, device) -> Calibration:
    """Score the pools on the selected pairs and set the threshold (see the module docstring)."""
    val_pos = selection.model_scores(pools.get("positive", "val"), sel, victim, device, rule=rule)
    val_neg = selection.model_scores(pools.get("negative", "val"), sel, victim, device, rule=rule)
    calib = selection.model_scores(pools.get("negative", "calib"), sel, victim, device, rule=rule)
    k = len(sel.x)
    between = selection.calibrate([r.score for r in val_pos], [r.score for r in val_neg])
    scores = {"positive": val_pos, "negative": val_neg, "calibration": calib}
    if calib:
        q = null.hit_rate_bound([r.hits for r in calib], k, CONFIDENCE_DELTA)
        threshold = min(1.0, null.threshold_for(q, k, alpha))
        top_pos = max((r.score for r in val_pos), default=None)
        if top_pos is not None and threshold > top_pos:
            log(
                f"warning: the calibrated threshold {threshold:.3f} is above every positive validation model "
                f"({top_pos:.3f}): pirates like them would not be flagged"
            )
        result = Calibration(round(threshold, 4), rule, alpha, between, round(q, 6), None, scores)
    else:
        base_rate = sel.stats.follow_rate_before_selection()
        floor = 0.0 if base_rate is None else selection.false_accusation_floor(base_rate, k, alpha)
        result = Calibration(
            selection.calibrate([r.score for r in val_pos], [r.score for r in val_neg], floor),
            rule,
            alpha,
            between,
            None,
            round(floor, 4),
            scores,
        )
    log(
        f"calibration: threshold {result.threshold} (rule {rule}, alpha {alpha}, hit-rate bound {result.hit_rate_bound}); "
        f"scores positive {[r.score for r in val_pos]}, selection negatives {[r.score for r in val_neg]}, "
        f"calibration negatives {[r.score for r in calib]}"
    )
    return result
