"""What the runtime can really do: onnxruntime build, providers that start, conflicting installs."""

from __future__ import annotations

from importlib import metadata


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _tiny_model() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "doctor", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def diagnose() -> dict:
    """A dict of findings; ``problems`` lists what would make ``check`` fail or surprise."""
    import numpy as np

    from gfaudit.audit.onnx_model import _ort, cuda_driver_present
    from gfaudit.files.streams import stdout_to_stderr

    with stdout_to_stderr():  # provider libraries print while they load; stdout is for the report
        return _diagnose(np, _ort(), cuda_driver_present)


def _diagnose(np, ort, cuda_driver_present) -> dict:
    report = {
        "gfaudit": _installed("gfaudit"),
        "onnxruntime_module": ort.__version__,
        "packages": {n: _installed(n) for n in ("onnxruntime", "onnxruntime-gpu", "torch")},
        "available_providers": ort.get_available_providers(),
        "cuda_driver": cuda_driver_present(),
        "working_providers": [],
        "problems": [],
    }
    if report["packages"]["onnxruntime"] and report["packages"]["onnxruntime-gpu"]:
        report["problems"].append(
            "both onnxruntime and onnxruntime-gpu are installed; they overwrite each other "
            "(pip uninstall -y onnxruntime onnxruntime-gpu, then install one)"
        )
    model = _tiny_model()
    feed = {"x": np.ones((1, 2), np.float32)}
    for provider in report["available_providers"]:
        if provider not in ("CPUExecutionProvider", "CUDAExecutionProvider"):
            continue
        if provider == "CUDAExecutionProvider" and not report["cuda_driver"]:
            continue
        try:
            sess = ort.InferenceSession(model, providers=[provider])
            if sess.get_providers()[0] == provider:
                sess.run(None, feed)
                report["working_providers"].append(provider)
        except Exception as exc:  # a provider that fails to start is a finding, not a crash
            report["problems"].append(f"{provider} failed: {str(exc).splitlines()[0][:200]}")
    if "CPUExecutionProvider" not in report["working_providers"]:
        report["problems"].append("the CPU provider does not run a trivial model")
    return report
