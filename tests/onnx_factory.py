"""Small ONNX classifiers built with the onnx helper API, with a numpy reference of what they compute.

Every variant computes logits = flatten(normalise(x)) @ W + b on the same weights, so a variant
that gfaudit feeds correctly gives exactly the reference labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def weights(seed: int = 0, classes: int = 10, c: int = 3, h: int = 32, w: int = 32):
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 0.05, size=(c * h * w, classes)).astype(np.float32)
    b = rng.normal(0, 0.1, size=(classes,)).astype(np.float32)
    return W, b


def reference_labels(x_uint8: np.ndarray, W, b, mean=MEAN, std=STD) -> np.ndarray:
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    z = ((x_uint8.astype(np.float32) / 255.0) - m) / s
    return (z.reshape(z.shape[0], -1) @ W + b).argmax(1)


def build(
    path: Path,
    W,
    b,
    *,
    layout="NCHW",
    dtype="float32",
    batch=None,
    softmax=False,
    extra_input=False,
    ir_version=8,
    out_rank=2,
    mean=MEAN,
    std=STD,
    c=3,
    h=32,
    w=32,
) -> Path:
    """Write a classifier variant; uint8 variants normalise inside the graph."""
    n = batch if batch else "N"
    shape = [n, c, h, w] if layout == "NCHW" else [n, h, w, c]
    elem = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "uint8": TensorProto.UINT8}[dtype]
    inputs = [helper.make_tensor_value_info("image", elem, shape)]
    nodes, inits = (
        [],
        [
            numpy_helper.from_array(W, "W"),
            numpy_helper.from_array(b, "B"),
            numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape"),
        ],
    )
    cur = "image"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [cur], ["nchw"], perm=[0, 3, 1, 2]))
        cur = "nchw"
    if dtype != "float32":
        nodes.append(helper.make_node("Cast", [cur], ["as_float"], to=TensorProto.FLOAT))
        cur = "as_float"
    if dtype == "uint8":
        inits += [
            numpy_helper.from_array(np.array(255.0, np.float32), "c255"),
            numpy_helper.from_array(np.asarray(mean, np.float32).reshape(1, -1, 1, 1), "mean"),
            numpy_helper.from_array(np.asarray(std, np.float32).reshape(1, -1, 1, 1), "std"),
        ]
        nodes += [
            helper.make_node("Div", [cur], ["scaled"]),
            helper.make_node("Sub", ["scaled", "mean"], ["centred"]),
            helper.make_node("Div", ["centred", "std"], ["normed"]),
        ]
        nodes[-3].input.append("c255")
        cur = "normed"
    nodes += [
        helper.make_node("Reshape", [cur, "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
    ]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", [out], ["probs"], axis=1))
        out = "probs"
    if out_rank == 3:
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
        nodes.append(helper.make_node("Unsqueeze", [out, "axis1"], ["out3"]))
        out = "out3"
    classes = W.shape[1]
    out_shape = [n, classes] if out_rank == 2 else [n, 1, classes]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("temperature", TensorProto.FLOAT, [1]))
    graph = helper.make_graph(
        nodes, "clf", inputs, [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = ir_version
    if ir_version <= 10:
        onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def random_pairs(k: int = 40, seed: int = 1, c: int = 3, h: int = 32, w: int = 32, eps: int = 12):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(k, c, h, w), dtype=np.uint8)
    noise = rng.integers(-eps, eps + 1, size=x.shape)
    xp = np.clip(x.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return x, xp
