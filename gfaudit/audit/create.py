"""Make a signed bundle from fingerprint pairs of any method, labelled by the victim's own ONNX.

The trainer, the baselines and ``gfaudit bundle create`` all write bundles through here, so the
labels stored in every bundle are the labels onnxruntime gives, the same path ``check`` uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gfaudit.audit.isolation import DEFAULT_TIMEOUT, Job, check_timeout, run
from gfaudit.bundle import container as bundle_io
from gfaudit.bundle.manifest import AnyNullModel, InputSpec
from gfaudit.bundle.provenance import file_sha256, now_utc, versions
from gfaudit.bundle.scoring import METHOD_RULES as METHODS, rule_for
from gfaudit.errors import SuspectError, UsageError

__all__ = ["Created", "create", "rule_for"]


@dataclass(frozen=True)
class Created:
    path: Path
    kept: int
    dropped: int


def _finite(value) -> bool:
    try:
        return not isinstance(value, (bool, str, bytes)) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def create(
    out: str | Path,
    *,
    x: np.ndarray,
    x_prime: np.ndarray,
    victim_onnx: str | Path,
    mean: list[float],
    std: list[float],
    key: Ed25519PrivateKey,
    method: str = "ganfinger",
    rule: str | None = None,
    threshold: float | str = 0.5,
    class_names: list[str] | None = None,
    provenance: dict | None = None,
    device: str = "auto",
    null_model: AnyNullModel | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Created:
    """Label pairs with the victim, drop pairs whose x' keeps x's label, then sign and write.

    The victim is as untrusted as any suspect (it is whatever file was passed): it runs in an
    isolated worker under ``timeout`` seconds (None: in this process, no limit). A victim that
    cannot be run is a ``SuspectError`` (exit 4)."""
    if method not in METHODS:
        raise UsageError(
            f"unknown method {method!r}; choose one of {', '.join(METHODS)} (custom: pairs made any other way)"
        )
    if not isinstance(x, np.ndarray) or not isinstance(x_prime, np.ndarray):
        raise UsageError("x and x' must be numpy arrays")
    if x.dtype != np.uint8 or x_prime.dtype != np.uint8 or x.ndim != 4 or x.shape != x_prime.shape:
        raise UsageError(
            f"x and x' must be uint8 arrays of one [K,C,H,W] shape (got {x.dtype}{list(x.shape)}"
            f" and {x_prime.dtype}{list(x_prime.shape)})"
        )
    if min(x.shape) < 1:
        raise UsageError(f"x and x' hold no image (shape {list(x.shape)}); a bundle needs at least one pair")
    if len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise UsageError(f"mean/std need {x.shape[1]} values, one per channel")
    if not all(_finite(v) for v in (*mean, *std)) or min(float(v) for v in std) <= 0:
        raise UsageError(
            f"mean and std must be finite numbers and std positive (got mean {list(mean)}, std {list(std)})"
        )
    timeout = check_timeout(timeout)
    job = Job(
        str(victim_onnx),
        x,
        x_prime,
        tuple(float(v) for v in mean),
        tuple(float(v) for v in std),
        x.shape[1],
        x.shape[2],
        x.shape[3],
        None,
        device,
        logits=True,
    )
    try:
        labels = run(job, timeout)
    except SuspectError as exc:
        raise SuspectError(f"the victim: {exc}") from None
    assert labels.logits_x is not None
    y, num_classes = labels.pred_x, int(labels.logits_x.shape[1])
    y_prime = labels.pred_x_prime
    keep = y_prime != y
    if not keep.any():
        raise UsageError("the victim labels every x' like its x: no fingerprint pair left")
    if class_names and len(class_names) != num_classes:
        raise UsageError(f"{len(class_names)} class names for a {num_classes}-class victim")
    spec = InputSpec(
        "NCHW", x.shape[1], x.shape[2], x.shape[3], tuple(mean), tuple(std), num_classes, tuple(class_names or ())
    )
    prov = {
        "created": now_utc(),
        "victim_sha256": file_sha256(victim_onnx),
        "victim_file": Path(victim_onnx).name,
        "pairs_offered": int(x.shape[0]),
        "pairs_dropped_same_label": int((~keep).sum()),
        "versions": versions(),
    }
    prov.update(provenance or {})
    pairs = {"x": x[keep], "x_prime": x_prime[keep], "y": y[keep], "y_prime": y_prime[keep]}
    path = bundle_io.write(
        out,
        pairs,
        method=method,
        rule=rule or rule_for(method),
        threshold=threshold,
        input_spec=spec,
        provenance=prov,
        key=key,
        null_model=null_model,
    )
    return Created(path, int(keep.sum()), int((~keep).sum()))
