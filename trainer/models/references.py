"""Reference models: independently trained models of the same task that the owner collected (public
checkpoints exported to ONNX), used label-only through the auditor's ONNX runner.

A negative pool trained on a laptop is weaker than the models that exist in the world; public
checkpoints are how an owner's negatives get as strong as them. References join the negative
pool in two of its roles, never in the GAN (they are not differentiable, and must stay unseen by
it): sorted by path, the 1st, 3rd, ... become calibration negatives and the 2nd, 4th, ...
selection negatives, so that a single reference already sets the threshold. Roles, files and
sha256 digests are recorded in the signed provenance.

A reference is whatever file the owner downloaded, as untrusted as any suspect: it runs in the
auditor's isolated worker under the same time limit (``train --timeout``), never in the trainer.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from gfaudit.audit.isolation import DEFAULT_TIMEOUT, Job, check_timeout, run_isolated, run_job
from gfaudit.audit.suspects import folder_models
from gfaudit.bundle.provenance import file_sha256
from gfaudit.errors import UsageError
from gfaudit_trainer.models.pools import PoolModel, PoolRecord
from gfaudit_trainer.models.training import fidelity, predict

ROLE_ORDER = ("calib", "val")  # the split each reference takes, in turn
INDEX_BASE = 1000  # pool indices of references start here, apart from trained pool models


class OnnxReference(nn.Module):
    """An ONNX classifier that takes [0,1] pixels like a pool model and returns its logits (or
    probabilities: only the arg-max is used). Pixels are rounded to 8 bits, as every image the
    selection labels is 8-bit already."""

    def __init__(self, path: Path, mean, std, num_classes: int, timeout: float | None = DEFAULT_TIMEOUT):
        super().__init__()
        self.path = path
        self.mean, self.std = tuple(mean), tuple(std)
        self.num_classes = num_classes
        self.timeout = check_timeout(timeout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of one batch, from an isolated worker (SuspectError, exit 4, past the time limit)."""
        u8 = torch.round(x.detach().float().clamp(0, 1) * 255).to(torch.uint8).contiguous().cpu().numpy()
        c, h, w = u8.shape[1:]
        job = Job(str(self.path), u8, u8[:0], self.mean, self.std, c, h, w, self.num_classes, "cpu", logits=True)
        labels = run_job(job) if self.timeout is None else run_isolated(job, self.timeout)
        assert labels.logits_x is not None
        return torch.from_numpy(np.ascontiguousarray(labels.logits_x, dtype=np.float32))


def _regular(path: Path) -> Path:
    """The resolved path of a readable regular file; UsageError (exit 2) naming it otherwise."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UsageError(f"--reference {path}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"--reference {path}: not a regular file")
    return Path(os.path.realpath(path))


def expand(paths: list[Path]) -> list[Path]:
    """Files as given, folders as their ``*.onnx`` entries (the auditor's folder rule: every one that
    is not a folder counts, so a dangling link or a link loop is an error, never silently skipped);
    sorted, duplicates removed. Anything that is not a readable regular file is a usage error."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += [Path(f) for f in folder_models(p, "--reference folder")]
        elif os.path.lexists(p):
            found.append(p)
        else:
            raise UsageError(f"--reference {p}: no such file or folder")
    unique = sorted({_regular(f) for f in found})
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
    timeout: float | None = DEFAULT_TIMEOUT,
) -> list[PoolModel]:
    """Each reference as a negative pool model in its role, with its accuracy and fidelity measured;
    each runs isolated under ``timeout`` seconds per batch (None: in this process)."""
    models = []
    for i, path in enumerate(expand(paths)):
        model = OnnxReference(path, mean, std, num_classes, timeout)
        fid = fidelity(predict(model, test_images, "cpu"), victim_test, test_labels)
        meta = PoolRecord(
            source="reference", file=path.name, sha256=file_sha256(path), agreement_on_victim_errors=fid.on_errors
        )
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
