"""Attacks a pirate applies to a stolen model, as registered recipes (paper appendix A).

Each recipe takes the loaded Context (victim, attacker data D_a, test data) and returns a bare
model (normalised input -> logits), so every suspect is exported exactly like the victim. Where the
paper is vague we use the usual choices of the watermark-removal literature, documented per recipe
in ``hyper`` and in docs/attacks.md. Pirated recipes start from the victim or query it; unrelated
recipes never see it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from gfaudit_trainer.models import derived, zoo
from gfaudit_trainer.models.training import FitConfig, fit, predict


@dataclass(frozen=True)
class Scale:
    """How hard each attack trains; one row per preset (see library.SCALES)."""

    finetune_epochs: int
    extract_epochs: int
    adv_epochs: int
    lr_finetune: float = 0.01
    lr_scratch: float = 0.05
    data_fraction: float = 1.0  # share of D_a the attacker uses
    batch_size: int = 128
    recipe: str = (
        "classic"  # how models trained from scratch learn (trainer/models/recipes.py); fine-tuning stays classic
    )
    query: bool = False  # extraction students ask the victim about every augmented batch, as a determined pirate does
    temperature: float = 1.0  # probability extraction distils at this temperature
    scratch_epochs: int | None = None  # unrelated models (None: extract_epochs)
    unrelated_data: str = "d_a"  # "d_a", or "all": the whole training split, as public models are trained


def scratch_config(
    scale: Scale, arch: str, epochs: int, seed: int, query: str = "", temperature: float = 1.0
) -> FitConfig:
    """A model trained from scratch at this scale: the scale's recipe, with ``arch``'s fast defaults."""
    if scale.recipe == "fast":
        return FitConfig.fast(epochs, arch, seed=seed, query=query, temperature=temperature)
    return FitConfig(epochs, scale.lr_scratch, scale.batch_size, seed=seed, query=query, temperature=temperature)


@dataclass(frozen=True)
class Recipe:
    name: str
    family: str
    label: str  # "pirated" or "unrelated"
    arch: str | None  # None: the victim's own architecture
    hyper: dict
    run: Callable = field(repr=False, compare=False)


def _attacker_data(ctx, scale: Scale, seed: int):
    n = max(1, int(len(ctx.d_a) * scale.data_fraction))
    idx = torch.randperm(len(ctx.d_a), generator=torch.Generator().manual_seed(seed))[:n]
    return ctx.d_a.subset(idx)


def finetune(ctx, scale: Scale, seed: int, *, last_only: bool, reinit: bool, epochs_factor: int = 1) -> nn.Module:
    """FTLL / FTAL / RTLL / RTAL on the attacker's labelled data (true labels)."""
    data = _attacker_data(ctx, scale, seed)
    cfg = FitConfig(scale.finetune_epochs * epochs_factor, scale.lr_finetune, scale.batch_size, seed=seed)
    desc = f"{'RT' if reinit else 'FT'}{'LL' if last_only else 'AL'}"
    return derived.finetune(
        ctx.bare,
        ctx.mean,
        ctx.std,
        data.images,
        data.labels,
        cfg,
        ctx.device,
        last_only=last_only,
        reinit=reinit,
        desc=desc,
    )


def prune(ctx, scale: Scale, seed: int, *, ratio: float) -> nn.Module:
    """Global magnitude pruning: the ``ratio`` smallest |w| of all conv and linear weights set to 0."""
    return derived.prune(ctx.bare, ratio)


def _student(ctx, arch: str, seed: int) -> zoo.Normalized:
    torch.manual_seed(seed)
    return zoo.Normalized(zoo.build(arch or ctx.arch or "resnet20", ctx.num_classes), ctx.mean, ctx.std)


def extract(ctx, scale: Scale, seed: int, *, arch: str, soft: bool) -> nn.Module:
    """Model extraction through the victim's API: its labels (CE) or its posteriors (KL at the
    scale's temperature), asked once per image or, with ``scale.query``, for every augmented batch."""
    data = _attacker_data(ctx, scale, seed)
    query = ("prob" if soft else "label") if scale.query else ""
    targets = data.labels if query else predict(ctx.victim, data.images, ctx.device, probs=soft)
    model = _student(ctx, arch, seed)
    cfg = scratch_config(scale, arch, scale.extract_epochs, seed, query, scale.temperature if soft else 1.0)
    fit(
        model,
        data.images,
        targets,
        cfg,
        ctx.device,
        teacher=ctx.victim if query else None,
        desc=f"extract-{'prob' if soft else 'label'}-{arch}",
    )
    return model.model


fgsm_perturb = derived.fgsm_perturb


def adversarial(ctx, scale: Scale, seed: int, *, arch: str, fgsm_bound: float = 8 / 255) -> nn.Module:
    """Label extraction, then FGSM adversarial training on the attacker data (paper: two rounds)."""
    data = _attacker_data(ctx, scale, seed)
    targets = predict(ctx.victim, data.images, ctx.device)
    model = _student(ctx, arch, seed)
    fit(
        model,
        data.images,
        targets,
        scratch_config(scale, arch, scale.extract_epochs, seed),
        ctx.device,
        desc=f"adv-extract-{arch}",
    )
    fit(
        model,
        data.images,
        targets,
        FitConfig(scale.adv_epochs, scale.lr_finetune, scale.batch_size, seed=seed + 1),
        ctx.device,
        perturb=fgsm_perturb(fgsm_bound),
        desc=f"adv-train-{arch}",
    )
    return model.model


def unrelated(ctx, scale: Scale, seed: int, *, arch: str) -> nn.Module:
    """An independent model: true labels, never the victim; on D_a or, like the public models a bundle
    must not accuse, on the whole training split (``scale.unrelated_data``). ``arch`` is a member spec
    (``pools.Member``): ``"resnet20+classic"`` trains with the classic recipe, ``"resnet20~jpeg90"`` on
    the images re-encoded (trainer/models/data_variants.py), as other people's pipelines would."""
    from gfaudit_trainer.models import data_variants
    from gfaudit_trainer.models.pools import parse_member

    m = parse_member(arch, scale.recipe, students=False)
    data = ctx.train if scale.unrelated_data == "all" else _attacker_data(ctx, scale, seed)
    model = _student(ctx, m.arch, seed)
    fit(
        model,
        data_variants.apply(m.variant, data.images),
        data.labels,
        scratch_config(replace(scale, recipe=m.recipe), m.arch, scale.scratch_epochs or scale.extract_epochs, seed),
        ctx.device,
        desc=f"unrelated-{arch}",
    )
    return model.model


def weight_noise(ctx, scale: Scale, seed: int, *, sigma: float) -> nn.Module:
    """The victim with Gaussian noise on every conv and linear weight, ``sigma`` times each tensor's std."""
    g = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(ctx.bare)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.add_(torch.randn(m.weight.shape, generator=g) * sigma * m.weight.std())
    return model.eval()


def adversarial_finetune(ctx, scale: Scale, seed: int, *, fgsm_bound: float = 8 / 255) -> nn.Module:
    """The victim fine-tuned with FGSM adversarial training on the attacker's labelled data: the
    removal attack that most changes how a copy labels adversarial inputs."""
    data = _attacker_data(ctx, scale, seed)
    cfg = FitConfig(scale.adv_epochs, scale.lr_finetune, scale.batch_size, seed=seed)
    return derived.finetune(
        ctx.bare,
        ctx.mean,
        ctx.std,
        data.images,
        data.labels,
        cfg,
        ctx.device,
        fgsm_bound=fgsm_bound,
        desc="adv-finetune",
    )


def adversarial_finetune_student(ctx, scale: Scale, seed: int, *, arch: str, fgsm_bound: float = 8 / 255) -> nn.Module:
    """A label-extraction student (as ``extract``), then FGSM adversarial fine-tuning of it: a pirate
    who both extracts and hardens the copy."""
    student = extract(ctx, scale, seed, arch=arch, soft=False)
    data = _attacker_data(ctx, scale, seed + 1)
    cfg = FitConfig(scale.adv_epochs, scale.lr_finetune, scale.batch_size, seed=seed + 1)
    return derived.finetune(
        student,
        ctx.mean,
        ctx.std,
        data.images,
        data.labels,
        cfg,
        ctx.device,
        fgsm_bound=fgsm_bound,
        desc=f"adv-finetune-{arch}",
    )


def filtered(ctx, scale: Scale, seed: int, *, spec: str) -> nn.Module:
    """The unchanged victim deployed behind the input filter ``spec`` (trainer/models/input_filters.py)."""
    return derived.derive(f"filter:{spec}", ctx.bare, ctx.mean, ctx.std)


class _Blur(nn.Module):
    """A 3x3 Gaussian input filter in front of the stolen model (commutes with per-channel normalisation)."""

    def __init__(self, model: nn.Module, sigma: float):
        super().__init__()
        ax = torch.tensor([-1.0, 0.0, 1.0])
        k1 = torch.exp(-(ax**2) / (2 * sigma**2))
        k = torch.outer(k1, k1)
        self.register_buffer("kernel", (k / k.sum()).expand(3, 1, 3, 3).clone())
        self.model = model

    def forward(self, x):
        return self.model(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel, groups=3))


def input_filter(ctx, scale: Scale, seed: int, *, sigma: float) -> nn.Module:
    """The victim deployed behind a blur filter that can wash out small perturbations."""
    return _Blur(copy.deepcopy(ctx.bare), sigma).eval()


def _r(name, family, label, model_arch, hyper, fn, **kw) -> Recipe:
    return Recipe(name, family, label, model_arch, hyper, lambda ctx, scale, seed: fn(ctx, scale, seed, **kw))


def registry(
    extract_archs=("resnet20", "vgg11:width=0.5"),
    unrelated_archs=("resnet20", "vgg11:width=0.5"),
    adv_archs=("vgg11:width=0.5",),
) -> dict[str, Recipe]:
    """All recipes by name; ``library.SCALES`` picks which ones run at each preset."""
    ft = {"data": "D_a, true labels", "optimizer": "SGD momentum 0.9, cosine lr"}
    recipes = [
        _r("copy", "copy", "pirated", None, {"what": "the victim, unchanged"}, prune, ratio=0.0),
        _r("ftll", "fine-tune", "pirated", None, {**ft, "layers": "last"}, finetune, last_only=True, reinit=False),
        _r("ftal", "fine-tune", "pirated", None, {**ft, "layers": "all"}, finetune, last_only=False, reinit=False),
        _r(
            "rtll",
            "fine-tune",
            "pirated",
            None,
            {**ft, "layers": "last, re-initialised"},
            finetune,
            last_only=True,
            reinit=True,
        ),
        _r(
            "rtal",
            "fine-tune",
            "pirated",
            None,
            {**ft, "layers": "all, last re-initialised"},
            finetune,
            last_only=False,
            reinit=True,
        ),
    ]
    recipes += [
        _r(
            f"prune-{r:.1f}",
            "pruning",
            "pirated",
            None,
            {"ratio": r, "scope": "global, conv+linear weights"},
            prune,
            ratio=r,
        )
        for r in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    ]
    recipes += [
        _r(
            f"noise-{s:.2f}",
            "weight-noise",
            "pirated",
            None,
            {"sigma": f"{s} x each weight tensor's std"},
            weight_noise,
            sigma=s,
        )
        for s in (0.05, 0.1)
    ]
    recipes += [
        _r(
            "adv-finetune",
            "adv-finetune",
            "pirated",
            None,
            {**ft, "fgsm_eps": "8/255", "mix": "half clean, half FGSM", "start": "the victim"},
            adversarial_finetune,
        )
    ]
    recipes += [
        _r(
            "filter-blur",
            "input-filter",
            "pirated",
            None,
            {"kernel": "3x3 Gaussian", "sigma": 0.7},
            input_filter,
            sigma=0.7,
        )
    ]
    for arch in extract_archs:
        recipes.append(
            _r(
                f"extract-label-{arch}",
                "extract-label",
                "pirated",
                arch,
                {"data": "D_a queried for labels"},
                extract,
                arch=arch,
                soft=False,
            )
        )
        recipes.append(
            _r(
                f"extract-prob-{arch}",
                "extract-prob",
                "pirated",
                arch,
                {"data": "D_a queried for posteriors", "loss": "KL"},
                extract,
                arch=arch,
                soft=True,
            )
        )
    for arch in adv_archs:
        recipes.append(
            _r(
                f"adv-extract-{arch}",
                "adv-train",
                "pirated",
                arch,
                {"fgsm_eps": "8/255", "mix": "half clean, half FGSM"},
                adversarial,
                arch=arch,
            )
        )
    for i, arch in enumerate(unrelated_archs):
        recipes.append(
            _r(
                f"unrelated-{arch}-{i}",
                "unrelated",
                "unrelated",
                arch.partition("+")[0].partition("~")[0],
                {"data": "true labels", "member": arch},
                unrelated,
                arch=arch,
            )
        )
    # What a pirate does to get past a fingerprint (issue 21), after the older recipes so that their
    # seeds (the place in this registry) stay as they were. The strengths differ from the pools'
    # weight-derived positives (trainer/presets.py): other filters and strengths, other data (D_a).
    recipes += [
        _r(
            f"filter-{spec.replace('@', '-')}",
            "input-filter",
            "pirated",
            None,
            {"filter": spec, "what": "the unchanged victim behind it"},
            filtered,
            spec=spec,
        )
        for spec in LIBRARY_FILTERS
    ]
    recipes.append(
        _r(
            "ftal-long",
            "fine-tune",
            "pirated",
            None,
            {**ft, "layers": "all", "epochs": "3 x the scale's fine-tuning epochs"},
            finetune,
            last_only=False,
            reinit=False,
            epochs_factor=3,
        )
    )
    for arch in extract_archs[:1]:
        recipes.append(
            _r(
                f"adv-finetune-student-{arch}",
                "adv-finetune",
                "pirated",
                arch,
                {"data": "D_a queried for labels, then D_a with true labels", "fgsm_bound": "8/255"},
                adversarial_finetune_student,
                arch=arch,
            )
        )
    return {r.name: r for r in recipes}


# Input filters a pirate puts in front of the stolen model, at several strengths (the library's).
LIBRARY_FILTERS = (
    "gaussian_blur@0.5",
    "gaussian_blur@1.0",
    "median@3",
    "jpeg@90",
    "jpeg@70",
    "jpeg@50",
    "bit_depth@6",
    "bit_depth@5",
    "bit_depth@4",
    "bit_depth@3",
)
