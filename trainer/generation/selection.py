"""Pick K fingerprint pairs on the validation pools and calibrate the decision threshold.

A pair (x, x') is kept when the victim labels x correctly, every positive model labels x like the
victim (so P_ori stays near 0 for pirates), the victim labels the 8-bit x' differently from x, and
at least ``pos_agree`` of the positive validation models give x' the victim's label, and at most
``neg_follow`` of all negative models (training and validation) do. Pairs are ranked by
conferrability: agreement of positive models minus agreement of negative models on x'.

With robustness checks (``Preset.robust_checks``: input filters of trainer/models/input_filters.py
at fixed strengths), a pair is kept only if, under every check, the victim still gives the filtered
x' its changed label and at least ``robust_share`` of the positive validation models do too: a pair
a blur or a JPEG re-encode erases cannot survive a pirate who deploys the stolen model behind one.

The negative filter uses the training negatives too: the GAN was pushed away from them, but a pair
that still fools one of them is a pair that transfers to unrelated models, and with a few negatives
per pool every one of them is evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gfaudit.bundle import scoring
from gfaudit_trainer.models.pools import Pools
from gfaudit_trainer.models.training import predict

__all__ = [
    "ModelScore",
    "PoolVotes",
    "Selection",
    "SelectionStats",
    "VoteStats",
    "calibrate",
    "choose",
    "false_accusation_floor",
    "model_scores",
    "select",
    "select_ranked",
    "spread",
    "vote",
]


@dataclass(frozen=True)
class SelectionStats:
    """What a ranked selection (the baselines') reports; signed into the provenance as ``selection``."""

    candidates: int
    eligible: int
    selected: int

    def follow_rate_before_selection(self) -> float | None:
        """The validation negatives' follow rate before selection (the calibration fallback's floor);
        None where the selection never asked the pools."""
        return None

    def to_json(self) -> dict:
        return {"candidates": self.candidates, "eligible": self.eligible, "selected": self.selected}


@dataclass(frozen=True)
class VoteStats(SelectionStats):
    """What the pool-vote selection (``choose``) reports, with the keys the signed provenance has always had."""

    victim_correct_and_flipped: int
    negative_val_follow_before_selection: float | None
    max_cosine: float
    per_target_cap: int | None
    mean_conferrability: float | None
    robust_checks: int = 0  # input filters every kept pair survives (Preset.robust_checks)
    robust_share: float | None = None  # share of positive validation models that must survive each
    robust_rejected: int = 0  # pairs the other rules kept that a filter check removed (before neg_follow)
    follow_on_selected: dict | None = None  # follow rate of the chosen x' by students, derived copies, negatives

    def follow_rate_before_selection(self) -> float | None:
        return self.negative_val_follow_before_selection

    def to_json(self) -> dict:
        return {
            "candidates": self.candidates,
            "victim_correct_and_flipped": self.victim_correct_and_flipped,
            "negative_val_follow_before_selection": self.negative_val_follow_before_selection,
            "eligible": self.eligible,
            "selected": self.selected,
            "max_cosine": self.max_cosine,
            "per_target_cap": self.per_target_cap,
            "mean_conferrability": self.mean_conferrability,
            **(
                {
                    "robust_checks": self.robust_checks,
                    "robust_share": self.robust_share,
                    "robust_rejected": self.robust_rejected,
                }
                if self.robust_checks
                else {}
            ),
            **({"follow_on_selected": self.follow_on_selected} if self.follow_on_selected else {}),
        }


@dataclass(frozen=True)
class Selection:
    index: torch.Tensor  # indices into the candidates, best first
    x: torch.Tensor
    x_prime: torch.Tensor
    stats: SelectionStats


@dataclass(frozen=True)
class ModelScore:
    """One model's score on the selected pairs (``model_scores``): its pool entry plus the rates."""

    model: dict  # the pool model's own record (PoolModel.to_json)
    score: float
    ard: float
    p_ori: float
    p_conf: float
    hits: int  # pairs it hit, as the null model counts them (gfaudit.bundle.null_model)

    def to_json(self) -> dict:
        return {
            **self.model,
            "score": self.score,
            "ard": self.ard,
            "p_ori": self.p_ori,
            "p_conf": self.p_conf,
            "hits": self.hits,
        }


def _agree(models, images, labels, device, live: torch.Tensor | None = None) -> torch.Tensor:
    """[n_models, n_images] bool: model label == labels; with a ``live`` mask only those images are
    labelled (the others are False)."""
    if not models:
        return torch.zeros(0, len(images), dtype=torch.bool)
    if live is None:
        return torch.stack([predict(m.model, images, device) == labels for m in models])
    out = torch.zeros(len(models), len(images), dtype=torch.bool)
    idx = live.nonzero().squeeze(1)
    if len(idx):
        out[:, idx] = torch.stack([predict(m.model, images[idx], device) == labels[idx] for m in models])
    return out


@dataclass
class PoolVotes:
    """The victim's labels on the candidates and, per pool model, whether it agrees with them.
    Rows are the pool's training models, then its validation models (the last ``n_*_val`` rows)."""

    y: torch.Tensor
    y_prime: torch.Tensor
    pos_x: torch.Tensor  # [positives, n] bool: labels x like the victim
    pos_xp: torch.Tensor  # [positives, n] float: gives x' the victim's label
    neg_xp: torch.Tensor  # [negatives, n] float: gives x' the victim's label
    n_pos_val: int
    n_neg_val: int
    # One row per robustness check, in Preset.robust_checks' order (empty without checks):
    robust_victim: torch.Tensor | None = None  # [checks, n] bool: the victim gives filtered x' the label y'
    robust_pos: torch.Tensor | None = None  # [checks, n] float: share of positive validation models that do
    pos_kinds: tuple[str, ...] = ()  # per positive row: "student" (queried the victim), "weights" (derived), "other"


def _kind(m) -> str:
    inheritance = m.meta.inheritance or ""
    if inheritance.startswith("weights"):
        return "weights"
    return "student" if m.meta.query in ("label", "prob") or "@" in m.arch else "other"


def _behind(spec: str, model):
    """``model`` deployed behind the input filter ``spec`` (a [0,1]-input model, as pool models are)."""
    from torch import nn

    from gfaudit_trainer.models import input_filters

    return nn.Sequential(input_filters.make(spec), model).eval()


def robust_votes(
    victim, pos_val, x_prime: torch.Tensor, y_prime: torch.Tensor, checks: tuple[str, ...], device, live=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per check: does the victim keep y' on the filtered x', and what share of ``pos_val`` does.
    Random filters (noise) draw from a fixed seed, so a selection is reproducible."""
    victim_rows, pos_rows = [], []
    for spec in checks:
        torch.manual_seed(0)
        victim_rows.append(_agree([_Wrapped(_behind(spec, victim))], x_prime, y_prime, device, live)[0])
        wrapped = [_Wrapped(_behind(spec, m.model)) for m in pos_val]
        pos_rows.append(
            _agree(wrapped, x_prime, y_prime, device, live).float().mean(0) if wrapped else torch.ones(len(x_prime))
        )
    n = len(x_prime)
    empty = torch.zeros(0, n)
    return (torch.stack(victim_rows) if checks else empty.bool()), (torch.stack(pos_rows) if checks else empty)


@dataclass
class _Wrapped:
    """The shape ``_agree`` reads (``.model``) for a model that is not a pool entry."""

    model: object


def vote(
    victim,
    pools: Pools,
    x: torch.Tensor,
    x_prime: torch.Tensor,
    device,
    true_labels: torch.Tensor | None = None,
    robust_checks: tuple[str, ...] = (),
) -> PoolVotes:
    """Label the candidates with the victim and every pool model (the expensive half of selection).
    With ``true_labels``, the pool models label only the candidates the victim gets right on x and
    flips on x': ``choose`` reads no other column, so its result is the same, for less work."""
    y = predict(victim, x, device)
    y_prime = predict(victim, x_prime, device)
    live = None if true_labels is None else (y == true_labels) & (y_prime != y)
    positives = pools.get("positive", "train") + pools.get("positive", "val")
    negatives = pools.get("negative", "train") + pools.get("negative", "val")
    r_victim, r_pos = robust_votes(victim, pools.get("positive", "val"), x_prime, y_prime, robust_checks, device, live)
    return PoolVotes(
        y,
        y_prime,
        _agree(positives, x, y, device, live),
        _agree(positives, x_prime, y_prime, device, live).float(),
        _agree(negatives, x_prime, y_prime, device, live).float(),
        len(pools.get("positive", "val")),
        len(pools.get("negative", "val")),
        r_victim,
        r_pos,
        tuple(_kind(m) for m in positives),
    )


def follow_by_kind(v: PoolVotes, chosen: torch.Tensor) -> dict[str, float | None]:
    """How often each kind of model gives the chosen pairs' x' the victim's label: extraction
    students, weight-derived copies, and negatives (what issue 21 asks to compare)."""
    out: dict[str, float | None] = {}
    for kind in ("student", "weights"):
        rows = [i for i, k in enumerate(v.pos_kinds) if k == kind]
        out[kind] = round(float(v.pos_xp[rows][:, chosen].mean()), 4) if rows and len(chosen) else None
    out["negative"] = round(float(v.neg_xp[:, chosen].mean()), 4) if len(v.neg_xp) and len(chosen) else None
    return out


def spread(
    order: torch.Tensor,
    x: torch.Tensor,
    x_prime: torch.Tensor,
    targets: torch.Tensor,
    k: int,
    max_cosine: float = 1.0,
    per_target: int | None = None,
) -> torch.Tensor:
    """The first ``k`` of ``order`` that keep the fingerprint input-specific: at most ``per_target``
    pairs per target class, and no perturbation with a cosine above ``max_cosine`` to an already
    chosen perturbation of the same target (near-copies of one pattern transfer like a universal one)."""
    if max_cosine >= 1.0 and per_target is None:
        return order[:k]
    chosen: list[int] = []
    dirs: dict[int, list[torch.Tensor]] = {}
    for i in order.tolist():
        if len(chosen) == k:
            break
        t = int(targets[i])
        mine = dirs.setdefault(t, [])
        if per_target is not None and len(mine) >= per_target:
            continue
        d = (x_prime[i].float() - x[i].float()).flatten()
        d = d / d.norm().clamp_min(1e-12)
        if mine and max_cosine < 1.0 and float(torch.stack(mine).mv(d).max()) > max_cosine:
            continue
        mine.append(d)
        chosen.append(i)
    return torch.tensor(chosen, dtype=torch.long)


def choose(
    votes: PoolVotes,
    x: torch.Tensor,
    x_prime: torch.Tensor,
    true_labels: torch.Tensor,
    k: int,
    pos_agree: float,
    x_agreement: bool = True,
    neg_follow: float = 1.0,
    max_cosine: float = 1.0,
    target_cap: float = 0.0,
    num_classes: int | None = None,
    robust_share: float = 0.5,
) -> Selection:
    """Filter and rank the candidates from the pools' votes (the rule of the module docstring), then
    keep the fingerprint spread over inputs and target classes (``spread``)."""
    v = votes
    candidates = (v.y == true_labels) & (v.y_prime != v.y)
    ok = candidates.clone()
    if len(v.pos_x) and x_agreement:
        ok &= v.pos_x.all(0)
    if v.n_pos_val:
        ok &= v.pos_xp[-v.n_pos_val :].mean(0) >= pos_agree
    before_robust = int(ok.sum())
    checks = 0 if v.robust_victim is None else len(v.robust_victim)
    if checks and v.robust_victim is not None and v.robust_pos is not None:
        ok &= v.robust_victim.all(0) & (v.robust_pos >= robust_share - 1e-9).all(0)
    # How often an unrelated model the selection never filtered on follows a candidate x': the
    # validation negatives' rate before selection (after it, it is near 0 by construction).
    base_rate = (
        float(v.neg_xp[-v.n_neg_val :][:, candidates].mean(1).max()) if v.n_neg_val and candidates.any() else None
    )
    if len(v.neg_xp):
        ok &= v.neg_xp.mean(0) <= neg_follow + 1e-9
    score = (v.pos_xp.mean(0) if len(v.pos_xp) else torch.zeros(len(x))) - (v.neg_xp.mean(0) if len(v.neg_xp) else 0)
    score = torch.where(ok, score, torch.full_like(score, -10.0))
    order = torch.argsort(score, descending=True, stable=True)[: int(ok.sum())]
    classes = num_classes or int(max(int(v.y.max()), int(v.y_prime.max())) + 1)
    per_target = math.ceil(target_cap * k / classes) if target_cap > 0 else None
    chosen = spread(order, x, x_prime, v.y_prime, k, max_cosine, per_target)
    stats = VoteStats(
        candidates=len(x),
        victim_correct_and_flipped=int(candidates.sum()),
        negative_val_follow_before_selection=None if base_rate is None else round(base_rate, 4),
        eligible=int(ok.sum()),
        selected=len(chosen),
        max_cosine=max_cosine,
        per_target_cap=per_target,
        mean_conferrability=round(float(score[chosen].mean()), 4) if len(chosen) else None,
        robust_checks=checks,
        robust_share=robust_share if checks else None,
        robust_rejected=before_robust - int((ok & candidates).sum()) if checks else 0,
        follow_on_selected=follow_by_kind(v, chosen),
    )
    return Selection(chosen, x[chosen], x_prime[chosen], stats)


def select(
    victim,
    pools: Pools,
    x: torch.Tensor,
    x_prime: torch.Tensor,
    true_labels: torch.Tensor,
    k: int,
    pos_agree: float,
    device,
    x_agreement: bool = True,
    neg_follow: float = 1.0,
    max_cosine: float = 1.0,
    target_cap: float = 0.0,
    num_classes: int | None = None,
    robust_checks: tuple[str, ...] = (),
    robust_share: float = 0.5,
) -> Selection:
    """Label the candidates with the pools, then keep the best K pairs."""
    return choose(
        vote(victim, pools, x, x_prime, device, true_labels, robust_checks),
        x,
        x_prime,
        true_labels,
        k,
        pos_agree,
        x_agreement,
        neg_follow,
        max_cosine,
        target_cap,
        num_classes,
        robust_share,
    )


def select_ranked(
    victim, x: torch.Tensor, x_prime: torch.Tensor, true_labels: torch.Tensor, rank: torch.Tensor, k: int, device
) -> Selection:
    """For baselines: pairs the victim gets right on x and labels differently on x', best ``rank`` first."""
    y = predict(victim, x, device)
    ok = (y == true_labels) & (predict(victim, x_prime, device) != y)
    score = torch.where(ok, rank.float(), torch.full_like(rank.float(), float("-inf")))
    chosen = torch.argsort(score, descending=True, stable=True)[: min(k, int(ok.sum()))]
    stats = SelectionStats(candidates=len(x), eligible=int(ok.sum()), selected=len(chosen))
    return Selection(chosen, x[chosen], x_prime[chosen], stats)


def model_scores(models, sel: Selection, victim, device, rule: str = "ard") -> list[ModelScore]:
    """Score, P_ori and P_conf of each model on the selected pairs (gfaudit.bundle.scoring: ARD, eqs. 7-9)."""
    y = predict(victim, sel.x, device).numpy()
    y_prime = predict(victim, sel.x_prime, device).numpy()
    rows = []
    for m in models:
        s = scoring.score(
            rule, y, y_prime, predict(m.model, sel.x, device).numpy(), predict(m.model, sel.x_prime, device).numpy()
        )
        hit_rate = (
            s.p_conf if rule == "ard" else s.match_rate
        )  # what a pirate does on one pair (gfaudit.bundle.null_model)
        rows.append(
            ModelScore(
                m.to_json(),
                score=round(s.score, 4),
                ard=round(s.p_conf - s.p_ori, 4),
                p_ori=round(s.p_ori, 4),
                p_conf=round(s.p_conf, 4),
                hits=int(round(hit_rate * len(y))),
            )
        )
    return rows


def false_accusation_floor(follow_rate: float, k: int, false_accusation_rate: float = 1e-3) -> float:
    """The smallest score j/K that an unrelated model following each of K pairs independently with
    probability ``follow_rate`` reaches with probability at most false_accusation_rate (exact binomial tail).

    Selection filters pairs on the validation negatives, so their ARD on the selected pairs is near 0
    by construction and says little about unseen unrelated models. Their follow rate *before*
    selection does not have that bias; a threshold at or above this floor keeps such a model's
    chance of being called derived below false_accusation_rate."""
    k = max(int(k), 1)
    q = min(max(follow_rate, 0.0), 1.0)
    tail = 0.0
    for j in range(k, -1, -1):  # tail = P(X >= j), growing as j falls
        tail += math.comb(k, j) * q**j * (1 - q) ** (k - j)
        if tail > false_accusation_rate:
            return (j + 1) / k
    return 0.0


def calibrate(pos_scores: list[float], neg_scores: list[float], floor: float = 0.0) -> float:
    """Threshold between the validation pools: the midpoint of the gap when they separate, else the
    cut that maximises balanced accuracy (ties broken toward the higher, more cautious threshold);
    raised to ``floor`` (false_accusation_floor) when that is higher.
    Kept within [0.05, 0.95]: a threshold at or below 0 would call a model that ignores x' derived."""
    return min(0.95, max(0.05, round(max(_between(pos_scores, neg_scores), floor), 4)))


def _between(pos_scores: list[float], neg_scores: list[float]) -> float:
    if not pos_scores or not neg_scores:
        return 0.5
    lo, hi = max(neg_scores), min(pos_scores)
    if hi > lo:
        return (lo + hi) / 2
    best, best_t = -1.0, 0.5
    for t in sorted(set(pos_scores + neg_scores)):
        tpr = sum(s >= t for s in pos_scores) / len(pos_scores)
        tnr = sum(s < t for s in neg_scores) / len(neg_scores)
        if (tpr + tnr) / 2 >= best:
            best, best_t = (tpr + tnr) / 2, t
    return best_t
