"""Other people's copies of the owner's data: the re-encodings a pool model may be trained on.

Independent models in the world were not trained on the owner's exact files: their copies of the
dataset went through other encoders, resizers and filters. A negative pool trained only on the
owner's bytes differs from the victim in seed and architecture alone, and a GAN can then learn
whatever the owner's pipeline leaves in every model trained on it (measured: a fingerprint of a
lossless-trained victim built with JPEG-trained pools told the two data worlds apart, not pirates
from independent models). A variant is applied once to the uint8 training images of one pool
model, before augmentation; the test split the victim and pools are measured on is never changed.

Each entry of :data:`VARIANTS` maps a name (used in pool member specs after ``~``, e.g.
``"resnet20~jpeg50"``) to a function uint8 [N,3,H,W] -> uint8 [N,3,H,W] and a one-line description
recorded in the signed provenance.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["VARIANTS", "Variant", "apply", "get"]


def _jpeg(quality: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Re-encode every image as a baseline JPEG at ``quality`` (4:2:0), as another copy of the data
    saved by another tool would be."""

    def run(images: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        out = np.empty_like(images.numpy())
        for i, img in enumerate(images.numpy().transpose(0, 2, 3, 1)):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=quality)
            buf.seek(0)
            with Image.open(buf) as im:
                out[i] = np.asarray(im.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
        return torch.from_numpy(out)

    return run


def _gaussian_blur(sigma: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """A mild 5x5 Gaussian blur (reflect padding), as a resize down and up or a denoiser leaves."""

    def run(images: torch.Tensor) -> torch.Tensor:
        r = torch.arange(-2, 3, dtype=torch.float32)
        k1 = torch.exp(-(r**2) / (2 * sigma**2))
        k1 = k1 / k1.sum()
        kernel = (k1[:, None] * k1[None, :]).expand(3, 1, 5, 5).contiguous()
        out = []
        for chunk in images.split(4096):
            x = F.pad(chunk.float(), (2, 2, 2, 2), mode="reflect")
            out.append(F.conv2d(x, kernel, groups=3).round_().clamp_(0, 255).to(torch.uint8))
        return torch.cat(out)

    return run


def _resize(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Down to ``size`` pixels and back (bilinear, antialiased): a copy once stored smaller."""

    def run(images: torch.Tensor) -> torch.Tensor:
        out = []
        h, w = images.shape[-2:]
        for chunk in images.split(4096):
            x = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
            out.append(x.round_().clamp_(0, 255).to(torch.uint8))
        return torch.cat(out)

    return run


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    fn: Callable[[torch.Tensor], torch.Tensor]


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("own", "the owner's files as they are", lambda images: images),
        Variant("jpeg90", "re-encoded as JPEG at quality 90", _jpeg(90)),
        Variant("jpeg70", "re-encoded as JPEG at quality 70", _jpeg(70)),
        Variant("jpeg50", "re-encoded as JPEG at quality 50", _jpeg(50)),
        Variant("blur", "Gaussian blur, sigma 0.5 px (5x5)", _gaussian_blur(0.5)),
        Variant("resize24", "resized to 24x24 and back (bilinear, antialiased)", _resize(24)),
    )
}


def get(name: str) -> Variant:
    if name not in VARIANTS:
        raise KeyError(f"unknown data variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


def apply(name: str, images: torch.Tensor) -> torch.Tensor:
    """``images`` (uint8 [N,3,H,W]) as the variant ``name`` sees them."""
    return get(name).fn(images)
