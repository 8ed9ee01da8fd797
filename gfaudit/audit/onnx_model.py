"""Run any ONNX classifier label-only through onnxruntime, adapting to what the model declares.

Handles: the input name read from the session; a fixed batch dimension (inputs are chunked and the
last chunk padded); NCHW or NHWC layout; float32, float16 or uint8 input (uint8 models get the raw
pixels and must normalise inside, float models get ``(x/255 - mean)/std``); logits or
probabilities as a [B, num_classes] output. Anything else raises SuspectError with one line.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

import numpy as np

from gfaudit.errors import GfauditError, SuspectError
from gfaudit.files.safe_read import max_model_bytes, require_regular
from gfaudit.files.streams import stdout_to_stderr

DEVICES = ("auto", "cpu", "cuda")
# A fixed batch dimension is honoured by padding the last chunk; a model that declares a batch larger
# than both the images to label and this limit is refused instead of padded (no 2**31-image buffers).
MAX_PADDED_BATCH = 1024
_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}


class DeviceError(GfauditError):
    """The requested execution device is not available (exit 4)."""

    exit_code = 4


class RuntimeMissing(GfauditError):
    """No ONNX runtime is installed: the auditor leaves the choice of build to an extra (exit 4)."""

    exit_code = 4


RUNTIME_HINT = (
    "no ONNX runtime is installed: pip install 'gfaudit[cpu]' (onnxruntime), "
    "or 'gfaudit[gpu]' (onnxruntime-gpu) on an NVIDIA host; never both"
)


def require_runtime() -> None:
    """Raise RuntimeMissing (exit 4) unless an ONNX runtime can be imported: checked once in the
    auditor's own process, before any suspect is handed to a worker."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        raise RuntimeMissing(RUNTIME_HINT)


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise RuntimeMissing(RUNTIME_HINT) from None

    ort.set_default_logger_severity(3)
    return ort


def cuda_driver_present() -> bool:
    """True when the NVIDIA driver library can be loaded (so trying the CUDA provider makes sense)."""
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def _preload_cuda_libraries(ort) -> None:
    """Let pip-installed CUDA/cuDNN wheels (onnxruntime-gpu[cuda,cudnn]) be found; harmless when absent."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception:  # missing wheels: the provider check below reports it
            pass


def providers_for(device: str) -> list[str]:
    ort = _ort()
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose auto, cpu or cuda")
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda":
        if not has_cuda:
            raise DeviceError("--device cuda: this onnxruntime build has no CUDA provider (install onnxruntime-gpu)")
        _preload_cuda_libraries(ort)
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto" and has_cuda and cuda_driver_present():
        _preload_cuda_libraries(ort)
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@dataclass(frozen=True)
class InputPlan:
    name: str
    layout: str  # NCHW or NHWC
    dtype: type
    batch: int | None  # fixed batch size, or None when dynamic


def _dim(value) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def not_onnx(path: str | os.PathLike) -> str | None:
    """What a file that onnxruntime refused looks like, when it is a PyTorch or safetensors model
    (the usual mix-up): its first bytes, then its suffix. None when it looks like nothing known."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04"):
        return "PyTorch checkpoint (zip: torch.save, TorchScript or torch.export)"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickled PyTorch checkpoint"
    if len(head) >= 10 and head[8:10] == b'{"' and int.from_bytes(head[:8], "little") < (1 << 27):
        return "safetensors file"
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in (".pt", ".pth", ".pt2", ".ckpt", ".bin", ".safetensors"):
        return f"{suffix} file"
    return None


class OnnxClassifier:
    """One onnxruntime session over a classifier, labelling uint8 NCHW images."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        device: str = "auto",
        channels: int = 3,
        height: int = 32,
        width: int = 32,
        num_classes: int | None = None,
        threads: int = 0,
    ):
        ort = _ort()
        self.path = str(path)
        self.num_classes = num_classes
        require_regular(self.path, max_model_bytes(), "model", SuspectError)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        # Provider libraries print to stdout while they load; keep the report's stream clean.
        with stdout_to_stderr():
            providers = providers_for(device)
            try:
                self.session = ort.InferenceSession(self.path, sess_options=opts, providers=providers)
            except Exception as exc:  # onnxruntime raises several unrelated types for bad files
                kind = not_onnx(self.path)
                if kind:
                    raise SuspectError(
                        f"{self.path}: a {kind}, not an ONNX model; export it first: "
                        f"gfaudit export-onnx {self.path} --arch ARCH -o model.onnx (needs gfaudit[train])"
                    ) from None
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise SuspectError(f"{self.path}: onnxruntime cannot load the model: {msg[:300]}") from None
        active = self.session.get_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in active:
            raise DeviceError(
                "--device cuda: the CUDA provider failed to start (no GPU, driver or CUDA/cuDNN libraries)"
            )
        self.provider = active[0]
        self.plan = self._plan(channels, height, width)

    def _plan(self, c: int, h: int, w: int) -> InputPlan:
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise SuspectError(
                f"{self.path}: the model has {len(inputs)} inputs; gfaudit feeds exactly one image tensor"
            )
        inp = inputs[0]
        if inp.type not in _INPUT_TYPES:
            raise SuspectError(f"{self.path}: input type {inp.type} is not supported (float32, float16 or uint8)")
        shape = list(inp.shape) if inp.shape is not None else []
        if len(shape) != 4:
            raise SuspectError(f"{self.path}: input {inp.name!r} has rank {len(shape)}; expected a 4-D image batch")
        dims = [_dim(d) for d in shape]
        fits = {
            "NCHW": all(d is None or d == want for d, want in zip(dims[1:], (c, h, w), strict=True)),
            "NHWC": all(d is None or d == want for d, want in zip(dims[1:], (h, w, c), strict=True)),
        }
        # A declared channel axis decides; with both axes symbolic, NCHW (the torch export default).
        layout = "NHWC" if dims[3] == c and dims[1] != c else "NCHW"
        if not fits[layout]:
            raise SuspectError(f"{self.path}: input shape {shape} fits neither [N,{c},{h},{w}] nor [N,{h},{w},{c}]")
        outputs = self.session.get_outputs()
        if not outputs:
            raise SuspectError(f"{self.path}: the model has no output")
        return InputPlan(inp.name, layout, _INPUT_TYPES[inp.type], dims[0])

    def _prepare(self, x_uint8: np.ndarray, mean, std) -> np.ndarray:
        if self.plan.dtype is np.uint8:
            arr = x_uint8
        else:
            m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
            s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
            arr = ((x_uint8.astype(np.float32) / 255.0) - m) / s
        if self.plan.layout == "NHWC":
            arr = arr.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(arr.astype(self.plan.dtype, copy=False))

    def logits(self, x_uint8: np.ndarray, mean, std, batch_size: int = 256) -> np.ndarray:
        """The first output for uint8 NCHW images, as float32 [K, num_classes]."""
        arr = self._prepare(x_uint8, mean, std)
        n = arr.shape[0]
        if self.plan.batch and self.plan.batch > max(n, MAX_PADDED_BATCH):
            raise SuspectError(
                f"{self.path}: the model declares a fixed batch of {self.plan.batch}; gfaudit pads "
                f"at most to {max(n, MAX_PADDED_BATCH)} images"
            )
        step = self.plan.batch or batch_size
        outs = []
        for start in range(0, n, step):
            chunk = arr[start : start + step]
            real = chunk.shape[0]
            if self.plan.batch and real < step:
                pad = np.repeat(chunk[-1:], step - real, axis=0)
                chunk = np.concatenate([chunk, pad])
            try:
                out = self.session.run(None, {self.plan.name: chunk})[0]
            except Exception as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise SuspectError(f"{self.path}: inference failed: {msg[:300]}") from None
            out = np.asarray(out)
            if out.dtype.kind not in "fiub":
                raise SuspectError(f"{self.path}: the first output is not numeric ({out.dtype} values, e.g. strings)")
            if out.ndim != 2 or out.shape[0] != chunk.shape[0]:
                raise SuspectError(f"{self.path}: output shape {list(out.shape)} is not [batch, classes]")
            if self.num_classes is not None and out.shape[1] != self.num_classes:
                raise SuspectError(
                    f"{self.path}: the model has {out.shape[1]} classes; the bundle has {self.num_classes}"
                )
            out = out[:real].astype(np.float32)
            if not np.isfinite(out).all():
                raise SuspectError(f"{self.path}: the model outputs NaN or infinite values")
            outs.append(out)
        return np.concatenate(outs)

    def labels(self, x_uint8: np.ndarray, mean, std) -> np.ndarray:
        return self.logits(x_uint8, mean, std).argmax(axis=1).astype(np.int64)
