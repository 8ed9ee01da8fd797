"""Input filters a pirate puts in front of a stolen model: the one table the GAN trains through, the
selection checks pairs against, and the suspect library deploys.

A pirate who serves a stolen model behind a blur, a JPEG re-encode or a bit-depth reduction removes
much of what a small adversarial perturbation relies on (GanFinger's threat model calls this "input
detection"). Each filter here is an ``nn.Module`` on float images in [0, 1], NCHW, that:

- runs in the GAN's training step with a gradient (rounding steps pass the gradient straight
  through: ``y = x + (round(x) - x).detach()``, the straight-through estimator);
- exports to ONNX with the model behind it (no codec call: JPEG is computed as JPEG computes it,
  YCbCr, 4:2:0 chroma, 8x8 DCT, the quality-scaled tables of the IJG encoder, rounding, inverse),
  so the library's filtered pirates are ordinary ONNX files;
- takes one strength (blur sigma, JPEG quality, bits, ...), named by a spec ``NAME@STRENGTH``, e.g.
  ``"jpeg@70"``; a range for the GAN is ``NAME@LO:HI``, drawn uniformly per batch.

The JPEG here is the encoder's arithmetic without its entropy coding (which is lossless); it
matches PIL's encoder to within a few grey levels (tests/trainer/test_input_filters.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FILTERS", "FilterKind", "Filtered", "draw", "make", "parse", "parse_range"]


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class GaussianBlur(nn.Module):
    """5x5 Gaussian of standard deviation ``sigma`` pixels, replicate padding."""

    kernel: torch.Tensor

    def __init__(self, sigma: float):
        super().__init__()
        r = torch.arange(-2, 3, dtype=torch.float32)
        k1 = torch.exp(-(r**2) / (2 * sigma**2))
        k = torch.outer(k1, k1)
        self.register_buffer("kernel", (k / k.sum()).expand(3, 1, 5, 5).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), self.kernel, groups=3)


class BoxBlur(nn.Module):
    """Mean over a ``size`` x ``size`` window (2 or 3), replicate padding."""

    kernel: torch.Tensor

    def __init__(self, size: float):
        super().__init__()
        self.size = int(size)
        k = torch.full((self.size, self.size), 1.0 / self.size**2)
        self.register_buffer("kernel", k.expand(3, 1, self.size, self.size).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo = (self.size - 1) // 2
        hi = self.size - 1 - lo
        return F.conv2d(F.pad(x, (lo, hi, lo, hi), mode="replicate"), self.kernel, groups=3)


class Median(nn.Module):
    """3x3 median (the gradient flows to the pixel that is the median)."""

    def __init__(self, size: float = 3):
        super().__init__()
        if int(size) != 3:
            raise ValueError("median: only 3x3 is offered")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        shifted = torch.stack([p[..., i : i + h, j : j + w] for i in range(3) for j in range(3)])
        return torch.sort(shifted, dim=0).values[4]


class BitDepth(nn.Module):
    """Keep ``bits`` bits per channel (8: unchanged)."""

    def __init__(self, bits: float):
        super().__init__()
        self.levels = float(2 ** int(bits) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ste_round(x.clamp(0, 1) * self.levels) / self.levels


class GaussianNoise(nn.Module):
    """Add N(0, std^2) noise to every pixel (a fresh draw per call), clipped to [0, 1]."""

    def __init__(self, std: float):
        super().__init__()
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.std * torch.randn_like(x)).clamp(0, 1)


class Translate(nn.Module):
    """Shift the image ``pixels`` right and down (replicate the edge); in the GAN the direction is drawn."""

    def __init__(self, pixels: float, dx: int = 1, dy: int = 1):
        super().__init__()
        self.dx, self.dy = int(pixels) * dx, int(pixels) * dy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ax, ay = abs(self.dx), abs(self.dy)
        p = F.pad(x, (ax, ax, ay, ay), mode="replicate")
        top, left = ay - self.dy, ax - self.dx
        return p[..., top : top + h, left : left + w]


class Resize(nn.Module):
    """Down to ``scale`` of the side (bilinear) and back up: what a resizing pipeline leaves."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        down = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return F.interpolate(down, size=x.shape[-2:], mode="bilinear", align_corners=False)


# The IJG (libjpeg) base quantisation tables, Annex K of the JPEG standard.
_LUMA = [
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
]
_CHROMA = [[17, 18, 24, 47] + [99] * 4, [18, 21, 26, 66] + [99] * 4, [24, 26, 56] + [99] * 5, [47, 66] + [99] * 6]
_CHROMA += [[99] * 8] * 4


def _quality_table(base: list[list[int]], quality: int) -> torch.Tensor:
    """libjpeg's jpeg_quality_scaling: 5000/q below 50, 200 - 2q above, entries clipped to 1..255."""
    q = max(1, min(100, quality))
    scale = 5000 / q if q < 50 else 200 - 2 * q
    t = torch.tensor(base, dtype=torch.float32)
    return torch.clamp(torch.floor((t * scale + 50) / 100), 1, 255)


def _dct_matrix() -> torch.Tensor:
    d = torch.zeros(8, 8)
    for k in range(8):
        for n in range(8):
            d[k, n] = math.cos(math.pi * (2 * n + 1) * k / 16) * (math.sqrt(1 / 8) if k == 0 else math.sqrt(2 / 8))
    return d


class Jpeg(nn.Module):
    """Baseline JPEG at ``quality`` (4:2:0), decoded back to pixels: YCbCr, chroma averaged over 2x2,
    8x8 DCT, quantised with the IJG tables scaled to the quality, inverse. Sides must be multiples of 16."""

    dct: torch.Tensor
    q_luma: torch.Tensor
    q_chroma: torch.Tensor

    def __init__(self, quality: float):
        super().__init__()
        self.quality = int(quality)
        self.register_buffer("dct", _dct_matrix())
        self.register_buffer("q_luma", _quality_table(_LUMA, self.quality))
        self.register_buffer("q_chroma", _quality_table(_CHROMA, self.quality))

    def _blocks(self, plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        n, h, w = plane.shape
        b = plane.reshape(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
        coef = self.dct @ (b - 128.0) @ self.dct.T
        coef = _ste_round(coef / table) * table
        out = self.dct.T @ coef @ self.dct + 128.0
        return out.permute(0, 1, 3, 2, 4).reshape(n, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x.clamp(0, 1) * 255.0
        r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
        cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
        y = self._blocks(y, self.q_luma)
        chroma = []
        for c in (cb, cr):
            small = F.avg_pool2d(c.unsqueeze(1), 2).squeeze(1)
            small = self._blocks(small, self.q_chroma)
            chroma.append(F.interpolate(small.unsqueeze(1), scale_factor=2, mode="nearest").squeeze(1))
        cb, cr = chroma[0] - 128.0, chroma[1] - 128.0
        out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
        return _ste_round(out.clamp(0, 255)) / 255.0


@dataclass(frozen=True)
class FilterKind:
    """One kind of filter: how to build it at a strength, and the strengths it may take."""

    build: Callable[[float], nn.Module]
    lo: float  # the mildest strength offered
    hi: float  # the strongest
    integer: bool  # strengths are whole numbers (kernel size, quality, bits, pixels)
    unit: str  # what the strength measures, for the docs and the provenance

    def check(self, name: str, strength: float) -> float:
        lo, hi = min(self.lo, self.hi), max(self.lo, self.hi)
        if not lo <= strength <= hi:
            raise ValueError(f"{name}@{strength}: the strength must lie in [{lo:g}, {hi:g}] ({self.unit})")
        return round(strength) if self.integer else strength


FILTERS: dict[str, FilterKind] = {
    "identity": FilterKind(lambda s: Identity(), 0, 0, True, "none"),
    "gaussian_blur": FilterKind(GaussianBlur, 0.3, 1.5, False, "sigma, pixels"),
    "box_blur": FilterKind(BoxBlur, 2, 3, True, "window side, pixels"),
    "median": FilterKind(Median, 3, 3, True, "window side, pixels"),
    "jpeg": FilterKind(Jpeg, 95, 20, True, "quality"),
    "bit_depth": FilterKind(BitDepth, 8, 3, True, "bits per channel"),
    "noise": FilterKind(GaussianNoise, 0.0, 0.08, False, "std, [0, 1] pixels"),
    "translate": FilterKind(Translate, 0, 3, True, "pixels"),
    "resize": FilterKind(Resize, 1.0, 0.5, False, "side scale"),
}


def parse(spec: str) -> tuple[str, float]:
    """``"jpeg@70"`` -> ("jpeg", 70); ``"identity"`` -> ("identity", 0). ValueError naming the choices."""
    name, _, value = spec.partition("@")
    if name not in FILTERS:
        raise ValueError(f"unknown input filter {name!r}; choose one of {', '.join(FILTERS)}")
    kind = FILTERS[name]
    try:
        strength = float(value) if value else kind.lo
    except ValueError:
        raise ValueError(f"{spec}: the strength after @ must be a number") from None
    return name, kind.check(name, strength)


def parse_range(spec: str) -> tuple[str, float, float]:
    """``"jpeg@50:90"`` -> ("jpeg", 50, 90); a single strength is a range of one."""
    name, _, value = spec.partition("@")
    lo_text, _, hi_text = value.partition(":")
    _, lo = parse(f"{name}@{lo_text}" if lo_text else name)
    _, hi = parse(f"{name}@{hi_text}") if hi_text else (name, lo)
    return name, lo, hi


def make(spec: str) -> nn.Module:
    """The filter a spec names, at its strength."""
    name, strength = parse(spec)
    return FILTERS[name].build(strength)


def draw(specs: tuple[str, ...], rng: random.Random) -> nn.Module:
    """One filter for one GAN batch: a spec of the table uniformly, then a strength in its range (and,
    for a translation, a direction)."""
    name, lo, hi = parse_range(rng.choice(specs))
    kind = FILTERS[name]
    strength = rng.randint(int(min(lo, hi)), int(max(lo, hi))) if kind.integer else rng.uniform(lo, hi)
    if name == "translate":
        return Translate(strength, rng.choice((-1, 1)), rng.choice((-1, 1)))
    return kind.build(strength)


class Filtered(nn.Module):
    """A bare classifier (normalised input) deployed behind a pixel filter: denormalise, filter,
    normalise again, classify. Exports to ONNX as one graph."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: nn.Module, pixel_filter: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.filter = pixel_filter
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x * self.std + self.mean
        return self.model((self.filter(pixels) - self.mean) / self.std)
