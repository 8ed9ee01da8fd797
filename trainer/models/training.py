"""One training loop for every model gfaudit makes: pool models, attack recipes, demo suspects.

Targets are hard labels (cross-entropy) or soft posteriors (KL, probability extraction), fixed in
advance or, for extraction, asked of a teacher model on each augmented batch (``FitConfig.query``):
a pirate queries the victim's API with every image it trains on, not once per clean image.
Training checkpoints every epoch, so a killed run resumes from the last finished epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from gfaudit.audit.onnx_model import DeviceError
from gfaudit.files.atomic import atomic_path
from gfaudit_trainer.models import recipes
from gfaudit_trainer.progress import bar, log


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    lr: float = 0.05  # peak learning rate; under a summed-loss recipe (``fast``), per 1024 examples
    batch_size: int = 128
    weight_decay: float | None = 5e-4  # None: the recipe's
    augment: bool = True
    seed: int = 0
    query: str = ""  # "" fixed targets; "label" / "prob": the teacher labels each augmented batch
    recipe: str = "classic"  # a name in recipes.RECIPES
    temperature: float = 1.0  # soft targets: the student matches p**(1/T), renormalised, at temperature T
    bias_scaler: float | None = None  # None: the recipe's (how much faster BatchNorm shifts learn)

    @classmethod
    def fast(cls, epochs: int, arch: str = "airbench", seed: int = 0, query: str = "", **kwargs) -> FitConfig:
        """The fast recipe with the learning rate, batch size and BatchNorm-shift scale of ``arch``'s family."""
        defaults = {**recipes.fast_defaults(arch), "weight_decay": None}
        return cls(epochs=epochs, seed=seed, query=query, recipe="fast", **{**defaults, **kwargs})


QUERIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "label": lambda logits: logits.argmax(1),
    "prob": lambda logits: logits.float().softmax(1),
}


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random crop (pad 4) and horizontal flip, on a batch of [0,1] images: one offset per batch."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dx, dy = torch.randint(0, 9, (2,), generator=g).tolist()
    out = padded[:, :, dy : dy + h, dx : dx + w]
    flip = torch.rand(n, generator=g) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), out.flip(3), out)


def augment_per_image(x: torch.Tensor, g: torch.Generator, translate: int) -> torch.Tensor:
    """Flip and translate by up to ``translate`` pixels (reflect padding), drawn per image."""
    n, _, h, w = x.shape
    r = translate
    padded = F.pad(x, (r, r, r, r), mode="reflect")
    shifts = torch.randint(0, 2 * r + 1, (n, 2), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    out = torch.empty_like(x)
    code = shifts[:, 0] * (2 * r + 1) + shifts[:, 1]
    for c in code.unique().tolist():
        idx = (code == c).nonzero().flatten()
        dy, dx = divmod(c, 2 * r + 1)
        out[idx] = padded[idx, :, dy : dy + h, dx : dx + w]
    return torch.where(flip.view(-1, 1, 1, 1), out.flip(3), out)


def to_float(images_u8: torch.Tensor, device) -> torch.Tensor:
    return images_u8.to(device, non_blocking=True).float().div_(255.0).contiguous(memory_format=torch.channels_last)


def _loss(logits: torch.Tensor, target: torch.Tensor, recipe: recipes.Recipe, temperature: float) -> torch.Tensor:
    """Hard labels: cross-entropy (with the recipe's smoothing); soft: KL at ``temperature`` (x T)."""
    if not recipe.summed_loss and not recipe.label_smoothing and temperature == 1.0:  # classic, as it always was
        if target.dtype == torch.long:
            return F.cross_entropy(logits, target)
        return F.kl_div(F.log_softmax(logits, 1), target, reduction="batchmean")
    reduce = torch.sum if recipe.summed_loss else torch.mean
    if target.dtype == torch.long:
        return reduce(F.cross_entropy(logits, target, label_smoothing=recipe.label_smoothing, reduction="none"))
    if temperature != 1.0:
        target = (target.clamp_min(1e-12).log() / temperature).softmax(1)
    # x T (not Hinton's T^2): the gradient on the logits is then T * (q_T - p_T) / T = q_T - p_T, the
    # scale of cross-entropy's, for which the recipes' learning rates are tuned; with T^2 a student
    # at T=2 under the fast recipe diverged as its learning rate rose.
    per = F.kl_div(F.log_softmax(logits / temperature, 1), target, reduction="none").sum(1) * temperature
    return reduce(per)


def _param_groups(model: nn.Module, params: list[nn.Parameter], cfg: FitConfig, recipe: recipes.Recipe) -> list[dict]:
    """One group, or (fast) BatchNorm shifts apart: a higher learning rate, the same decay product."""
    if recipe.summed_loss:  # airbench: hyper-parameters per 1024 examples, independent of the momentum
        kilostep = 1024 * (1 + 1 / (1 - recipe.momentum))
        lr = cfg.lr / kilostep
        wd = (recipe.weight_decay if cfg.weight_decay is None else cfg.weight_decay) * cfg.batch_size / kilostep
    else:
        lr, wd = cfg.lr, recipe.weight_decay if cfg.weight_decay is None else cfg.weight_decay
        return [{"params": params, "lr": lr, "weight_decay": wd}]
    wanted = {id(p) for p in params}
    shifts = [
        m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.bias is not None and id(m.bias) in wanted
    ]
    shift_ids = {id(p) for p in shifts}
    rest = [p for p in params if id(p) not in shift_ids]
    lr_shift = lr * (recipe.bias_scaler if cfg.bias_scaler is None else cfg.bias_scaler)
    groups = [{"params": rest, "lr": lr, "weight_decay": wd / lr}]
    if shifts:
        groups.append({"params": shifts, "lr": lr_shift, "weight_decay": wd / lr_shift})
    return groups


def _inner(model: nn.Module) -> nn.Module:
    return getattr(model, "model", model)


def _data_init(model: nn.Module, images: torch.Tensor, device) -> bool:
    """Let a fresh model set data-dependent weights (AirbenchNet's whitening) from up to 5,000
    images; a model that already has them (fine-tuning a trained one) keeps its own. True if set."""
    inner = _inner(model)
    if not hasattr(inner, "data_init") or bool(inner.data_initialised):
        return False
    x = to_float(images[:5000], device)
    if hasattr(model, "mean"):
        x = (x - model.mean) / model.std
    inner.data_init(x)
    return True


class _Lookahead:
    """airbench's lookahead: every few steps the weights move to an average of their recent past."""

    def __init__(self, model: nn.Module):
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        state = model.state_dict()
        for k, ema in self.ema.items():
            ema.lerp_(state[k], 1 - decay)
            state[k].copy_(ema)


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
    ``teacher`` answers the queries when ``cfg.query`` is set (``targets`` are then unused and may be empty).
    """
    if cfg.query and (teacher is None or cfg.query not in QUERIES):
        raise ValueError(f"query {cfg.query!r} needs a teacher and one of {', '.join(QUERIES)}")
    recipe = recipes.get(cfg.recipe)
    if teacher is not None:
        teacher.eval()
    model.to(device).to(memory_format=torch.channels_last)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(_param_groups(model, params, cfg, recipe), lr=cfg.lr, momentum=recipe.momentum, nesterov=True)
    steps_per_epoch = max(1, math.ceil(len(images) / cfg.batch_size))
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: recipes.lr_factor(recipe, s, total))
    lookahead = _Lookahead(model) if recipe.lookahead_every else None
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        if lookahead is not None:
            lookahead.ema = state["lookahead"]
        start = int(state["epoch"])
        log(f"{desc}: resuming after epoch {start}/{cfg.epochs}")
    elif _data_init(model, images, device):
        if lookahead is not None:
            lookahead = _Lookahead(model)
    whiten = getattr(_inner(model), "whiten", None)
    g = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(start, cfg.epochs):
        g.manual_seed(cfg.seed * 1000 + epoch)
        if whiten is not None and recipe.whiten_bias_epochs and whiten.bias is not None:
            whiten.bias.requires_grad_(epoch < recipe.whiten_bias_epochs)
        model.train()
        perm = torch.randperm(len(images), generator=g)
        seen, loss_sum = 0, 0.0
        with bar(f"{desc} epoch {epoch + 1}/{cfg.epochs}", steps_per_epoch) as advance:
            for i in range(steps_per_epoch):
                idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
                xb = to_float(images[idx], device)
                if cfg.augment:
                    xb = augment_per_image(xb, g, recipe.translate) if recipe.per_image else augment(xb, g)
                if cfg.query:
                    assert teacher is not None  # checked before training starts
                    with torch.no_grad():
                        yb = QUERIES[cfg.query](teacher(xb))
                else:
                    yb = targets[idx].to(device)
                if perturb is not None:
                    xb = perturb(model, xb, yb)
                    model.train()
                loss = _loss(model(xb), yb, recipe, cfg.temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step = epoch * steps_per_epoch + i + 1
                if lookahead is not None and (step % recipe.lookahead_every == 0 or step == total):
                    lookahead.update(model, 1.0 if step == total else recipes.lookahead_decay(step, total))
                seen += len(idx)
                loss_sum += loss.item() * (1 if recipe.summed_loss else len(idx))
                advance()
        log(f"{desc}: epoch {epoch + 1}/{cfg.epochs} loss {loss_sum / max(seen, 1):.4f}")
        if checkpoint is not None:
            state = {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch + 1,
            }
            if lookahead is not None:
                state["lookahead"] = lookahead.ema
            with atomic_path(checkpoint, mode=0o600) as tmp:
                torch.save(state, tmp)
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device, batch_size: int = 500, probs: bool = False) -> torch.Tensor:
    """Labels (or softmax posteriors) of a [0,1]-input model on uint8 images, on the CPU."""
    model.eval()
    outs = []
    for i in range(0, len(images), batch_size):
        logits = model(to_float(images[i : i + batch_size], device)).float()
        outs.append((logits.softmax(1) if probs else logits.argmax(1)).cpu())
    return torch.cat(outs) if outs else torch.empty(0, dtype=torch.long)


@dataclass(frozen=True)
class Fidelity:
    """How a model's test labels relate to the truth and to the victim's."""

    accuracy: float
    agreement: float  # share of test images labelled like the victim
    on_errors: float  # share of the victim's own mistakes repeated (what a student can inherit)


def fidelity(pred: torch.Tensor, victim_pred: torch.Tensor, labels: torch.Tensor) -> Fidelity:
    """Accuracy, agreement with the victim, and agreement on the victim's errors, from labels."""
    wrong = victim_pred != labels
    on_errors = float((pred[wrong] == victim_pred[wrong]).float().mean()) if wrong.any() else 0.0
    return Fidelity(float((pred == labels).float().mean()), float((pred == victim_pred).float().mean()), on_errors)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device) -> float:
    return float((predict(model, images, device) == labels).float().mean())


def resolve_device(name: str) -> torch.device:
    """``auto`` takes CUDA when torch sees a GPU; ``cuda`` without one is an error, not a CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: torch sees no CUDA device")
    return torch.device(name)
