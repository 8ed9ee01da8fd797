"""ONNX suspects that misbehave on purpose: string or NaN outputs, a Loop that never ends.

Each takes the same input as onnx_factory's classifiers ([N,3,32,32] float32) so that gfaudit plans
it like a normal model and only the misbehaviour differs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(path: Path, nodes, out_name: str, out_type, inits, opset: int = 13) -> Path:
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])]
    outputs = [helper.make_tensor_value_info(out_name, out_type, ["N", 10])]
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _logits(W, b):
    inits = [
        numpy_helper.from_array(W, "W"),
        numpy_helper.from_array(b, "B"),
        numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("Reshape", ["image", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
    ]
    return nodes, inits


def string_outputs(path: Path, W, b) -> Path:
    nodes, inits = _logits(W, b)
    nodes.append(helper.make_node("Cast", ["logits"], ["text"], to=TensorProto.STRING))
    return _save(path, nodes, "text", TensorProto.STRING, inits)


def nan_outputs(path: Path, W, b, value: float = float("nan")) -> Path:
    nodes, inits = _logits(W, b)
    inits.append(numpy_helper.from_array(np.array(value, np.float32), "poison"))
    nodes.append(helper.make_node("Mul", ["logits", "poison"], ["out"]))
    return _save(path, nodes, "out", TensorProto.FLOAT, inits)


def endless_loop(path: Path, W, b, trips: int = 2**62) -> Path:
    """Logits plus the result of a Loop over ``trips`` iterations that each add 0."""
    nodes, inits = _logits(W, b)
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.zeros(1, np.float32))),
            helper.make_node("Add", ["v_in", "zero"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1]),
        ],
    )
    inits += [
        numpy_helper.from_array(np.array(trips, np.int64), "trips"),
        numpy_helper.from_array(np.array(True), "cond"),
        numpy_helper.from_array(np.zeros(1, np.float32), "v0"),
    ]
    nodes += [
        helper.make_node("Loop", ["trips", "cond", "v0"], ["v_final"], body=body),
        helper.make_node("Add", ["logits", "v_final"], ["out"]),
    ]
    return _save(path, nodes, "out", TensorProto.FLOAT, inits)


def check_valid(path: Path) -> None:
    onnx.checker.check_model(onnx.load(str(path)))
