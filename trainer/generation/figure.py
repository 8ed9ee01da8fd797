"""The picture beside a bundle (like the paper's Figure 3): one column per fingerprint pair, rows x,
x' and their difference, each column titled with the victim's label of x -> of x'.

The difference x' - x is a few grey levels, so it is amplified per image to its own largest
absolute value and shown around mid-grey (grey = no change, light = brighter, dark = darker); the
factor is written under each image. A fixed gain (x10) saturated into noise for some pairs and
left others invisible."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gfaudit.files.atomic import write_bytes_atomic


def amplified_difference(x_u8: np.ndarray, xp_u8: np.ndarray) -> tuple[np.ndarray, float]:
    """(0.5 + gain * (x' - x)) in [0, 1], HWC, with gain = 0.5 / max|x' - x| (1.0 when x' == x)."""
    d = (xp_u8.astype(np.float32) - x_u8.astype(np.float32)) / 255.0
    peak = float(np.abs(d).max())
    gain = 0.5 / peak if peak > 0 else 1.0
    return np.clip(0.5 + gain * d, 0.0, 1.0), gain


def _hwc(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    return img.transpose(1, 2, 0) if img.ndim == 3 and img.shape[0] in (1, 3) else img


def save_grid(
    x_u8,
    xp_u8,
    out: str | Path,
    n: int = 10,
    y: Sequence[int] | np.ndarray | None = None,
    y_prime: Sequence[int] | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Draw the first ``n`` pairs (uint8 [K, C, H, W], numpy or torch) to a PNG, written atomically."""
    from gfaudit.audit.evaluate import require_matplotlib

    plt = require_matplotlib()
    x = np.asarray(x_u8)
    xp = np.asarray(xp_u8)
    n = min(n, len(x))
    if n == 0:
        raise ValueError("no fingerprint pair to draw")
    fig, axes = plt.subplots(3, n, figsize=(1.25 * n + 1.3, 4.6), dpi=110, squeeze=False)
    rows = ["x\n(original)", "x'\n(fingerprint)", "x' − x\namplified"]
    for j in range(n):
        a, b = _hwc(x[j]), _hwc(xp[j])
        diff, gain = amplified_difference(a, b)
        cmap = "gray" if a.shape[-1] == 1 else None
        for i, img in enumerate((a, b, diff)):
            ax = axes[i, j]
            ax.imshow(
                img.squeeze(-1) if cmap else img, cmap=cmap, vmin=0, vmax=1 if i == 2 else 255, interpolation="nearest"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(rows[i], fontsize=8, rotation=0, ha="right", va="center", labelpad=6)
        if y is not None and y_prime is not None:

            def name(k: int) -> str:
                return class_names[k] if class_names and 0 <= k < len(class_names) else str(k)

            axes[0, j].set_title(f"{name(int(y[j]))}\n→ {name(int(y_prime[j]))}", fontsize=7)
        axes[2, j].set_xlabel(f"×{gain:.0f}", fontsize=7)
    fig.suptitle(
        "Fingerprint pairs: victim's label of x → its label of x'  "
        "(difference scaled per image to its largest change, grey = 0)",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(out, buf.getvalue())
    return Path(out)
