"""The trainer's context: the victim, the data and its partition, loaded once and passed down.

Every step below the orchestrator (pools, methods, selection, the library) takes a ``Context``; it
lives here, not in ``pipeline``, so that those modules can name the type without importing the
orchestrator that imports them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from gfaudit.bundle.normalization import resolve as resolve_norm
from gfaudit.bundle.provenance import file_sha256
from gfaudit_trainer.models import data as data_mod, zoo
from gfaudit_trainer.models.training import accuracy, predict, resolve_device
from gfaudit_trainer.models.victim import load as load_victim
from gfaudit_trainer.presets import Preset
from gfaudit_trainer.progress import log

__all__ = ["Context", "default_cache", "load_context", "runner_up_of", "seed_images", "seed_indices", "seed_order"]


@dataclass
class Context:
    """Everything loaded once and shared by train, library build and the benchmarks."""

    victim: torch.nn.Module  # Normalized victim: [0,1] pixels -> logits
    bare: torch.nn.Module
    victim_path: Path
    victim_sha256: str
    arch: str | None
    mean: list[float]
    std: list[float]
    normalization: str
    train: data_mod.Split
    test: data_mod.Split
    d_v: data_mod.Split
    d_p: data_mod.Split
    d_a: data_mod.Split
    device: torch.device
    cache: Path
    seed: int
    victim_accuracy: float

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)


def default_cache() -> Path:
    return Path(os.environ.get("GFAUDIT_CACHE") or Path.home() / ".cache" / "gfaudit")


def load_context(
    victim: str | Path,
    arch: str | None,
    normalization: str,
    data: str | None,
    preset: Preset,
    device: str,
    cache: Path | None,
    seed: int,
) -> Context:
    """Load the victim (wrapped in its normalisation), read and partition the data, measure the victim."""
    dev = resolve_device(device)
    cache = Path(cache) if cache else default_cache()
    mean, std = resolve_norm(normalization)
    bare = load_victim(victim, arch)
    model = zoo.Normalized(bare, mean, std).to(dev).eval()
    train = data_mod.load_split(data, "train", cache, preset.train_per_class)
    test = data_mod.load_split(data, "test", cache, preset.test_per_class)
    d_v, d_p, d_a = data_mod.partition(train, seed)
    acc = accuracy(model, test.images, test.labels, dev)
    log(f"victim {Path(victim).name}: test accuracy {acc:.1%} on {len(test)} images; device {dev}")
    return Context(
        model,
        bare,
        Path(victim),
        file_sha256(victim),
        arch,
        mean,
        std,
        normalization,
        train,
        test,
        d_v,
        d_p,
        d_a,
        dev,
        cache,
        seed,
        acc,
    )


SEED_OFFSET = 7  # the test split's permutation is seeded with ctx.seed + SEED_OFFSET


def seed_order(ctx: Context) -> torch.Tensor:
    """The seeded order of the test split that every candidate draw takes its seeds from."""
    g = torch.Generator().manual_seed(ctx.seed + SEED_OFFSET)
    return torch.randperm(len(ctx.test), generator=g)


def seed_indices(ctx: Context, preset: Preset) -> torch.Tensor:
    """Test-split indices of the candidate x of ``train`` (``seed_images``), in draw order."""
    return seed_order(ctx)[: preset.seeds]


def seed_images(ctx: Context, preset: Preset) -> data_mod.Split:
    """The candidate x of every method: a seeded draw from the test split (no pool model trained on them)."""
    return ctx.test.subset(seed_indices(ctx, preset))


def runner_up_of(ctx: Context, images_u8: torch.Tensor) -> torch.Tensor:
    """The target t of each image: the victim's second most likely class (the nearest wrong one)."""
    return predict(ctx.victim, images_u8, ctx.device, probs=True).topk(2, dim=1).indices[:, 1]
