"""The fast recipe (trainer/models/recipes.py): airbench's network learns, resumes from a checkpoint with its
lookahead state, keeps a trained model's whitening when fine-tuned, and reads soft targets at a
temperature. Accuracy targets are measured in benchmarks/fast_recipe.py, not here."""

from __future__ import annotations

import pytest

from conftest import needs_torch

pytestmark = needs_torch()


def _toy(n=256, seed=0):
    """Two classes a small network separates in a few epochs: bright vs dark images, with noise."""
    import torch

    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    base = torch.where(labels.view(-1, 1, 1, 1) == 1, 170, 80)
    images = (base + torch.randint(-60, 61, (n, 3, 32, 32), generator=g)).clamp(0, 255).to(torch.uint8)
    return images, labels


def _model(spec="airbench:width=0.125"):
    import torch

    from gfaudit_trainer.models import zoo

    torch.manual_seed(0)
    return zoo.Normalized(zoo.build(spec, num_classes=2), [0.5] * 3, [0.25] * 3)


def test_fast_recipe_trains_airbench_and_sets_whitening_from_data():
    import torch

    from gfaudit_trainer.models.training import FitConfig, accuracy, fit

    images, labels = _toy()
    model = _model()
    before = model.model.whiten.weight.detach().clone()
    fit(model, images, labels, FitConfig.fast(4, "airbench", batch_size=64), torch.device("cpu"))
    assert bool(model.model.data_initialised)
    assert not torch.equal(before, model.model.whiten.weight)  # whitening came from the data
    test_images, test_labels = _toy(128, seed=1)
    assert accuracy(model, test_images, test_labels, torch.device("cpu")) >= 0.9


def test_fine_tuning_keeps_a_trained_models_whitening():
    import torch

    from gfaudit_trainer.models.training import FitConfig, fit

    images, labels = _toy()
    model = _model()
    fit(model, images, labels, FitConfig.fast(1, "airbench", batch_size=64), torch.device("cpu"))
    whitening = model.model.whiten.weight.detach().clone()
    fit(model, 255 - images, labels, FitConfig.fast(1, "airbench", batch_size=64), torch.device("cpu"))
    assert torch.equal(whitening, model.model.whiten.weight)


def test_fast_recipe_resumes_with_its_lookahead_state(tmp_path):
    import torch

    from gfaudit_trainer.models.training import FitConfig, fit

    images, labels = _toy(128)
    cfg = FitConfig.fast(3, "airbench", batch_size=64, seed=3)
    straight = _model()
    fit(straight, images, labels, cfg, torch.device("cpu"))

    calls = {"n": 0}

    def crash_in_epoch_3(model, xb, yb):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return xb

    resumed = _model()
    ckpt = tmp_path / "m.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(resumed, images, labels, cfg, torch.device("cpu"), perturb=crash_in_epoch_3, checkpoint=ckpt)
    assert "lookahead" in torch.load(ckpt, weights_only=True)
    fit(resumed, images, labels, cfg, torch.device("cpu"), perturb=lambda m, x, y: x, checkpoint=ckpt)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)


def test_soft_targets_at_any_temperature_are_matched_by_the_teachers_log_probabilities():
    import torch

    from gfaudit_trainer.models import recipes
    from gfaudit_trainer.models.training import _loss

    teacher = torch.tensor([[0.7, 0.2, 0.1]])
    exact = teacher.log()
    off = torch.tensor([[0.0, 0.0, 0.0]])
    for recipe in (recipes.get("fast"), recipes.get("classic")):
        for temperature in (1.0, 4.0):
            assert float(_loss(exact, teacher, recipe, temperature)) == pytest.approx(0.0, abs=1e-6)
            assert float(_loss(off, teacher, recipe, temperature)) > 1e-3
    # A higher temperature softens the target: the uniform student is closer to it.
    fast = recipes.get("fast")
    assert float(_loss(off, teacher, fast, 4.0)) / 4 < float(_loss(off, teacher, fast, 1.0))


def test_triangle_schedule_rises_then_falls():
    from gfaudit_trainer.models import recipes

    fast = recipes.get("fast")
    f = [recipes.lr_factor(fast, s, 100) for s in range(101)]
    peak = max(range(101), key=f.__getitem__)
    assert 15 < peak < 30 and f[0] == pytest.approx(fast.lr_start) and f[100] == pytest.approx(fast.lr_end)
    assert all(a <= b for a, b in zip(f[:peak], f[1 : peak + 1])) and all(
        a >= b for a, b in zip(f[peak:], f[peak + 1 :])
    )
