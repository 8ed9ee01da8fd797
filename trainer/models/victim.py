"""Load the victim: a state_dict (.pt with weights_only=True, or .safetensors) plus --arch, or a
whole model saved with torch.export (.pt2) or TorchScript, so that any architecture works."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn

from gfaudit.errors import UsageError
from gfaudit_trainer.models import zoo


class _Exported(nn.Module):
    """Wrap an ExportedProgram so it behaves like a module."""

    def __init__(self, program):
        super().__init__()
        self.inner = program.module()

    def forward(self, x):
        return self.inner(x)

    def train(self, mode: bool = True):
        # An exported program is frozen in the mode it was exported in (eval); it refuses train().
        self.training = mode
        return self


def load_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise UsageError(f"{path}: not a state_dict")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load(path: str | Path, arch: str | None, num_classes: int = 10) -> nn.Module:
    """The bare victim (normalised input -> logits), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: victim not found")
    try:
        if path.suffix == ".pt2":
            model: nn.Module = _Exported(torch.export.load(str(path)))
        elif path.suffix in (".pt", ".pth", ".safetensors") and arch:
            model = zoo.build(arch, num_classes)
            missing, unexpected = model.load_state_dict(load_state_dict(path), strict=False)
            if missing or unexpected:
                raise UsageError(
                    f"{path}: weights do not fit --arch {arch} "
                    f"(missing {len(missing)}, unexpected {len(unexpected)} keys)"
                )
        elif path.suffix in (".pt", ".pth", ".ts", ".torchscript"):
            try:
                with warnings.catch_warnings():  # TorchScript is deprecated upstream but still a format owners ship
                    warnings.simplefilter("ignore", FutureWarning)
                    model = torch.jit.load(str(path), map_location="cpu")
            except RuntimeError:
                raise UsageError(
                    f"{path}: a state_dict needs --arch; or save the model with torch.export (.pt2)"
                ) from None
        else:
            raise UsageError(f"{path}: unknown victim format (.pt/.safetensors with --arch, .pt2, TorchScript)")
    except UsageError:
        raise
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    except Exception as exc:
        raise UsageError(
            f"{path}: cannot load the victim ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    return model.eval()
