"""``gfaudit library build``: the suspect library for evaluation, as ONNX files plus library.json.

Every suspect is trained on D_a, the quarter of the training split that no pool model saw, with
seeds from a range the pools never use, so the library shares no model, seed or training subset
with the models that built the fingerprints. Each finished suspect is recorded at once: a killed
build resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from gfaudit.audit.evaluate import LibraryEntry
from gfaudit.files.atomic import write_text_atomic
from gfaudit_trainer.library import attacks
from gfaudit_trainer.library.attacks import Scale
from gfaudit_trainer.models import zoo
from gfaudit_trainer.models.export import export
from gfaudit_trainer.models.training import accuracy
from gfaudit_trainer.progress import log

LIBRARY_SEED_BASE = 1_000_000  # pools use seeds below 1009 * (seed + 1); see pools._seed


@dataclass(frozen=True)
class LibraryScale:
    scale: Scale
    recipes: tuple[str, ...] | None  # None: every recipe of the registry
    registry_kwargs: dict


_TINY_ARCH = "vgg11:width=0.25"
SCALES: dict[str, LibraryScale] = {
    "tiny": LibraryScale(
        Scale(1, 1, 1, data_fraction=0.5),
        (
            "copy",
            "prune-0.3",
            "ftll",
            "filter-blur",
            "filter-jpeg-70",
            f"extract-label-{_TINY_ARCH}",
            f"unrelated-{_TINY_ARCH}-0",
            f"unrelated-{_TINY_ARCH}-1",
        ),
        {"extract_archs": (_TINY_ARCH,), "unrelated_archs": (_TINY_ARCH, _TINY_ARCH), "adv_archs": (_TINY_ARCH,)},
    ),
    # Unrelated models as strong as public ones (the whole training split, the fast recipe, CIFAR
    # ResNets of the victim's family among them); students as a determined pirate trains them (all of
    # D_a, the victim asked about every augmented batch, probabilities distilled at T=2).
    "cpu": LibraryScale(
        Scale(
            finetune_epochs=4,
            extract_epochs=14,
            adv_epochs=2,
            recipe="fast",
            query=True,
            temperature=2.0,
            scratch_epochs=10,
            unrelated_data="all",
        ),
        None,
        {
            "extract_archs": ("resnet20", "airbench:width=0.5"),
            # Unrelated models differ from the victim the way the world's models do, and none is a pool
            # model: the victim's own architecture and recipe with other seeds, other architectures,
            # the classic recipe, other copies of the data (trainer/models/data_variants.py).
            "unrelated_archs": (
                "resnet20",
                "resnet20",
                "airbench:width=0.5",
                "resnet20+classic",
                "airbench:width=0.5~jpeg90",
                "resnet32",
                "resnet20~resize24",
            ),
            "adv_archs": ("airbench:width=0.5",),
        },
    ),
    "paper": LibraryScale(
        Scale(finetune_epochs=10, extract_epochs=60, adv_epochs=2),
        None,
        {
            "extract_archs": ("resnet20", "resnet32", "vgg16", "vgg19", "densenet"),
            "unrelated_archs": ("resnet20", "resnet32", "vgg16", "vgg19", "densenet") * 5,
            "adv_archs": ("resnet20", "resnet32", "vgg16", "vgg19", "densenet"),
        },
    ),
}


def _write_json(path: Path, doc: dict) -> None:
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")


@dataclass(frozen=True)
class LibraryJob:
    """One library model to build: pure data (the recipe by name), so any executor can run it."""

    preset: str
    name: str
    index: int
    total: int
    seed: int
    onnx_path: Path
    meta_path: Path


def jobs(preset: str, out_dir: str | Path, only: list[str] | None = None) -> list[LibraryJob]:
    """Every library model of ``preset`` (or the ``only`` ones), with its files in ``out_dir``.
    KeyError names unknown recipes."""
    lib = SCALES[preset]
    recipes = attacks.registry(**lib.registry_kwargs)
    every = list(lib.recipes or recipes)
    names = every
    if only:
        unknown = [n for n in only if n not in recipes]
        if unknown:
            raise KeyError(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(recipes)}")
        names = [n for n in every if n in only]
    out = Path(out_dir)
    # The seed follows a recipe's place in the whole library, not in the --only subset: a subset
    # built first and the rest built later give the same models as one full build.
    return [
        LibraryJob(
            preset,
            name,
            i,
            len(names),
            LIBRARY_SEED_BASE + every.index(name),
            out / f"{_stem(name).replace('=', '').replace(',', '_')}.onnx",
            out / "parts" / f"{_stem(name)}.json",
        )
        for i, name in enumerate(names)
    ]


def _stem(name: str) -> str:
    return name.replace(":", "_")


def is_cached(job: LibraryJob) -> bool:
    return job.meta_path.is_file() and job.onnx_path.is_file()


@dataclass(frozen=True)
class Library:
    """What ``library build`` wrote: the entries (in the registry's order) and how they were made."""

    models: tuple[LibraryEntry, ...]
    victim_sha256: str
    preset: str
    scale: dict
    independence: dict

    def to_json(self) -> dict:
        return {
            "models": [m.to_json() for m in self.models],
            "victim_sha256": self.victim_sha256,
            "preset": self.preset,
            "scale": self.scale,
            "independence": self.independence,
        }


def build_one(job: LibraryJob, ctx) -> LibraryEntry:
    """Train and export one suspect, then record its entry (the task every executor runs)."""
    lib = SCALES[job.preset]
    recipe = attacks.registry(**lib.registry_kwargs)[job.name]
    log(f"library [{job.index + 1}/{job.total}] {job.name}")
    start = time.perf_counter()
    bare = recipe.run(ctx, lib.scale, job.seed).cpu().eval()
    acc = accuracy(zoo.Normalized(bare, ctx.mean, ctx.std).to(ctx.device), ctx.test.images, ctx.test.labels, ctx.device)
    export(bare, job.onnx_path)
    entry = LibraryEntry(
        path=job.onnx_path.name,
        label=recipe.label,
        attack=recipe.name,
        family=recipe.family,
        arch=recipe.arch or ctx.arch,
        accuracy=round(acc, 4),
        seed=job.seed,
        hyper=recipe.hyper,
        seconds=round(time.perf_counter() - start, 1),
    )
    _write_json(job.meta_path, entry.to_json())
    log(f"library {job.name}: accuracy {acc:.1%} ({entry.seconds} s)")
    return entry


def build(
    ctx, preset: str, out_dir: str | Path, only: list[str] | None = None, executor=None, resources=None
) -> Library:
    """Build (or resume) the library: the missing models through ``executor`` (default: in this
    process), then every entry read back from parts/; writes library.json and returns it."""
    from gfaudit_trainer import executors

    lib = SCALES[preset]
    todo = jobs(preset, out_dir, only)
    out = Path(out_dir)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    independence = {
        "shares_no_model_with_pools": True,
        "training_data": (
            f"pirates: D_a, {len(ctx.d_a)} images, the quarter of the training split disjoint from D_v "
            f"and D_p (pools); unrelated models: {lib.scale.unrelated_data}, as public models are trained"
        ),
        "seeds": f"{LIBRARY_SEED_BASE}+i (pools use seeds < {LIBRARY_SEED_BASE})",
        "partition_seed": ctx.seed,
    }
    missing = [j for j in todo if not is_cached(j)]
    if missing:
        executor = executor or executors.LocalExecutor()
        resources = resources or executors.default_resources(ctx.device)
        log(f"library: building {len(missing)} of {len(todo)} model(s) on the {executor.name} executor")
        executor.map(build_one, missing, resources, shared=ctx)
    entries = tuple(LibraryEntry.from_json(json.loads(j.meta_path.read_text()), str(j.meta_path)) for j in todo)
    library = Library(entries, ctx.victim_sha256, preset, dict(lib.scale.__dict__), independence)
    _write_json(out / "library.json", library.to_json())
    return library
