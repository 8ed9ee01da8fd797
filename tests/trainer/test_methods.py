"""The method registry: one interface, one table shared with the auditor, the same pairs as the moved code."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import needs_torch

pytestmark = needs_torch()

OLD_VOTE_KEYS = [
    "candidates",
    "victim_correct_and_flipped",
    "negative_val_follow_before_selection",
    "eligible",
    "selected",
    "max_cosine",
    "per_target_cap",
    "mean_conferrability",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A random 10-class context and one small model per pool role and split (no training: plumbing)."""
    import torch

    from gfaudit_trainer import presets
    from gfaudit_trainer.models import data, zoo
    from gfaudit_trainer.models.context import Context
    from gfaudit_trainer.models.pools import PoolModel, Pools
    from gfaudit_trainer.models.training import predict

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    classes = tuple(str(i) for i in range(10))
    mean, std = [0.5] * 3, [0.25] * 3

    def model():  # linear: untrained, yet its label moves with the input (an untrained CNN's barely does)
        return zoo.Normalized(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10)), mean, std
        ).eval()

    victim = model()
    images = torch.randint(0, 256, (80, 3, 32, 32), dtype=torch.uint8, generator=g)
    # The "true" labels are the victim's: every seed is one it gets right, so selection has candidates.
    train = data.Split(images, predict(victim, images, "cpu"), classes)
    test = data.Split(train.images[:24], train.labels[:24], classes)
    d_v, d_p, d_a = data.partition(train, 0)
    ctx = Context(
        victim,
        victim.model,
        Path("victim.pt"),
        "0" * 64,
        "vgg11",
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
    pools = Pools(
        [
            PoolModel(role, split, 0, "vgg11:width=0.25", 0.1, 0.1, model())
            for role, split in [
                ("positive", "train"),
                ("positive", "val"),
                ("negative", "train"),
                ("negative", "val"),
                ("negative", "calib"),
            ]
        ]
    )
    return ctx, pools, presets.get("tiny", baseline_seeds=12, baseline_effort=0.2)


def test_registry_is_one_module_per_method():
    from gfaudit.audit import create
    from gfaudit.bundle import scoring
    from gfaudit_trainer.generation import methods

    assert methods.names()[0] == "ganfinger" and tuple(methods.METHODS) == methods.names()
    for name, method in methods.METHODS.items():
        assert method.name == name and method.rule in scoring.RULES
        if name in scoring.METHOD_RULES:  # `bundle create --method NAME` signs the rule `train` signs
            assert method.rule == create.rule_for(name)
    assert methods.METHODS["ganfinger"].rule == "ard"
    with pytest.raises(Exception, match="unknown method 'nope'; choose one of ganfinger"):
        methods.get("nope")


@pytest.mark.parametrize("name", ["ipguard", "conferae", "metafinger", "deepfool"])
def test_baseline_entry_gives_the_pairs_of_its_function(setup, name):
    """The registry entry makes the same x' bytes as calling the moved function on the same seeds."""
    import importlib

    import torch

    from gfaudit_trainer.generation import methods
    from gfaudit_trainer.generation.gan import to_uint8
    from gfaudit_trainer.models.context import seed_images

    ctx, pools, preset = setup
    method = methods.get(name)
    torch.manual_seed(1)
    cand = method.candidates(ctx, pools, preset)
    seeds = seed_images(ctx, preset).subset(torch.arange(preset.baseline_seeds))
    fn = getattr(importlib.import_module(f"gfaudit_trainer.generation.methods.{name}"), name)
    torch.manual_seed(1)
    xp, rank = fn(
        ctx.victim,
        [m.model for m in pools.get("positive", "train")],
        [m.model for m in pools.get("negative", "train")],
        seeds.images,
        ctx.device,
        steps=max(2, int(method.steps * preset.baseline_effort)),
    )
    assert cand.x.dtype == cand.x_prime.dtype == torch.uint8
    assert torch.equal(cand.x, seeds.images) and torch.equal(cand.labels, seeds.labels)
    assert torch.equal(cand.x_prime, to_uint8(xp).cpu()) and torch.equal(cand.rank, rank.cpu())


def test_ganfinger_entry_gives_the_pairs_of_gan_candidates(setup):
    import torch

    from gfaudit_trainer.generation import methods
    from gfaudit_trainer.generation.methods.ganfinger import gan_candidates

    ctx, pools, preset = setup
    cand = methods.get("ganfinger").candidates(ctx, pools, preset)
    seeds, x_prime, trained = gan_candidates(ctx, pools, preset)
    assert cand.rank is None and torch.equal(cand.x, seeds.images) and torch.equal(cand.x_prime, x_prime)
    assert set(cand.provenance) == {"gan_history", "gan_direction_checks"} and cand.gan_seconds is not None


def test_one_shared_path_records_the_same_keys(setup):
    """select_and_calibrate: the provenance and selection stats keep the keys bundles have always signed."""
    from gfaudit_trainer.generation import pipeline

    ctx, pools, preset = setup
    try:
        result = pipeline.select_and_calibrate(ctx, pools, preset, "deepfool")
    except pipeline.NoFingerprints:
        pytest.skip("random models: no pair flipped")
    assert result.rule == "label_match" and result.method == "deepfool"
    assert set(result.provenance) == {"validation_scores", "selection", "calibration", "fingerprint_diversity"}
    assert list(result.provenance["selection"]) == ["candidates", "eligible", "selected"]
    assert set(result.provenance["validation_scores"]) == {"positive", "negative", "calibration"}
    row = result.provenance["validation_scores"]["calibration"][0]
    assert {"role", "split", "score", "ard", "p_ori", "p_conf", "hits"} <= set(row)
    assert list(result.timings.to_json()) == ["fingerprint_generation"]
    prov = pipeline.bundle_provenance(ctx, preset, pools, 1.0, result, tool="test")
    assert prov["tool"] == "test" and set(prov["timings_s"]) == {"pool_building", "fingerprint_generation"}


def test_vote_stats_keep_their_signed_keys():
    from gfaudit_trainer.generation.selection import SelectionStats, VoteStats

    stats = VoteStats(10, 4, 3, 5, None, 0.5, None, None)
    assert list(stats.to_json()) == OLD_VOTE_KEYS and stats.follow_rate_before_selection() is None
    assert SelectionStats(10, 4, 3).follow_rate_before_selection() is None


def test_the_documented_sixth_method_is_one_file(setup, monkeypatch):
    """docs/design.md's example method, loaded as trainer/generation/methods/fgsmprint.py and registered with one
    line, goes through the shared select -> calibrate path unchanged."""
    import importlib.util
    import re
    import sys

    from gfaudit_trainer.generation import methods, pipeline

    from conftest import REPO

    doc = (REPO / "docs" / "design.md").read_text()
    code = next(b for b in re.findall(r"^```py\n(.*?)^```", doc, re.M | re.S) if "class FgsmPrint" in b)
    name = "gfaudit_trainer.generation.methods.fgsmprint"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "gfaudit_trainer.generation.methods"
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(code, "docs/design.md", "exec"), module.__dict__)
    monkeypatch.setitem(methods.METHODS, "fgsmprint", module.METHOD)
    ctx, pools, preset = setup
    try:
        result = pipeline.select_and_calibrate(ctx, pools, preset, "fgsmprint")
    except pipeline.NoFingerprints:
        pytest.skip("random models: no pair flipped")
    assert result.method == "fgsmprint" and result.rule == "label_match" and result.selection.stats.selected > 0
