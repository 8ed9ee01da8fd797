"""Each attack recipe runs at tiny scale and changes the model the way its name says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import needs_torch

pytestmark = needs_torch()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    import torch

    from gfaudit_trainer.generation.pipeline import Context
    from gfaudit_trainer.models import data, zoo

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    classes = tuple(str(i) for i in range(10))
    train = data.Split(
        torch.randint(0, 256, (160, 3, 32, 32), dtype=torch.uint8, generator=g),
        torch.randint(0, 10, (160,), generator=g),
        classes,
    )
    test = data.Split(train.images[:40], train.labels[:40], classes)
    bare = zoo.build("resnet20").eval()
    mean, std = [0.5] * 3, [0.25] * 3
    d_v, d_p, d_a = data.partition(train, 0)
    return Context(
        zoo.Normalized(bare, mean, std).eval(),
        bare,
        Path("victim.pt"),
        "0" * 64,
        "resnet20",
        mean,
        std,
        "none",
        train,
        test,
        d_v,
        d_p,
        d_a,
        torch.device("cpu"),
        tmp_path_factory.mktemp("cache"),
        0,
        0.1,
    )


@pytest.fixture(scope="module")
def recipes():
    from gfaudit_trainer.library import attacks

    return attacks.registry(
        extract_archs=("vgg11:width=0.25",), unrelated_archs=("vgg11:width=0.25",), adv_archs=("vgg11:width=0.25",)
    )


def _scale():
    from gfaudit_trainer.library.attacks import Scale

    return Scale(finetune_epochs=1, extract_epochs=1, adv_epochs=1, batch_size=32)


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point}


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5])
def test_pruning_zeroes_the_stated_share(ctx, recipes, ratio):
    import torch.nn as nn

    model = recipes[f"prune-{ratio:.1f}"].run(ctx, _scale(), 1)
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert abs(zeros - ratio) < 0.01
    assert ctx.bare.conv1.weight.ne(0).all()  # the victim itself is untouched


@pytest.mark.parametrize(
    "name,last_changes,body_changes",
    [("ftll", True, False), ("rtll", True, False), ("ftal", True, True), ("rtal", True, True)],
)
def test_finetuning_touches_the_right_layers(ctx, recipes, name, last_changes, body_changes):
    import torch

    before = _params(ctx.bare)
    after = _params(recipes[name].run(ctx, _scale(), 2))
    head = [k for k in before if k.startswith("linear.")]
    body = [k for k in before if k.startswith("conv1.") or ".conv" in k]
    assert any(not torch.equal(before[k], after[k]) for k in head) == last_changes
    assert any(not torch.equal(before[k], after[k]) for k in body) == body_changes


def test_extraction_students_learn_from_the_victim(ctx, recipes, monkeypatch):
    import torch

    from gfaudit_trainer.library import attacks

    calls = []
    real_predict = attacks.predict
    monkeypatch.setattr(
        attacks, "predict", lambda *a, **k: calls.append(k.get("probs", False)) or real_predict(*a, **k)
    )
    label = recipes["extract-label-vgg11:width=0.25"].run(ctx, _scale(), 3)
    prob = recipes["extract-prob-vgg11:width=0.25"].run(ctx, _scale(), 4)
    assert calls == [False, True]  # the victim's labels, then its posteriors
    assert type(label).__name__ == type(prob).__name__ == "CifarVGG"
    with torch.no_grad():
        assert label(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_unrelated_model_never_queries_the_victim(ctx, recipes, monkeypatch):
    from gfaudit_trainer.library import attacks

    monkeypatch.setattr(attacks, "predict", lambda *a, **k: (_ for _ in ()).throw(AssertionError("queried victim")))
    model = recipes["unrelated-vgg11:width=0.25-0"].run(ctx, _scale(), 5)
    assert type(model).__name__ == "CifarVGG"


def test_fgsm_perturbation_is_bounded_and_adversarial_training_runs(ctx, recipes):
    import torch

    from gfaudit_trainer.library.attacks import fgsm_perturb

    x = torch.rand(8, 3, 32, 32)
    y = torch.randint(0, 10, (8,))
    out = fgsm_perturb(8 / 255)(ctx.victim, x, y)
    assert torch.equal(out[:4], x[:4])  # half stays clean
    assert (out[4:] - x[4:]).abs().max() <= 8 / 255 + 1e-6 and (out[4:] != x[4:]).any()
    model = recipes["adv-extract-vgg11:width=0.25"].run(ctx, _scale(), 6)
    assert type(model).__name__ == "CifarVGG"


def test_blur_filter_keeps_flat_images_and_smooths_noise(ctx, recipes):
    import torch

    filtered = recipes["filter-blur"].run(ctx, _scale(), 7)
    flat = torch.full((1, 3, 32, 32), 0.3)
    noise = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(filtered(flat), ctx.bare(flat), atol=1e-5)
        assert not torch.allclose(filtered(noise), ctx.bare(noise), atol=1e-4)
    assert torch.equal(recipes["copy"].run(ctx, _scale(), 8).linear.weight, ctx.bare.linear.weight)


def test_library_is_disjoint_from_pools(ctx, tmp_path, monkeypatch):
    from gfaudit_trainer.library import build as library
    from gfaudit_trainer.models import pools

    d_v, d_p, d_a = (set(map(tuple, s.images.flatten(1)[:, :64].tolist())) for s in (ctx.d_v, ctx.d_p, ctx.d_a))
    assert not (d_a & d_v) and not (d_a & d_p) and not (d_v & d_p)
    monkeypatch.setitem(
        library.SCALES,
        "tiny",
        library.LibraryScale(
            _scale(),
            ("copy", "prune-0.2", "unrelated-vgg11:width=0.25-0"),
            {"extract_archs": (), "unrelated_archs": ("vgg11:width=0.25",), "adv_archs": ()},
        ),
    )
    doc = library.build(ctx, "tiny", tmp_path)
    on_disk = json.loads((tmp_path / "library.json").read_text())
    assert on_disk["independence"]["shares_no_model_with_pools"] is True
    assert [m["attack"] for m in on_disk["models"]] == ["copy", "prune-0.2", "unrelated-vgg11:width=0.25-0"]
    pool_seeds = {
        pools._seed(s, role, split, i)
        for s in range(100)
        for role in pools.ROLES
        for split in ("train", "val")
        for i in range(40)
    }
    assert all(m.seed not in pool_seeds for m in doc.models)
    assert all((tmp_path / m.path).is_file() for m in doc.models)
    # Resume: a second build trains nothing and returns the same entries.
    monkeypatch.setattr(library, "export", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
    assert library.build(ctx, "tiny", tmp_path).models == doc.models


def test_library_seed_does_not_depend_on_only(tmp_path):
    """A subset built with --only and the rest built later must be the models of one full build."""
    from gfaudit_trainer.library import build as library

    full = {j.name: j.seed for j in library.jobs("cpu", tmp_path)}
    subset = library.jobs("cpu", tmp_path, only=["ftll", "prune-0.3"])
    assert [j.name for j in subset] == [n for n in full if n in {"ftll", "prune-0.3"}]
    assert all(j.seed == full[j.name] for j in subset)
    assert len(set(full.values())) == len(full)
