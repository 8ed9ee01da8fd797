"""Export a bare classifier to a single-file ONNX with a dynamic batch, parity-checked against torch."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from gfaudit.errors import SuspectError
from gfaudit.files.atomic import atomic_path


def export(
    model: nn.Module, out: str | Path, *, shape=(3, 32, 32), opset: int = 17, check: bool = True, atol: float = 1e-3
) -> Path:
    """Write ``out`` atomically; raise if onnxruntime's labels or logits differ from torch's."""
    out = Path(out)
    model = model.eval().to("cpu").to(memory_format=torch.contiguous_format)
    example = torch.rand(2, *shape)
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                tmp,
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        if check:
            parity(model, tmp, shape=shape, atol=atol)
    return out


def parity(model: nn.Module, onnx_path: str | Path, *, shape=(3, 32, 32), atol: float = 1e-3, n: int = 16) -> float:
    from gfaudit.audit.onnx_model import _ort

    ort = _ort()  # a clear error when neither gfaudit[cpu] nor gfaudit[gpu] is installed
    x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    err = float(np.abs(got - ref).max())
    if err > atol or not (got.argmax(1) == ref.argmax(1)).all():
        raise SuspectError(f"ONNX export differs from torch (max |diff| {err:.2e} > {atol})")
    return err
