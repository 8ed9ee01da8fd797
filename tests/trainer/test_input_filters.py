"""The input-filter table (trainer/models/input_filters.py): every filter keeps images in range, passes
a gradient (the GAN trains through it), exports to ONNX behind a model with parity, JPEG matches a
real encoder, and selection drops pairs a filter erases."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest

from conftest import SHARED_DATA, needs_torch

pytestmark = needs_torch()

DETERMINISTIC = [
    "identity",
    "gaussian_blur@0.8",
    "box_blur@2",
    "box_blur@3",
    "median@3",
    "jpeg@50",
    "bit_depth@4",
    "translate@2",
    "resize@0.75",
]


@pytest.mark.parametrize("spec", DETERMINISTIC + ["noise@0.03"])
def test_filter_keeps_shape_and_range_and_passes_a_gradient(spec):
    import torch

    from gfaudit_trainer.models import input_filters

    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    y = input_filters.make(spec)(x)
    assert y.shape == x.shape and float(y.min()) >= -1e-6 and float(y.max()) <= 1 + 1e-6
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0, f"{spec} blocks the gradient"
    if spec != "identity":
        assert not torch.allclose(y, x), f"{spec} changes nothing"


def test_filters_export_to_onnx_behind_a_model(tmp_path):
    import torch
    from torch import nn

    from gfaudit_trainer.models import input_filters
    from gfaudit_trainer.models.export import export

    torch.manual_seed(0)
    bare = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )
    for spec in DETERMINISTIC:
        model = input_filters.Filtered(bare, input_filters.make(spec), [0.5] * 3, [0.25] * 3).eval()
        export(model, tmp_path / f"{spec.replace('@', '-')}.onnx", atol=1e-3)  # raises on a parity failure


@pytest.mark.parametrize("quality", [90, 70, 30])
def test_jpeg_is_close_to_a_real_encoder(quality):
    import torch
    from PIL import Image

    from gfaudit_trainer.models import input_filters

    files = sorted(SHARED_DATA.glob("test/*/*.jpg"))[:4000:40] if SHARED_DATA.is_dir() else []
    if files:
        imgs = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
    else:  # smooth random images where the shared data is absent
        g = np.random.default_rng(0)
        imgs = np.clip(np.cumsum(g.normal(0, 8, (50, 32, 32, 3)), axis=1) + 128, 0, 255).astype(np.uint8)
    ref = []
    for im in imgs:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        ref.append(np.asarray(Image.open(buf).convert("RGB")))
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    real = torch.from_numpy(np.stack(ref)).permute(0, 3, 1, 2).float() / 255
    ours = input_filters.make(f"jpeg@{quality}")(x)
    gap = float((ours - real).abs().mean() * 255)
    assert gap < 2.5, f"mean {gap:.2f} grey levels from PIL's encoder"
    if quality <= 70:  # the encoder's loss is reproduced, not skipped
        assert gap < float((x - real).abs().mean() * 255)


def test_specs_are_checked():
    from gfaudit_trainer.models import input_filters as f

    assert f.parse("jpeg@70") == ("jpeg", 70) and f.parse("identity") == ("identity", 0)
    assert f.parse_range("jpeg@50:90") == ("jpeg", 50, 90)
    for bad, why in [("sharpen@1", "unknown input filter"), ("jpeg@5", "must lie in"), ("jpeg@x", "must be a number")]:
        with pytest.raises(ValueError, match=why):
            f.parse(bad)
    rng = random.Random(0)
    drawn = {type(f.draw(("jpeg@50:90", "translate@1:2"), rng)).__name__ for _ in range(20)}
    assert drawn == {"Jpeg", "Translate"}


def test_selection_drops_pairs_a_filter_erases():
    import torch

    from gfaudit_trainer.generation import selection

    n = 6
    y = torch.zeros(n, dtype=torch.long)
    votes = selection.PoolVotes(
        y=y,
        y_prime=torch.ones(n, dtype=torch.long),
        pos_x=torch.ones(1, n, dtype=torch.bool),
        pos_xp=torch.ones(1, n),
        neg_xp=torch.zeros(1, n),
        n_pos_val=1,
        n_neg_val=1,
        robust_victim=torch.tensor([[1, 1, 0, 1, 1, 1], [1, 1, 1, 1, 0, 1]], dtype=torch.bool),
        robust_pos=torch.tensor([[1.0, 0.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]),
    )
    x = torch.randint(0, 255, (n, 3, 4, 4), dtype=torch.uint8)
    sel = selection.choose(votes, x, x, y, k=n, pos_agree=0.5, robust_share=0.5)
    assert sorted(sel.index.tolist()) == [0, 3, 5]
    assert sel.stats.robust_rejected == 3 and sel.stats.to_json()["robust_checks"] == 2


def test_robust_votes_label_the_filtered_pairs():
    """The victim and the positives are asked about x' behind each check filter."""
    import torch
    from torch import nn

    from gfaudit_trainer.generation import selection

    class Brightness(nn.Module):  # class 1 when the image's mean is above 0.55, else 0
        def forward(self, x):
            m = x.mean((1, 2, 3))
            return torch.stack([0.55 - m, m - 0.55], 1)

    x_prime = torch.tensor([[[[200]]], [[[60]]], [[[135]]]], dtype=torch.uint8).expand(3, 3, 32, 32).contiguous()
    y_prime = torch.tensor([1, 0, 0])
    victim_rows, pos_rows = selection.robust_votes(
        Brightness(), [selection._Wrapped(Brightness())], x_prime, y_prime, ("identity", "bit_depth@3"), "cpu"
    )
    assert victim_rows.tolist() == [[True, True, True], [True, True, False]]  # 3 bits round 135/255 up to 4/7
    assert pos_rows.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]
