"""The pictures render from synthetic data (matplotlib Agg) to valid PNGs of a sensible size: the
fingerprint grid with labelled rows and per-pair classes, the benchmark curves with one legend and
each method's signed threshold, and evaluate's own plot."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from gfaudit.audit import metrics

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG whose signature and IHDR chunk (with its CRC) are valid."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16 : 16 + 13]
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(kind + body)
    assert data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    return struct.unpack(">II", body[:8])


def _doc(method: str, pirated, unrelated, threshold: float) -> dict:
    g, r, u = metrics.curves(pirated, unrelated)
    return {
        "bundle": {"method": method},
        "aruc": metrics.aruc(pirated, unrelated),
        "signed_threshold": {"value": threshold},
        "curves": {
            "tau": g[::10].round(3).tolist(),
            "robustness": r[::10].round(4).tolist(),
            "uniqueness": u[::10].round(4).tolist(),
        },
    }


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]


def test_fingerprint_grid_labels_rows_and_classes(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from gfaudit_trainer.generation import figure

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    delta = rng.integers(-3, 4, x.shape)
    delta[1] *= 4  # a pair with a 4x larger change still shows as a readable pattern, not saturated noise
    xp = np.clip(x.astype(int) + delta, 0, 255).astype(np.uint8)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    y, yp = np.arange(12) % 10, (np.arange(12) + 1) % 10

    seen = {}
    real_savefig = __import__("matplotlib.figure", fromlist=["Figure"]).Figure.savefig

    def spy(fig, *args, **kwargs):
        seen["texts"] = _texts(fig)
        return real_savefig(fig, *args, **kwargs)

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", spy)
    out = figure.save_grid(x, xp, tmp_path / "fp.png", y=y, y_prime=yp, class_names=names)
    w, h = png_size(out)
    assert 1000 <= w <= 2500 and 350 <= h <= 800, (w, h)
    texts = " ".join(seen["texts"])
    for label in ("x\n(original)", "x'\n(fingerprint)", "amplified", "airplane\n→ automobile", "truck\n→ airplane"):
        assert label in texts, label
    assert "×" in texts  # the amplification factor is stated
    # Amplification per image: each difference spans the grey range without clipping.
    for j in (0, 1):
        diff, gain = figure.amplified_difference(x[j].transpose(1, 2, 0), xp[j].transpose(1, 2, 0))
        assert abs(float(np.abs(diff - 0.5).max()) - 0.5) < 1e-6 and gain > 1
    assert not list(tmp_path.glob(".*tmp*"))


def test_benchmark_curves_share_one_legend_and_mark_thresholds(tmp_path, monkeypatch):
    from gfaudit.audit.evaluate import plot_methods

    rng = np.random.default_rng(1)
    docs = {
        m: _doc(m, rng.uniform(0.3, 1, 16).tolist(), rng.uniform(0, 0.6, 4).tolist(), t)
        for m, t in (("ganfinger", 0.495), ("ipguard", 0.7), ("conferae", 0.6), ("metafinger", 0.55), ("deepfool", 0.8))
    }
    captured = {}
    real_savefig = __import__("matplotlib.figure", fromlist=["Figure"]).Figure.savefig

    def spy(fig, *args, **kwargs):
        captured["fig"] = fig
        captured["texts"] = _texts(fig)
        return real_savefig(fig, *args, **kwargs)

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", spy)
    out = plot_methods(docs, tmp_path / "curves.png")
    w, h = png_size(out)
    assert 900 <= w <= 1600 and 600 <= h <= 1200, (w, h)
    fig = captured["fig"]
    assert len(fig.legends) + sum(ax.get_legend() is not None for ax in fig.axes) == 1  # one legend for all
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(panels) == 5
    for ax, (method, doc) in zip(panels, docs.items()):
        assert ax.get_xlabel() and ax.get_ylabel()
        vlines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert len(vlines) == 1 and vlines[0].get_xdata()[0] == pytest.approx(doc["signed_threshold"]["value"])
        assert method in ax.get_title()
    assert "signed threshold" in " ".join(captured["texts"])
    # Three methods fill their row and the legend goes below them, once.
    three = plot_methods(dict(list(docs.items())[:3]), tmp_path / "three.png")
    assert png_size(three)[0] >= 900 and len(captured["fig"].legends) == 1


def test_evaluate_plot_labels_both_axes(tmp_path):
    from gfaudit.audit.evaluate import plot

    out = plot(_doc("ganfinger", [0.9, 0.8, 0.7], [0.1, 0.3], 0.5), tmp_path / "one.png")
    w, h = png_size(out)
    assert 500 <= w <= 900 and 400 <= h <= 700
