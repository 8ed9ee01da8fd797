"""Training recipes: how a model is optimised, as data. One table, read by the one training loop.

classic  SGD + Nesterov, cosine decay, mean loss, crop (pad 4) + flip. What every model before the
         fast recipe was trained with; kept so that cached models and seeds keep their meaning.
fast     the ideas of airbench (Jordan 2024, https://github.com/KellerJordan/cifar10-airbench),
         written device-agnostic and fp32 so that it runs on a CPU as on a GPU: summed loss with
         hyper-parameters decoupled from the batch size and momentum, label smoothing, a short
         triangular schedule, a higher learning rate for BatchNorm shifts, lookahead averaging of
         the weights every few steps, per-image flip + translate, and a whitening first layer
         (:meth:`gfaudit_trainer.models.zoo.AirbenchNet.data_init`) whose bias trains for a few epochs only.
         With ``AirbenchNet`` it reaches 85 %+ on the JPEG CIFAR-10 test split in minutes on 2
         CPU cores (``benchmarks/fast_recipe.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """Everything about optimisation that is not the data, the model or the number of epochs."""

    name: str
    momentum: float
    summed_loss: bool  # True: lr and weight decay are per 1024 examples (airbench's decoupling)
    weight_decay: float
    label_smoothing: float = 0.0
    schedule: str = "cosine"  # "cosine" or "triangle"
    warmup: float = 0.0  # triangle: share of the steps spent rising from ``lr_start`` to the peak
    lr_start: float = 0.2  # triangle: start, as a share of the peak
    lr_end: float = 0.07  # triangle: end, as a share of the peak
    bias_scaler: float = 1.0  # BatchNorm shifts learn this much faster (weight decay unchanged)
    lookahead_every: int = 0  # average the weights every N steps (0: never)
    translate: int = 4  # pixels of random translation (reflect padding)
    per_image: bool = False  # one translation per image (True) or one per batch (False, classic)
    whiten_bias_epochs: int = 0  # epochs during which a whitening layer's bias still trains
    default_lr: float = 0.05
    default_batch_size: int = 128


RECIPES: dict[str, Recipe] = {
    "classic": Recipe(name="classic", momentum=0.9, summed_loss=False, weight_decay=5e-4),
    "fast": Recipe(
        name="fast",
        momentum=0.85,
        summed_loss=True,
        weight_decay=0.0153,
        label_smoothing=0.2,
        schedule="triangle",
        warmup=0.23,
        bias_scaler=64.0,
        lookahead_every=5,
        translate=2,
        per_image=True,
        whiten_bias_epochs=3,
        default_lr=11.5,
        default_batch_size=1024,
    ),
}


# The fast recipe's per-family settings. airbench's were tuned for its own network (whose logits are
# scaled by 1/9 and whose BatchNorm scales are frozen); other families (ResNets, VGG, DenseNet) have
# trainable scales and unscaled logits, so they take a lower peak rate and no faster BatchNorm shifts.
FAST_FAMILY_DEFAULTS: dict[str, dict] = {
    "airbench": {"lr": 11.5, "batch_size": 1024, "bias_scaler": 64.0},
    "*": {"lr": 3.0, "batch_size": 256, "bias_scaler": 1.0},
}


def fast_defaults(arch: str) -> dict:
    """The fast recipe's lr, batch size and bias scaler for an architecture spec (``"resnet20"``)."""
    family = arch.partition(":")[0]
    return dict(FAST_FAMILY_DEFAULTS.get(family, FAST_FAMILY_DEFAULTS["*"]))


def get(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(f"unknown training recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def lr_factor(recipe: Recipe, step: int, total: int) -> float:
    """The schedule's multiplier of the peak learning rate at ``step`` of ``total``."""
    step = min(step, total)
    if recipe.schedule == "cosine":
        import math

        return 0.5 * (1 + math.cos(math.pi * step / total))
    rise = int(total * recipe.warmup)
    if step < rise:
        frac = step / rise
        return recipe.lr_start * (1 - frac) + frac
    frac = (step - rise) / max(1, total - rise)
    return (1 - frac) + recipe.lr_end * frac


def lookahead_decay(step: int, total: int) -> float:
    """airbench's lookahead weight: small early (follow the fast weights), near 0.77 at the end."""
    return 0.95**5 * (min(step, total) / total) ** 3
