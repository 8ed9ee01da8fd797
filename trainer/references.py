"""Reference models: independently trained models of the same task that the owner collected (public
checkpoints exported to ONNX), used label-only through the auditor's ONNX runner.

A negative pool trained on a laptop is weaker than the models that exist in the world; public
checkpoints are how an owner's negatives get as strong as them. References join the negative
pool in two of its roles, never in the GAN (they are not differentiable, and must stay unseen by
it): sorted by path, the 1st, 3rd, ... become calibration negatives and the 2nd, 4th, ...
selection negatives, so that a single reference already sets the threshold. Roles, files and
sha256 digests are recorded in the signed provenance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from gfaudit.errors import UsageError
from gfaudit.onnx_model import OnnxClassifier
from gfaudit.provenance import file_sha256

from .pools import PoolModel
from .training import fidelity, predict

ROLE_ORDER = ("calib", "val")  # the split each reference takes, in turn
INDEX_BASE = 1000  # pool indices of references start here, apart from trained pool models


class OnnxReference(nn.Module):
    """An ONNX classifier that takes [0,1] pixels like a pool model and returns its logits (or
    probabilities: only the arg-max is used). Pixels are rounded to 8 bits, as every image the
    selection labels is 8-bit already."""

    def __init__(self, path: Path, mean, std, num_classes: int):
        super().__init__()
        self.path = path
        self.mean, self.std = list(mean), list(std)
        self.classifier = OnnxClassifier(path, device="cpu", num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u8 = torch.round(x.detach().float().clamp(0, 1) * 255).to(torch.uint8).contiguous().cpu().numpy()
        return torch.from_numpy(np.ascontiguousarray(self.classifier.logits(u8, self.mean, self.std), dtype=np.float32))


def expand(paths: list[Path]) -> list[Path]:
    """Files as given, folders as their ``*.onnx`` files; sorted, duplicates removed."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(p.glob("*.onnx"))
        elif p.is_file():
            found.append(p)
        else:
            raise UsageError(f"--reference {p}: no such file or folder")
    unique = sorted({f.resolve() for f in found})
    if paths and not unique:
        raise UsageError("--reference: no .onnx file found")
    return unique


def load(
    paths: list[Path],
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    victim_test: torch.Tensor,
    mean,
    std,
    num_classes: int,
) -> list[PoolModel]:
    """Each reference as a negative pool model in its role, with its accuracy and fidelity measured."""
    models = []
    for i, path in enumerate(expand(paths)):
        model = OnnxReference(path, mean, std, num_classes)
        fid = fidelity(predict(model, test_images, "cpu"), victim_test, test_labels)
        meta = {
            "source": "reference",
            "file": path.name,
            "sha256": file_sha256(path),
            "agreement_on_victim_errors": fid.on_errors,
        }
        models.append(
            PoolModel(
                "negative",
                ROLE_ORDER[i % 2],
                INDEX_BASE + i,
                f"reference:{path.name}",
                fid.accuracy,
                fid.agreement,
                model,
                meta,
            )
        )
    return models
