"""Datasets as uint8 tensors [N,3,32,32] plus int64 labels, decoded once and cached.

Sources, in order: an ImageFolder tree (``train/``, ``test/`` with one folder per class), a
torchvision CIFAR-10 folder (``cifar-10-batches-py``), or, with no path, torchvision's download of
the real CIFAR-10. The defender's half D_v and the attacker's quarters D_p (pools) and D_a (library) come from one
seeded permutation.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gfaudit.errors import UsageError
from gfaudit.files.atomic import atomic_path
from gfaudit_trainer.progress import log

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8 [N,3,H,W]
    labels: torch.Tensor  # int64 [N]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx) -> Split:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Split(self.images[idx], self.labels[idx], self.classes)


class DataError(UsageError):
    """The data path is not a dataset gfaudit can read."""


def _decode_imagefolder(root: Path, per_class: int | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from PIL import Image

    classes = tuple(sorted(d.name for d in root.iterdir() if d.is_dir()))
    if not classes:
        raise DataError(f"{root}: no class folders")
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for p in files[:per_class]:
            with Image.open(p) as im:
                images.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            labels.append(label)
    return np.stack(images).transpose(0, 3, 1, 2).copy(), np.asarray(labels, np.int64), classes


def _torchvision_cifar(root: Path, train: bool, download: bool):
    from torchvision.datasets import CIFAR10

    ds = CIFAR10(str(root), train=train, download=download)
    return ds.data.transpose(0, 3, 1, 2).copy(), np.asarray(ds.targets, np.int64), tuple(ds.classes)


def _download_cifar(root: Path, train: bool):
    """torchvision's CIFAR-10 download; without a network, one line saying what to pass instead."""
    try:
        return _torchvision_cifar(root, train, download=True)
    except (OSError, RuntimeError) as exc:  # urllib's URLError is an OSError; a corrupt download a RuntimeError
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"no --data given and CIFAR-10 could not be downloaded ({reason}); pass --data FOLDER "
            "(train/<class>/*.jpg and test/<class>/*.jpg, or a folder holding cifar-10-batches-py/)"
        ) from exc


def load_split(data: str | os.PathLike | None, split: str, cache_dir: Path, per_class: int | None = None) -> Split:
    """The ``train`` or ``test`` split, at most ``per_class`` images per class (in file order)."""
    if data is None:
        root = cache_dir / "cifar10-download"
        key = f"download-{split}-{per_class}"
    else:
        root = Path(data)
        if not root.is_dir():
            raise DataError(f"{root}: not a folder")
        key = hashlib.sha256(f"{root.resolve()}|{split}|{per_class}".encode()).hexdigest()[:16]
    cache = cache_dir / "data" / f"{key}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return Split(torch.from_numpy(z["images"]), torch.from_numpy(z["labels"]), tuple(z["classes"].tolist()))
    if data is None:
        x, y, classes = _download_cifar(root, split == "train")
    elif (root / "cifar-10-batches-py").is_dir():
        x, y, classes = _torchvision_cifar(root, split == "train", download=False)
    elif (root / split).is_dir():
        log(f"decoding {root / split} (cached afterwards)")
        x, y, classes = _decode_imagefolder(root / split, per_class)
    else:
        raise DataError(f"{root}: expected {split}/<class>/*.jpg or cifar-10-batches-py/")
    if per_class is not None and len(y) > per_class * len(classes):
        keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(len(classes))])
        x, y = x[keep], y[keep]
    with atomic_path(cache) as tmp:
        np.savez(tmp, images=x, labels=y, classes=np.asarray(classes))
    return Split(torch.from_numpy(x), torch.from_numpy(y), classes)


def partition(train: Split, seed: int) -> tuple[Split, Split, Split]:
    """(D_v, D_p, D_a) from one seeded permutation of the training split.

    D_v (half): the defender's data; negative pool models train on it.
    D_p (a quarter): attacker data the positive pool's extraction students use.
    D_a (a quarter): attacker data reserved for the evaluation library, so that no suspect shares a
    training subset with a model that built the fingerprints.
    """
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(train), generator=g)
    half, three_q = len(train) // 2, (3 * len(train)) // 4
    return train.subset(perm[:half]), train.subset(perm[half:three_q]), train.subset(perm[three_q:])
