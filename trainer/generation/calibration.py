"""Calibrate a selection's threshold on negatives it was not tuned against (one path for every method).

The validation models report how the pools score the selected pairs; the verdict does not rest on
them, because selection filtered the candidates on the validation negatives (their scores are near
0 by construction). The threshold comes from the calibration negatives (and reference models in
the calibration role), which neither the GAN nor the selection ever saw: their hit counts on the
K pairs are fitted by the population null model (a beta-binomial with parameter uncertainty,
gfaudit/bundle/null_model.py, which the auditor also uses for each suspect's p-value), and the threshold
is the smallest score a new independent model reaches with predictive probability <= false_accusation_rate. A
leave-one-out check (each calibration model scored against the threshold fitted without it) is
signed beside it. A preset without calibration negatives falls back to the older rule: between
the validation pools, raised to a floor from the validation negatives' follow rate before selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from gfaudit.bundle import null_model as null
from gfaudit.bundle.manifest import PopulationNullModel, decimal_string
from gfaudit_trainer.generation import selection
from gfaudit_trainer.models.pools import Pools
from gfaudit_trainer.progress import log

__all__ = ["Calibration", "calibrate", "population_null_model"]


@dataclass(frozen=True)
class Calibration:
    threshold: float
    rule: str
    false_accusation_rate: float
    between_pools: float
    null_model: PopulationNullModel | None  # None without calibration negatives
    floor: float | None  # the fallback's floor
    # {"positive": ..., "negative": ..., "calibration": ...}: the validation and calibration models' scores
    scores: dict[str, list[selection.ModelScore]] = field(default_factory=dict)
    leave_one_out: tuple[dict, ...] = ()

    def scores_json(self) -> dict[str, list[dict]]:
        """The scores as signed into the provenance (``validation_scores``)."""
        return {group: [row.to_json() for row in rows] for group, rows in self.scores.items()}

    def to_json(self) -> dict:
        n = len(self.null_model.calibration_hits) if self.null_model else 0
        return {
            "rule": self.rule,
            "false_accusation_alpha": self.false_accusation_rate,
            "threshold": self.threshold,
            "between_pools": self.between_pools,
            "calibration_models": n,
            "supported_p_value": round(null.supported_p_value(n), 6) if n else None,
            "leave_one_out": list(self.leave_one_out),
            "leave_one_out_holds": not any(row["flagged"] for row in self.leave_one_out) if n else None,
            "floor_without_calibration_negatives": self.floor,
            "method": (
                "beta-binomial predictive over the calibration models' hit counts (parameter uncertainty: grid "
                "posterior), threshold at its tail alpha"
                if self.null_model is not None
                else "between validation pools, raised to the floor"
            ),
        }


def population_null_model(hits: list[int], k: int, false_accusation_rate: float) -> PopulationNullModel:
    """The signed null model for these calibration hit counts, with the auditor's default prior and grid."""
    return PopulationNullModel(
        tuple(int(h) for h in hits),
        k,
        Decimal(decimal_string(false_accusation_rate, 8)),
        (Decimal(decimal_string(null.KAPPA_MIN, 4)), Decimal(decimal_string(null.KAPPA_MAX, 4))),
        (null.GRID_MU, null.GRID_KAPPA),
    )


def calibrate(
    victim, pools: Pools, sel: selection.Selection, rule: str, false_accusation_rate: float, device
) -> Calibration:
    """Score the pools on the selected pairs and set the threshold (see the module docstring)."""
    val_pos = selection.model_scores(pools.get("positive", "val"), sel, victim, device, rule=rule)
    val_neg = selection.model_scores(pools.get("negative", "val"), sel, victim, device, rule=rule)
    calib = selection.model_scores(pools.get("negative", "calib"), sel, victim, device, rule=rule)
    k = len(sel.x)
    between = selection.calibrate([r.score for r in val_pos], [r.score for r in val_neg])
    scores = {"positive": val_pos, "negative": val_neg, "calibration": calib}
    if calib:
        hits = [r.hits for r in calib]
        model = population_null_model(hits, k, false_accusation_rate)
        threshold = min(1.0, null.predictive_threshold(model.pmf, false_accusation_rate))
        loo = tuple(null.leave_one_out(hits, k, false_accusation_rate))
        top_pos = max((r.score for r in val_pos), default=None)
        if top_pos is not None and threshold > top_pos:
            log(
                f"warning: the calibrated threshold {threshold:.3f} is above every positive validation model "
                f"({top_pos:.3f}): pirates like them would not be flagged"
            )
        if any(row["flagged"] for row in loo):
            log("warning: leave-one-out: a calibration model scores at or above the threshold fitted without it")
        result = Calibration(round(threshold, 4), rule, false_accusation_rate, between, model, None, scores, loo)
    else:
        base_rate = sel.stats.follow_rate_before_selection()
        floor = 0.0 if base_rate is None else selection.false_accusation_floor(base_rate, k, false_accusation_rate)
        result = Calibration(
            selection.calibrate([r.score for r in val_pos], [r.score for r in val_neg], floor),
            rule,
            false_accusation_rate,
            between,
            None,
            round(floor, 4),
            scores,
        )
    log(
        f"calibration: threshold {result.threshold} (rule {rule}, false-accusation rate {false_accusation_rate}); "
        f"scores positive {[r.score for r in val_pos]}, selection negatives {[r.score for r in val_neg]}, "
        f"calibration hits {[r.hits for r in calib]} of {k}"
    )
    return result
