"""Reference pools (paper 4.1), every model cached on disk so a killed run resumes.

positive: stand-ins for pirates, students trained on D_p with the victim's labels (label extraction;
          with ``PoolConfig.query`` the victim labels every augmented batch, as a pirate's API queries do);
negative: stand-ins for unrelated models, trained from scratch on D_v with the true labels.
Each pool has training models (used in the GAN losses) and validation models (selection only);
negatives also have calibration models that neither the GAN nor the selection ever sees, so the
threshold is set on models the fingerprints were not tuned against.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from gfaudit.files.atomic import atomic_path, write_text_atomic
from gfaudit_trainer.models import zoo
from gfaudit_trainer.models.data import Split
from gfaudit_trainer.models.training import FitConfig, fidelity, fit, predict
from gfaudit_trainer.presets import PoolConfig, Preset
from gfaudit_trainer.progress import log

ROLES = ("positive", "negative")
SPLITS = ("train", "val", "calib")


@dataclass(frozen=True)
class PoolRecord:
    """How a pool model was made and what it measured: the ``.json`` beside each cached model (the
    same keys as ever, so a cache stays valid), or a reference model's facts. None: not recorded."""

    arch: str | None = None
    accuracy: float | None = None
    agreement_with_victim: float | None = None
    agreement_on_victim_errors: float | None = None
    epochs: int | None = None
    query: str | None = None  # "fixed", "label" or "prob"
    recipe: str | None = None
    seed: int | None = None
    train_images: int | None = None
    seconds: float | None = None
    data_variant: str | None = None  # trainer/models/data_variants.py
    inheritance: str | None = None
    source: str | None = None  # "reference" for a --reference model
    file: str | None = None
    sha256: str | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, raw: dict) -> PoolRecord:
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


# What a bundle's provenance says of each pool model beyond its role, accuracy and agreement, in order.
_SIGNED_RECORD_FIELDS = (
    "query",
    "recipe",
    "data_variant",
    "inheritance",
    "epochs",
    "train_images",
    "agreement_on_victim_errors",
    "seconds",
    "source",
    "file",
    "sha256",
)


@dataclass
class PoolModel:
    role: str
    split: str  # "train" or "val"
    index: int
    arch: str
    accuracy: float
    agreement: float  # share of test images labelled like the victim (fidelity)
    model: nn.Module
    meta: PoolRecord = field(default_factory=PoolRecord)  # how it was trained

    def to_json(self) -> dict:
        recorded = self.meta.to_json()
        extra = {k: recorded[k] for k in _SIGNED_RECORD_FIELDS if k in recorded}
        return {
            "role": self.role,
            "split": self.split,
            "index": self.index,
            "arch": self.arch,
            "accuracy": round(self.accuracy, 4),
            "agreement_with_victim": round(self.agreement, 4),
            **extra,
        }


@dataclass
class Pools:
    models: list[PoolModel]
    data_world: dict | None = None  # trainer/models/data_world.py's figures, signed into the provenance

    def get(self, role: str, split: str) -> list[PoolModel]:
        return [m for m in self.models if m.role == role and m.split == split]

    def summary(self) -> list[dict]:
        return [m.to_json() for m in self.models]


def _seed(base: int, role: str, split: str, index: int) -> int:
    return base * 1009 + ROLES.index(role) * 101 + (0, 53, 77)[SPLITS.index(split)] + index


def model_name(role: str, split: str, index: int, arch: str, cfg: FitConfig, data: str = "own") -> str:
    """File stem of a cached pool model: readable, plus a hash of everything that shapes its weights,
    so changing one pool's recipe retrains that pool only."""
    defaults = {"query": "", "recipe": "classic", "temperature": 1.0, "bias_scaler": None}
    fields = {
        k: v for k, v in asdict(cfg).items() if not (k in defaults and v == defaults[k])
    }  # older names stay valid
    if data != "own":
        fields["data"] = data
    recipe = json.dumps({"arch": arch, **fields}, sort_keys=True)
    safe = arch.replace(":", "_").replace(",", "_").replace("=", "").replace("@", "-").replace("/", "-")
    return f"{role}-{split}{index}-{safe}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"


def save_model(model: nn.Module, path: Path, meta: PoolRecord) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_text_atomic(path.with_suffix(".json"), json.dumps(meta.to_json(), indent=2))


def load_model(arch: str, path: Path, mean, std, num_classes: int) -> nn.Module:
    model = zoo.Normalized(zoo.build(arch, num_classes), mean, std)
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def train_or_load(
    arch: str,
    path: Path,
    images,
    targets,
    cfg: FitConfig,
    test: Split,
    victim_test: torch.Tensor,
    mean,
    std,
    num_classes: int,
    device,
    desc: str,
    extra_meta: dict | None = None,
    teacher: nn.Module | None = None,
) -> tuple[nn.Module, PoolRecord]:
    """A cached model and its meta, or train it (checkpointed per epoch) and cache it."""
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        meta = PoolRecord.from_json(json.loads(meta_path.read_text()))
        return load_model(arch, path, mean, std, num_classes).to(device), meta
    torch.manual_seed(cfg.seed)
    model = zoo.Normalized(zoo.build(arch, num_classes), mean, std)
    started = time.perf_counter()
    fit(model, images, targets, cfg, device, checkpoint=path.with_suffix(".ckpt"), teacher=teacher, desc=desc)
    seconds = time.perf_counter() - started  # since the last resume: a resumed model's earlier epochs are not counted
    fid = fidelity(predict(model, test.images, device), victim_test, test.labels)
    acc, agree, on_errors = fid.accuracy, fid.agreement, fid.on_errors
    meta = PoolRecord(
        arch=arch,
        accuracy=acc,
        agreement_with_victim=agree,
        agreement_on_victim_errors=on_errors,
        epochs=cfg.epochs,
        query=cfg.query or "fixed",
        recipe=cfg.recipe,
        seed=cfg.seed,
        train_images=len(images),
        seconds=round(seconds, 1),
        **(extra_meta or {}),
    )
    save_model(model.cpu(), path, meta)
    path.with_suffix(".ckpt").unlink(missing_ok=True)
    log(f"{desc}: test accuracy {acc:.1%}, agrees with victim on {agree:.1%} ({on_errors:.1%} of its errors)")
    return model.to(device).eval(), meta


DERIVED_PREFIX = "victim/"  # a pool entry made from the victim's own weights (trainer/models/derived.py)


@dataclass(frozen=True)
class Member:
    """One pool entry, parsed from its spec ``ARCH[@QUERY][+RECIPE][~VARIANT]`` or ``victim/DERIVATION``.

    ``"resnet20@label"``: a student asking the victim for labels; ``"resnet20+classic"``: trained
    with the classic SGD recipe instead of the pool's; ``"airbench:width=0.5~jpeg50"``: trained on
    the owner's images re-encoded (trainer/models/data_variants.py), a stand-in for another copy of the data;
    ``"victim/fgsm"``, ``"victim/prune:0.7"``, ``"victim/filter:jpeg@70"``: a weight-derived copy of
    the victim, as a pirate makes in minutes (positives only).
    """

    arch: str
    query: str  # "" (fixed targets), "label" or "prob" (positives only)
    recipe: str  # a name in recipes.RECIPES
    variant: str  # a name in data_variants.VARIANTS
    derivation: str = ""  # a spec of trainer/models/derived.py for a weight-derived copy ("": trained from scratch)

    @property
    def inheritance(self) -> str:
        """What the model inherited from the victim, as the provenance records it."""
        if self.derivation:
            from gfaudit_trainer.models import derived

            return "weights: " + derived.parse(self.derivation).describe()
        return {
            "": "none",
            "label": "victim labels per augmented batch",
            "prob": "victim probabilities per augmented batch",
        }[self.query]


def parse_member(spec: str, recipe: str, query: str = "", students: bool = True) -> Member:
    """The parsed entry ``spec`` (see :class:`Member`) with ``recipe`` and ``query`` as defaults;
    ``students=False`` drops any query (negatives and unrelated models never ask the victim).
    KeyError names an unknown recipe or variant."""
    from gfaudit_trainer.models import data_variants, derived, recipes

    if spec.startswith(DERIVED_PREFIX):
        if not students:
            raise ValueError(f"{spec}: a copy of the victim can only be a positive")
        derivation = spec[len(DERIVED_PREFIX) :]
        derived.parse(derivation)
        return Member("victim", "", recipe if recipe == "classic" else "classic", "own", derivation)
    rest, _, variant = spec.partition("~")
    rest, _, own_recipe = rest.partition("+")
    arch, _, own_query = rest.partition("@")
    m = Member(arch, (own_query or query) if students else "", own_recipe or recipe, variant or "own")
    recipes.get(m.recipe)
    data_variants.get(m.variant)
    return m


def member(spec: str, pool: PoolConfig, role: str) -> Member:
    """The parsed pool entry ``spec``: the pool's recipe and (positives only) query by default."""
    return parse_member(spec, pool.recipe, pool.query, students=role == "positive")


def fit_config(
    pool: PoolConfig, arch: str, query: str, seed: int, batch_size: int, recipe: str | None = None
) -> FitConfig:
    """How one pool model trains: the pool's (or the entry's) recipe, epochs and (for students) query."""
    epochs = pool.epochs_for(arch)
    if (recipe or pool.recipe) == "fast":
        return FitConfig.fast(
            epochs, arch, seed=seed, query=query, temperature=pool.temperature if query == "prob" else 1.0
        )
    return FitConfig(
        epochs=epochs,
        lr=pool.lr,
        batch_size=batch_size,
        seed=seed,
        query=query,
        temperature=pool.temperature if query == "prob" else 1.0,
    )


@dataclass(frozen=True)
class PoolJob:
    """One pool model to train: pure data, so any executor can run it (trainer/executors.py)."""

    role: str
    split: str
    index: int
    spec: str  # the pool entry, e.g. "resnet20@prob"
    arch: str
    cfg: FitConfig
    path: Path  # its cache file: the same name whichever executor trains it
    variant: str = "own"  # the data variant it trains on (trainer/models/data_variants.py)
    inheritance: str = "none"
    derivation: str = ""  # a weight-derived copy of the victim (trainer/models/derived.py)

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass
class PoolData:
    """What every pool job reads: training images and fixed targets per role, the test split, the
    victim (teacher of per-batch queries) and its test labels. Sent once to each worker."""

    images: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]  # true labels of the same images (weight-derived copies fine-tune on them)
    test: Split
    victim_test: torch.Tensor
    victim: nn.Module
    mean: list
    std: list
    num_classes: int
    device: object
    _variants: dict = field(default_factory=dict, repr=False)  # (role, variant) -> images, made once per process

    def images_for(self, role: str, variant: str) -> torch.Tensor:
        """The training images of ``role`` as the data variant ``variant`` has them."""
        from gfaudit_trainer.models import data_variants

        if variant == "own":
            return self.images[role]
        if (role, variant) not in self._variants:
            log(f"data variant {variant}: {data_variants.get(variant).description}")
            self._variants[role, variant] = data_variants.apply(variant, self.images[role])
        return self._variants[role, variant]


def jobs(preset: Preset, cache: Path, seed: int) -> list[PoolJob]:
    """Every pool model of ``preset``, in the pools' order, with its cache file in ``cache``."""
    configs: dict[str, PoolConfig] = {"positive": preset.positive, "negative": preset.negative}
    out = []
    for role in ROLES:
        pool = configs[role]
        for split, specs in (("train", pool.train_archs), ("val", pool.val_archs), ("calib", pool.calib_archs)):
            for i, spec in enumerate(specs):
                m = member(spec, pool, role)
                if m.derivation:
                    cfg = derived_config(pool, m.derivation, _seed(seed, role, split, i), preset.batch_size)
                else:
                    cfg = fit_config(pool, m.arch, m.query, _seed(seed, role, split, i), preset.batch_size, m.recipe)
                plain = not any(c in spec for c in "@+~")
                name = model_name(role, split, i, m.arch if plain else spec, cfg, pool.data)
                path = cache / f"{name}.safetensors"
                out.append(PoolJob(role, split, i, spec, m.arch, cfg, path, m.variant, m.inheritance, m.derivation))
    return out


def derived_config(pool: PoolConfig, derivation: str, seed: int, batch_size: int) -> FitConfig:
    """How a weight-derived positive is fine-tuned: the pool's derived epochs at a small rate (classic)."""
    epochs = pool.derived_epochs if derivation.partition(":")[0] in ("ftal", "fgsm") else 0
    return FitConfig(epochs=epochs, lr=pool.derived_lr, batch_size=batch_size, seed=seed)


def is_cached(job: PoolJob) -> bool:
    if job.derivation and not job.cfg.epochs:
        return True  # pruned or filtered copies are made in seconds, never trained: nothing to cache
    return job.path.is_file() and job.path.with_suffix(".json").is_file()


def pool_data(
    victim: nn.Module, d_v: Split, d_p: Split, test: Split, preset: Preset, device, mean, std, num_classes: int
) -> PoolData:
    images, targets, labels = {}, {}, {}
    for role, pool in (("positive", preset.positive), ("negative", preset.negative)):
        both = pool.data == "d_v+d_p"
        if role == "negative":
            images[role] = torch.cat([d_v.images, d_p.images]) if both else d_v.images
            targets[role] = labels[role] = torch.cat([d_v.labels, d_p.labels]) if both else d_v.labels
        else:
            images[role] = torch.cat([d_v.images, d_p.images]) if both else d_p.images
            labels[role] = torch.cat([d_v.labels, d_p.labels]) if both else d_p.labels
            # Fixed targets serve only members without per-batch queries: skip labelling when none needs them.
            entries = (*pool.train_archs, *pool.val_archs, *pool.calib_archs)
            if all(member(spec, pool, role).query or member(spec, pool, role).derivation for spec in entries):
                targets[role] = torch.empty(0, dtype=torch.long)
            else:
                targets[role] = predict(victim, images[role], device, probs=pool.query == "prob")
    victim_test = predict(victim, test.images, device)
    return PoolData(images, targets, labels, test, victim_test, victim, mean, std, num_classes, device)


def derive_or_load(job: PoolJob, data: PoolData) -> tuple[nn.Module, PoolRecord]:
    """A weight-derived copy of the victim: fine-tuned ones cached like any pool model, pruned and
    filtered ones made again in seconds (their record says so)."""
    from gfaudit_trainer.models import derived

    bare = cast(nn.Module, data.victim.model)
    meta_path = job.path.with_suffix(".json")
    if job.cfg.epochs and job.path.is_file() and meta_path.is_file():
        model = copy.deepcopy(bare)
        model.load_state_dict(load_file(str(job.path)))
        meta = PoolRecord.from_json(json.loads(meta_path.read_text()))
        return zoo.Normalized(model, data.mean, data.std).to(data.device).eval(), meta
    started = time.perf_counter()
    images, labels = data.images_for(job.role, job.variant), data.labels[job.role]
    made = derived.derive(
        job.derivation, bare, data.mean, data.std, images, labels, job.cfg, data.device, desc=job.name
    )
    model = zoo.Normalized(made, data.mean, data.std).to(data.device).eval()
    fid = fidelity(predict(model, data.test.images, data.device), data.victim_test, data.test.labels)
    meta = PoolRecord(
        arch=job.spec,
        accuracy=fid.accuracy,
        agreement_with_victim=fid.agreement,
        agreement_on_victim_errors=fid.on_errors,
        epochs=job.cfg.epochs,
        query="fixed",
        recipe="derived",
        seed=job.cfg.seed,
        train_images=len(images) if job.cfg.epochs else 0,
        seconds=round(time.perf_counter() - started, 1),
        data_variant=job.variant,
        inheritance=job.inheritance,
    )
    if job.cfg.epochs:
        save_model(made, job.path, meta)
    log(f"{job.name}: test accuracy {fid.accuracy:.1%}, agrees with victim on {fid.agreement:.1%}")
    return model, meta


def run_job(job: PoolJob, data: PoolData):
    """Train (or load) one pool model into its cache file; the task every executor runs."""
    if job.derivation:
        return derive_or_load(job, data)
    return train_or_load(
        job.arch,
        job.path,
        data.images_for(job.role, job.variant),
        data.targets[job.role],
        job.cfg,
        data.test,
        data.victim_test,
        data.mean,
        data.std,
        data.num_classes,
        data.device,
        desc=job.name,
        teacher=data.victim if job.cfg.query else None,
        extra_meta={"data_variant": job.variant, "inheritance": job.inheritance},
    )


def train_job(job: PoolJob, data: PoolData) -> str:
    """Train one pool model into the cache (executor task); returns its file name, not the model."""
    run_job(job, data)
    return job.path.name


def build(
    victim: nn.Module,
    d_v: Split,
    d_p: Split,
    test: Split,
    preset: Preset,
    cache: Path,
    device,
    mean,
    std,
    num_classes: int,
    seed: int,
    executor=None,
    resources=None,
) -> Pools:
    """Every pool model: the missing ones trained through ``executor`` (default: in this process),
    then all loaded from the cache, so local and Ray runs reuse each other's models."""
    from gfaudit_trainer import executors

    cache.mkdir(parents=True, exist_ok=True)
    data = pool_data(victim, d_v, d_p, test, preset, device, mean, std, num_classes)
    todo = jobs(preset, cache, seed)
    missing = [j for j in todo if not is_cached(j)]
    if missing:
        executor = executor or executors.LocalExecutor()
        resources = resources or executors.default_resources(device)
        log(f"pools: training {len(missing)} of {len(todo)} model(s) on the {executor.name} executor")
        executor.map(train_job, missing, resources, shared=data)
    models = []
    for job in todo:
        model, meta = run_job(job, data)
        models.append(
            PoolModel(
                job.role,
                job.split,
                job.index,
                job.spec,
                meta.accuracy or 0.0,
                meta.agreement_with_victim or 0.0,
                model,
                meta,
            )
        )
    return Pools(models)
