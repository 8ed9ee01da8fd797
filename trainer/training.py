"""One training loop for every model gfaudit makes: pool models, attack recipes, demo suspects.

Targets are hard labels (cross-entropy) or soft posteriors (KL, probability extraction), fixed in
advance or, for extraction, asked of a teacher model on each augmented batch (``FitConfig.query``):
a pirate queries the victim's API with every image it trains on, not once per clean image.
Training checkpoints every epoch, so a killed run resumes from the last finished epoch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from gfaudit.onnx_model import DeviceError

from .progress import bar, log


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    lr: float = 0.05
    batch_size: int = 128
    weight_decay: float = 5e-4
    augment: bool = True
    seed: int = 0
    query: str = ""  # "" fixed targets; "label" / "prob": the teacher labels each augmented batch


QUERIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "label": lambda logits: logits.argmax(1),
    "prob": lambda logits: logits.float().softmax(1),
}


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random crop (pad 4) and horizontal flip, on a batch of [0,1] images."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dx, dy = torch.randint(0, 9, (2,), generator=g).tolist()
    out = padded[:, :, dy:dy + h, dx:dx + w]
    flip = torch.rand(n, generator=g) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), out.flip(3), out)


def to_float(images_u8: torch.Tensor, device) -> torch.Tensor:
    return images_u8.to(device, non_blocking=True).float().div_(255.0).contiguous(memory_format=torch.channels_last)


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if target.dtype == torch.long:
        return F.cross_entropy(logits, target)
    return F.kl_div(F.log_softmax(logits, 1), target, reduction="batchmean")


def fit(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    cfg: FitConfig,
    device: torch.device,
    *,
    params: Iterable[nn.Parameter] | None = None,
    perturb: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    checkpoint: Path | None = None,
    teacher: nn.Module | None = None,
    desc: str = "train",
) -> nn.Module:
    """Train ``model`` (which takes [0,1] pixels) on uint8 ``images`` toward ``targets``.

    ``params`` restricts what is trained (last-layer fine-tuning); ``perturb`` maps a batch to
    adversarial inputs (adversarial training); ``checkpoint`` makes the run resumable per epoch;
    ``teacher`` answers the queries when ``cfg.query`` is set (``targets`` are then unused).
    """
    if cfg.query and (teacher is None or cfg.query not in QUERIES):
        raise ValueError(f"query {cfg.query!r} needs a teacher and one of {', '.join(QUERIES)}")
    if teacher is not None:
        teacher.eval()
    model.to(device).to(memory_format=torch.channels_last)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(images) / cfg.batch_size))
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = int(state["epoch"])
        log(f"{desc}: resuming after epoch {start}/{cfg.epochs}")
    g = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(start, cfg.epochs):
        g.manual_seed(cfg.seed * 1000 + epoch)
        model.train()
        perm = torch.randperm(len(images), generator=g)
        seen, loss_sum = 0, 0.0
        with bar(f"{desc} epoch {epoch + 1}/{cfg.epochs}", steps_per_epoch) as advance:
            for i in range(steps_per_epoch):
                idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                xb = to_float(images[idx], device)
                yb = targets[idx].to(device)
                if cfg.augment:
                    xb = augment(xb, g)
                if cfg.query:
                    with torch.no_grad():
                        yb = QUERIES[cfg.query](teacher(xb))
                if perturb is not None:
                    xb = perturb(model, xb, yb)
                    model.train()
                loss = _loss(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                seen += len(idx)
                loss_sum += loss.item() * len(idx)
                advance()
        log(f"{desc}: epoch {epoch + 1}/{cfg.epochs} loss {loss_sum / max(seen, 1):.4f}")
        if checkpoint is not None:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "epoch": epoch + 1}, tmp)
            os.replace(tmp, checkpoint)
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device, batch_size: int = 500, probs: bool = False) -> torch.Tensor:
    """Labels (or softmax posteriors) of a [0,1]-input model on uint8 images, on the CPU."""
    model.eval()
    outs = []
    for i in range(0, len(images), batch_size):
        logits = model(to_float(images[i:i + batch_size], device)).float()
        outs.append((logits.softmax(1) if probs else logits.argmax(1)).cpu())
    return torch.cat(outs) if outs else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device) -> float:
    return float((predict(model, images, device) == labels).float().mean())


def resolve_device(name: str) -> torch.device:
    """``auto`` takes CUDA when torch sees a GPU; ``cuda`` without one is an error, not a CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: torch sees no CUDA device")
    return torch.device(name)
