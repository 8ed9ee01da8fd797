"""A guard against two data worlds: was the victim trained on the data it is fingerprinted with?

An owner fingerprints a model with the data it was trained on. When the victim came from another
copy of the data (lossless pixels, another encoder) than the one the seeds and the pools come from,
the GAN learns the seam between the two worlds: how models of the victim's world treat images of
the pools' world. The bundle then accuses every model of the victim's world and none of the pools'
(measured: a ResNet-20 trained on the lossless CIFAR-10 originals, fingerprinted with pools trained
on the JPEG copy, flagged every public lossless-trained model at ARD 0.65-0.84).

What that looks like from inside ``gfaudit train``: on the owner's test split the victim is clearly
weaker than the negatives trained on the owner's data (81.0 % against 84-87 % in that case; a
victim trained on the copy: 85.9 %), and it agrees with them less than they agree with each other.
:func:`check` measures both and says so; it does not stop the run, since a victim can be weaker
for honest reasons (a smaller architecture, fewer epochs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations

import torch

from gfaudit_trainer.models.pools import PoolModel
from gfaudit_trainer.models.training import predict

__all__ = ["MARGIN", "DataWorldCheck", "check", "from_predictions"]

MARGIN = 0.02  # "clearly": two points of accuracy or agreement


@dataclass(frozen=True)
class DataWorldCheck:
    victim_accuracy: float
    negatives: int  # negatives trained here on the owner's data (references excluded)
    negative_accuracy_median: float
    negative_accuracy_range: tuple[float, float]
    victim_agreement_with_negatives: float  # mean share of test images labelled alike
    negative_agreement_with_each_other: float | None  # mean over pairs; None with one negative
    weaker: bool  # the victim is clearly weaker than models trained on the owner's data
    estranged: bool  # it agrees with them clearly less than they agree with each other

    @property
    def warn(self) -> bool:
        return self.weaker and (self.estranged or self.negative_agreement_with_each_other is None)

    def message(self) -> str:
        lo, hi = self.negative_accuracy_range
        other = self.negative_agreement_with_each_other
        return (
            f"the victim scores {self.victim_accuracy:.1%} on your test split, the {self.negatives} negative model(s) "
            f"trained on your data {lo:.1%}-{hi:.1%}; it agrees with them on {self.victim_agreement_with_negatives:.1%} "
            f"of test images"
            + (f", they with each other on {other:.1%}" if other is not None else "")
            + ". The victim may not have been trained on this data: fingerprints made with it can tell the two data "
            "worlds apart instead of pirates from independent models. Fingerprint with the data the victim was "
            "trained on (docs/design.md, 'One data world')"
        )

    def to_json(self) -> dict:
        doc = asdict(self)
        doc["warning"] = self.warn
        doc["negative_accuracy_range"] = [round(v, 4) for v in self.negative_accuracy_range]
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in doc.items()}


def check(
    victim_test: torch.Tensor, victim_accuracy: float, models: list[PoolModel], test_images, device
) -> DataWorldCheck | None:
    """The guard's figures from the victim's labels on the test split and the pool's negatives
    trained here; None when there are none."""
    own = [m for m in models if m.role == "negative" and m.meta.source != "reference"]
    if not own:
        return None
    return from_predictions(
        victim_test, victim_accuracy, [m.accuracy for m in own], [predict(m.model, test_images, device) for m in own]
    )


def from_predictions(
    victim_test: torch.Tensor, victim_accuracy: float, accuracies: list[float], preds: list[torch.Tensor]
) -> DataWorldCheck:
    """The guard's figures from labels alone: the victim's and each negative's on the test split."""
    own = preds
    accs = sorted(accuracies)
    median = accs[len(accs) // 2] if len(accs) % 2 else (accs[len(accs) // 2 - 1] + accs[len(accs) // 2]) / 2
    with_victim = sum(float((p == victim_test).float().mean()) for p in preds) / len(preds)
    pairs = list(combinations(preds, 2))
    mutual = sum(float((a == b).float().mean()) for a, b in pairs) / len(pairs) if pairs else None
    return DataWorldCheck(
        victim_accuracy,
        len(own),
        median,
        (accs[0], accs[-1]),
        with_victim,
        mutual,
        weaker=victim_accuracy < median - MARGIN,
        estranged=mutual is not None and with_victim < mutual - MARGIN,
    )
