"""Selection rules on hand-made models whose every label is known in advance."""

from __future__ import annotations

import pytest

from conftest import needs_torch

pytestmark = needs_torch()


def _lookup(table):
    """A model that reads an image's id from pixel (0, 0, 0) and answers table[id]."""
    import torch
    import torch.nn as nn

    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.as_tensor(table)

        def forward(self, x):
            ids = torch.round(x[:, 0, 0, 0] * 255).long()
            return torch.nn.functional.one_hot(self.table[ids], 10).float()

    return Lookup()


def _images(ids):
    import torch

    x = torch.zeros(len(ids), 3, 4, 4, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.as_tensor(ids, dtype=torch.uint8)
    return x


def test_selection_filters_on_victim_positives_and_negatives():
    from gfaudit_trainer.generation.selection import select
    from gfaudit_trainer.models.pools import PoolModel, Pools

    # ids 0-4 are the clean x (all class 1), ids 10-14 their x'; the victim labels every x' class 2.
    x, xp, truth = _images(range(5)), _images(range(10, 15)), [1] * 5
    import torch

    def table(xp_labels, x_labels=(1, 1, 1, 1, 1)):
        t = [0] * 16
        t[0:5], t[10:15] = x_labels, xp_labels
        return t

    victim = _lookup(table([2, 2, 2, 2, 1]))  # pair 4: the victim does not flip
    pos = _lookup(table([2, 2, 2, 2, 2], x_labels=(1, 1, 1, 7, 1)))  # disagrees with the victim on x of pair 3
    neg_a = _lookup(table([2, 0, 0, 0, 0]))  # follows x' of pair 0
    neg_b = _lookup(table([0, 0, 0, 0, 0]))
    pools = Pools(
        [
            PoolModel("positive", "val", 0, "t", 1, 1, pos),
            PoolModel("negative", "train", 0, "t", 1, 1, neg_a),
            PoolModel("negative", "val", 0, "t", 1, 1, neg_b),
        ]
    )
    args = (victim, pools, x, xp, torch.tensor(truth), 5)
    loose = select(*args, pos_agree=0.9, device="cpu", neg_follow=1.0)
    assert sorted(loose.index.tolist()) == [0, 1, 2] and loose.index.tolist()[-1] == 0  # pair 0 ranks last
    strict = select(*args, pos_agree=0.9, device="cpu", neg_follow=0.0)
    assert sorted(strict.index.tolist()) == [1, 2] and strict.stats.eligible == 2
    half = select(*args, pos_agree=0.9, device="cpu", neg_follow=0.5)  # one of two negatives may follow
    assert sorted(half.index.tolist()) == [0, 1, 2]
    no_x_check = select(*args, pos_agree=0.9, device="cpu", x_agreement=False, neg_follow=0.0)
    assert sorted(no_x_check.index.tolist()) == [1, 2, 3]


@pytest.mark.parametrize("pos, neg, lo, hi", [([0.9, 0.8], [0.1, 0.2], 0.2, 0.8), ([0.5, 0.9], [0.1, 0.6], 0.05, 0.95)])
def test_calibrated_threshold_lies_between_the_pools(pos, neg, lo, hi):
    from gfaudit_trainer.generation.selection import calibrate

    t = calibrate(pos, neg)
    assert lo < t <= hi
    if min(pos) > max(neg):
        assert max(neg) < t < min(pos)


def test_false_accusation_floor_bounds_a_binomial_follower():
    """An unrelated model that follows each x' with probability q scores above the floor in at most
    alpha of draws; checked by simulation, and the calibrated threshold never sits below it."""
    import numpy as np

    from gfaudit_trainer.generation.selection import calibrate, false_accusation_floor

    rng = np.random.default_rng(0)
    for q in (0.1, 0.3, 0.5):
        floor = false_accusation_floor(q, 100, false_accusation_rate=0.01)
        assert q < floor < q + 0.2
        draws = rng.binomial(100, q, size=20000) / 100
        assert (draws >= floor).mean() < 0.02
    assert false_accusation_floor(0.3, 400) < false_accusation_floor(0.3, 100)  # more pairs, tighter bound
    assert calibrate([1.0], [0.0]) == 0.5
    assert calibrate([1.0], [0.0], floor=0.63) == 0.63
    assert calibrate([1.0], [0.0], floor=2.0) == 0.95


def test_spread_caps_pairs_per_target_and_skips_near_copies():
    import torch

    from gfaudit_trainer.generation.selection import spread

    x = torch.zeros(6, 3, 4, 4, dtype=torch.uint8)
    base = torch.zeros(3, 4, 4, dtype=torch.uint8)
    xp = torch.stack([base] * 6)
    xp[0, 0, 0, 0] = 8  # target 0, direction e0
    xp[1, 0, 0, 0] = 9  # target 0, same direction as pair 0: a near copy
    xp[2, 1, 1, 1] = 8  # target 0, another direction
    xp[3, 2, 2, 2] = 8  # target 0, a third direction
    xp[4, 0, 0, 0] = 8  # target 1, same direction as pair 0 but another target: allowed
    xp[5, 0, 3, 3] = 8  # target 1
    targets = torch.tensor([0, 0, 0, 0, 1, 1])
    order = torch.arange(6)
    assert spread(order, x, xp, targets, k=6).tolist() == [0, 1, 2, 3, 4, 5]  # no rule: the ranking as is
    assert spread(order, x, xp, targets, k=6, max_cosine=0.5).tolist() == [0, 2, 3, 4, 5]
    assert spread(order, x, xp, targets, k=6, max_cosine=0.5, per_target=2).tolist() == [0, 2, 4, 5]
    assert spread(order, x, xp, targets, k=3, max_cosine=0.5, per_target=2).tolist() == [0, 2, 4]


def test_diversity_loss_is_high_for_one_pattern_per_target_and_low_for_input_specific_ones():
    import torch

    from gfaudit_trainer.generation.losses import diversity_loss

    pattern = torch.randn(1, 3, 8, 8)
    same = pattern.expand(4, -1, -1, -1) * torch.tensor([1.0, 2.0, 0.5, 3.0]).view(-1, 1, 1, 1)
    targets = torch.tensor([1, 1, 1, 1])
    assert float(diversity_loss(same, targets)) == pytest.approx(1.0, abs=1e-5)
    eye = torch.eye(4).view(4, 1, 2, 2).expand(-1, 3, -1, -1)
    assert float(diversity_loss(eye, targets)) == pytest.approx(0.0, abs=1e-6)
    assert float(diversity_loss(same, torch.tensor([0, 1, 2, 3]))) == 0.0  # no pair shares a target


def test_perturbation_diversity_statistics():
    import numpy as np

    from gfaudit.bundle.perturbation import diversity

    x = np.zeros((4, 1, 2, 2), np.uint8)
    xp = x.copy()
    xp[0, 0, 0, 0] = xp[1, 0, 0, 0] = 10  # targets 3, 3: identical perturbations
    xp[2, 0, 1, 1] = 10  # target 5: orthogonal to them
    xp[3, 0, 0, 0] = 10  # target 5: like the first two
    d = diversity(x, xp, np.array([3, 3, 5, 5]))
    assert d["cosine_same_target"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert d["cosine_other_target"] == pytest.approx((1 + 0 + 1 + 0 + 1 + 0 + 1 + 0) / 8)
    assert d["pairs_per_target"] == {3: 2, 5: 2} and d["largest_target_share"] == 0.5
