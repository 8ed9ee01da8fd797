"""Each loss term of equations (1)-(6) moves the way the paper intends when optimised on a toy case."""

from __future__ import annotations

import pytest

from conftest import needs_torch

pytestmark = needs_torch()


def _toy_models(seed=0):
    import torch

    torch.manual_seed(seed)
    return [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)) for _ in range(3)]


def _descend(param, loss_fn, steps=60, lr=0.05):
    import torch

    opt = torch.optim.Adam([param], lr=lr)
    first = loss_fn().item()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    return first, loss_fn().item()


def test_adv_loss_drives_the_victim_to_the_target():
    import torch

    from gfaudit_trainer.generation import losses

    victim = _toy_models()[0]
    x = torch.rand(8, 3, 2, 2)
    target = (victim(x).argmax(1) + 1) % 5
    delta = torch.zeros_like(x, requires_grad=True)
    before, after = _descend(delta, lambda: losses.adv_loss(victim(x + delta), target, kappa=1.0), steps=200)
    assert after < before
    assert (victim(x + delta).argmax(1) == target).float().mean() >= 0.9
    assert after >= -1.0 - 1e-6  # the margin is capped at kappa


def test_hinge_only_bites_above_c():
    import torch

    from gfaudit_trainer.generation import losses

    small = torch.full((4, 3, 2, 2), 0.01)
    assert float(losses.hinge_loss(small, c=1.0)) == 0.0
    delta = torch.full((4, 3, 2, 2), 1.0, requires_grad=True)
    before, after = _descend(delta, lambda: losses.hinge_loss(delta, c=1.0))
    assert after < before
    assert float(delta.detach().flatten(1).norm(dim=1).mean()) < 3.464  # norm shrank toward c


def test_discriminator_and_gan_losses_pull_against_each_other():
    import torch

    from gfaudit_trainer.generation import losses

    real, fake = torch.randn(16, 4) + 1.0, torch.randn(16, 4) - 1.0
    d = torch.nn.Linear(4, 1)
    w = d.weight
    before, after = _descend(w, lambda: losses.discriminator_loss(d(real).squeeze(1), d(fake).squeeze(1)))
    assert after < before  # D learns to separate x from x'
    shift = torch.zeros(4, requires_grad=True)
    frozen = torch.nn.Linear(4, 1)
    with torch.no_grad():
        frozen.weight.copy_(d.weight)
        frozen.bias.copy_(d.bias)
    d_before = float(frozen(fake).mean().detach())
    _descend(shift, lambda: losses.gan_loss(frozen(fake + shift).squeeze(1)))
    assert float(frozen(fake + shift).mean().detach()) > d_before  # G makes D call x' real


def test_conf_loss_pulls_toward_positives_and_away_from_negatives():
    import torch

    from gfaudit_trainer.generation import losses

    victim, pos, neg = _toy_models(seed=1)
    x = torch.rand(8, 3, 2, 2)
    delta = torch.zeros_like(x, requires_grad=True)

    def kl_to(model):
        return float(losses.kl(victim(x + delta), model(x + delta)).detach())

    kp, kn = kl_to(pos), kl_to(neg)
    _descend(delta, lambda: losses.conf_loss(victim(x + delta), [pos(x + delta)], [neg(x + delta)]), steps=30, lr=0.02)
    assert kl_to(pos) < kp and kl_to(neg) > kn


def test_zero_weight_removes_a_term():
    import torch

    from gfaudit_trainer.generation import losses

    terms = {k: torch.tensor(v) for k, v in {"adv": 1.0, "gan": 2.0, "hinge": 3.0, "conf": 4.0}.items()}
    assert float(losses.generator_loss(terms, losses.Weights())) == 1 + 5 * 2 + 5 * 3 + 10 * 4
    assert float(losses.generator_loss(terms, losses.Weights(gamma=0.0))) == 1 + 10 + 15


def test_conf_cap_bounds_the_negative_term_and_none_is_equation_5():
    import torch

    from gfaudit_trainer.generation import losses

    victim = torch.tensor([[10.0, 0, 0], [0, 10.0, 0]])
    negative = torch.tensor([[0, 10.0, 0], [10.0, 0, 0]])  # disagrees completely: KL about 10 per row
    exact = losses.conf_loss(victim, [], [negative])
    assert float(exact) == pytest.approx(-float(losses.kl(victim, negative)))
    assert float(exact) < -5
    capped = losses.conf_loss(victim, [], [negative], cap=1.0)
    assert float(capped) == pytest.approx(-1.0)
    close = torch.tensor([[9.0, 0, 0], [0, 9.0, 0]])  # below the cap the two agree
    assert float(losses.conf_loss(victim, [], [close], cap=1.0)) == pytest.approx(
        float(losses.conf_loss(victim, [], [close]))
    )
