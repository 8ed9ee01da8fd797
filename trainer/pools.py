"""Reference pools (paper 4.1), every model cached on disk so a killed run resumes.

positive: stand-ins for pirates, students trained on D_p with the victim's labels (label extraction;
          with ``PoolConfig.query`` the victim labels every augmented batch, as a pirate's API queries do);
negative: stand-ins for unrelated models, trained from scratch on D_v with the true labels.
Each pool has training models (used in the GAN losses) and validation models (selection and
threshold calibration only).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from . import zoo
from .data import Split
from .presets import PoolConfig, Preset
from .progress import log
from .training import FitConfig, accuracy, fit, predict

ROLES = ("positive", "negative")


@dataclass
class PoolModel:
    role: str
    split: str  # "train" or "val"
    index: int
    arch: str
    accuracy: float
    agreement: float  # share of test images labelled like the victim
    model: nn.Module

    def to_json(self) -> dict:
        return {"role": self.role, "split": self.split, "index": self.index, "arch": self.arch,
                "accuracy": round(self.accuracy, 4), "agreement_with_victim": round(self.agreement, 4)}


@dataclass
class Pools:
    models: list[PoolModel]

    def get(self, role: str, split: str) -> list[PoolModel]:
        return [m for m in self.models if m.role == role and m.split == split]

    def summary(self) -> list[dict]:
        return [m.to_json() for m in self.models]


def _seed(base: int, role: str, split: str, index: int) -> int:
    return base * 1009 + ROLES.index(role) * 101 + (0 if split == "train" else 53) + index


def model_name(role: str, split: str, index: int, arch: str, cfg: FitConfig) -> str:
    """File stem of a cached pool model: readable, plus a hash of everything that shapes its weights,
    so changing one pool's recipe retrains that pool only."""
    fields = {k: v for k, v in asdict(cfg).items() if not (k == "query" and v == "")}  # names from before ``query`` stay valid
    recipe = json.dumps({"arch": arch, **fields}, sort_keys=True)
    safe = arch.replace(":", "_").replace(",", "_").replace("=", "")
    return f"{role}-{split}{index}-{safe}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"


def save_model(model: nn.Module, path: Path, meta: dict) -> None:
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, path)
    meta_tmp = path.with_suffix(".json.tmp")
    meta_tmp.write_text(json.dumps(meta, indent=2))
    os.replace(meta_tmp, path.with_suffix(".json"))


def load_model(arch: str, path: Path, mean, std, num_classes: int) -> nn.Module:
    model = zoo.Normalized(zoo.build(arch, num_classes), mean, std)
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def train_or_load(arch: str, path: Path, images, targets, cfg: FitConfig, test: Split, victim_test: torch.Tensor,
                  mean, std, num_classes: int, device, desc: str, extra_meta: dict | None = None,
                  teacher: nn.Module | None = None):
    """A cached model and its meta, or train it (checkpointed per epoch) and cache it."""
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return load_model(arch, path, mean, std, num_classes).to(device), meta
    torch.manual_seed(cfg.seed)
    model = zoo.Normalized(zoo.build(arch, num_classes), mean, std)
    fit(model, images, targets, cfg, device, checkpoint=path.with_suffix(".ckpt"), teacher=teacher, desc=desc)
    acc = accuracy(model, test.images, test.labels, device)
    agree = float((predict(model, test.images, device) == victim_test).float().mean())
    meta = {"arch": arch, "accuracy": acc, "agreement_with_victim": agree, "epochs": cfg.epochs, "query": cfg.query or "fixed",
            "seed": cfg.seed, "train_images": len(images), **(extra_meta or {})}
    save_model(model.cpu(), path, meta)
    path.with_suffix(".ckpt").unlink(missing_ok=True)
    log(f"{desc}: test accuracy {acc:.1%}, agrees with victim on {agree:.1%}")
    return model.to(device).eval(), meta


def build(victim: nn.Module, d_v: Split, d_p: Split, test: Split, preset: Preset, cache: Path, device,
          mean, std, num_classes: int, seed: int) -> Pools:
    cache.mkdir(parents=True, exist_ok=True)
    victim_test = predict(victim, test.images, device)
    victim_dp = predict(victim, d_p.images, device)  # label extraction: the victim's labels on D_p
    sources = {"positive": (d_p.images, victim_dp), "negative": (d_v.images, d_v.labels)}
    configs: dict[str, PoolConfig] = {"positive": preset.positive, "negative": preset.negative}
    models = []
    for role in ROLES:
        images, targets = sources[role]
        pool = configs[role]
        for split, archs in (("train", pool.train_archs), ("val", pool.val_archs)):
            for i, arch in enumerate(archs):
                cfg = FitConfig(epochs=pool.epochs, lr=pool.lr, batch_size=preset.batch_size, seed=_seed(seed, role, split, i),
                                query=pool.query if role == "positive" else "")
                name = model_name(role, split, i, arch, cfg)
                model, meta = train_or_load(arch, cache / f"{name}.safetensors", images, targets, cfg, test,
                                            victim_test, mean, std, num_classes, device, desc=name,
                                            teacher=victim if cfg.query else None)
                models.append(PoolModel(role, split, i, arch, meta["accuracy"], meta["agreement_with_victim"], model))
    return Pools(models)
