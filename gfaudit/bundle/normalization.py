"""Named input normalisations. The one table both the auditor and the trainer read.

A fingerprint is stored as uint8 pixels; the manifest records which mean/std the suspect expects,
and the auditor applies ``(x / 255 - mean) / std`` before running a float-input model.
"""

from __future__ import annotations

from gfaudit.errors import UsageError

__all__ = ["NORMALIZATIONS", "resolve"]

NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # The shared ResNet-20 victims (resnet20-cifar10-jpeg, and the public akamaster one) take the ImageNet statistics.
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


def resolve(name: str | None, mean: list[float] | None = None, std: list[float] | None = None):
    """Return (mean, std) as lists from a preset name or explicit values (explicit values win)."""
    if mean is not None or std is not None:
        if mean is None or std is None or len(mean) != len(std) or not mean:
            raise UsageError("--mean and --std must be given together, one value per channel")
        if any(s <= 0 for s in std):
            raise UsageError("--std values must be positive")
        return [float(m) for m in mean], [float(s) for s in std]
    if name is None:
        name = "none"
    if name not in NORMALIZATIONS:
        raise UsageError(f"unknown normalization {name!r}; choose one of {', '.join(NORMALIZATIONS)}")
    m, s = NORMALIZATIONS[name]
    return list(m), list(s)
