"""The picture beside a bundle: rows of x, x' and the amplified difference (like the paper's Figure 3)."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def save_grid(x_u8: torch.Tensor, xp_u8: torch.Tensor, out: str | Path, n: int = 10, gain: float = 10.0) -> Path:
    from torchvision.utils import save_image

    out = Path(out)
    n = min(n, len(x_u8))
    x = x_u8[:n].float() / 255
    xp = xp_u8[:n].float() / 255
    diff = ((xp - x) * gain + 0.5).clamp(0, 1)
    grid = torch.cat([x, xp, diff])
    up = torch.nn.functional.interpolate(grid, scale_factor=3, mode="nearest")
    tmp = out.with_name(f".{out.name}.tmp.png")
    save_image(up, str(tmp), nrow=n, padding=2, pad_value=1.0)
    os.replace(tmp, out)
    return out
