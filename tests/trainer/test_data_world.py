"""The guard against two data worlds (trainer/models/data_world.py), from labels alone."""

from __future__ import annotations

from conftest import needs_torch

pytestmark = needs_torch()


def _labels(n, wrong, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    truth = torch.zeros(n, dtype=torch.long)
    pred = truth.clone()
    idx = torch.randperm(n, generator=g)[:wrong]
    pred[idx] = 1 + torch.randint(0, 9, (wrong,), generator=g)
    return pred


def test_a_victim_from_another_world_is_flagged_with_its_figures():
    from gfaudit_trainer.models import data_world

    negatives = [_labels(1000, 140, s) for s in range(3)]  # 86 % each, errors mostly their own
    home = data_world.from_predictions(negatives[0], 0.86, [0.86, 0.86, 0.86], negatives)
    stranger = data_world.from_predictions(_labels(1000, 190, 9), 0.81, [0.86, 0.86, 0.86], negatives)
    assert not home.warn
    assert stranger.weaker and stranger.estranged and stranger.warn
    msg = stranger.message()
    assert "81.0%" in msg and "86.0%-86.0%" in msg and "data" in msg
    assert stranger.to_json()["warning"] is True


def test_a_weaker_victim_that_agrees_like_a_peer_is_not_flagged():
    from gfaudit_trainer.models import data_world

    negatives = [_labels(1000, 140, s) for s in range(3)]
    peer = negatives[1].clone()
    result = data_world.from_predictions(peer, 0.80, [0.86, 0.86, 0.86], negatives)
    assert result.weaker and not result.estranged and not result.warn
