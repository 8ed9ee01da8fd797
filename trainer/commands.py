"""Commands that need the trainer (torch). Declared here so ``--help`` works without torch; the
trainer is imported only when one of them runs."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gfaudit.cli.common import _STATE, Device, Executor, Normalization, app, choices, cli_errors, info, library_app
from gfaudit.errors import GfauditError, UsageError
from gfaudit.files import outputs
from gfaudit_trainer.generation.methods import names as method_names

if TYPE_CHECKING:

    class TrainMethod(str, Enum):
        ganfinger = "ganfinger"
        ipguard = "ipguard"
        conferae = "conferae"
        metafinger = "metafinger"
        deepfool = "deepfool"
else:
    TrainMethod = choices("TrainMethod", method_names())  # one module each in trainer/generation/methods/


class TrainerMissing(GfauditError):
    exit_code = 4


def trainer(module: str):
    """Import ``gfaudit_trainer.<module>`` or explain how to install it."""
    import importlib

    try:
        progress: Any = importlib.import_module("gfaudit_trainer.progress")
        progress.QUIET = _STATE["quiet"]
        return importlib.import_module(f"gfaudit_trainer.{module}")
    except ImportError as exc:
        if "torch" in str(exc) or "gfaudit_trainer" in str(exc) or "torchvision" in str(exc):
            raise TrainerMissing(f"this command needs the trainer: pip install 'gfaudit[train]' ({exc})") from None
        raise


EXECUTOR_HELP = (
    "Where the pool/library models train: local (one after another here) or ray (one Ray task each; "
    "needs gfaudit[ray]). Both write the same cache files, so each reuses the other's models."
)
RAY_ADDRESS_HELP = (
    "Ray cluster for --executor ray: auto (the running cluster), ray://HOST:10001, or none for a "
    "local Ray on this machine. On a cluster, --cache/--out must be a filesystem every node shares."
)
TASK_CPUS_HELP = (
    "CPU threads per model task (default: torch's thread count here); equal values train "
    "bit-identical models on CPU whichever executor runs them."
)
TASK_GPUS_HELP = (
    "GPU share per model task with --executor ray (default 0.25 on cuda, so four small models share a GPU)."
)


PRESET_HELP = "tiny (seconds, tests), cpu (~45 min on 2 cores, cached), paper (the paper's scale, GPU)."


@app.command()
@cli_errors
def train(
    victim: Path = typer.Option(
        ..., "--victim", help="Victim: state_dict (.pt/.safetensors, needs --arch), torch.export .pt2, or TorchScript."
    ),
    key: Path = typer.Option(..., "--key", help="Owner's private key that signs the bundle."),
    out: Path = typer.Option(
        ..., "-o", "--out", help="Bundle to write (NAME.safetensors, .sig and a .png picture beside it)."
    ),
    arch: str | None = typer.Option(None, "--arch", help="Architecture of a state_dict victim, e.g. resnet20."),
    normalization: Normalization = typer.Option(
        Normalization.imagenet, help="Mean/std the victim expects on [0,1] pixels."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="ImageFolder tree (train/, test/) or torchvision CIFAR-10 folder; absent: download CIFAR-10.",
    ),
    preset: str = typer.Option("cpu", "--preset", help=PRESET_HELP),
    device: Device = typer.Option(Device.auto, help="auto (CUDA when torch sees it), cpu or cuda."),
    cache: Path | None = typer.Option(
        None, "--cache", help="Cache for decoded data and pool models (default $GFAUDIT_CACHE or ~/.cache/gfaudit)."
    ),
    seed: int = typer.Option(0, help="Seed for the data split, pools and GAN."),
    k: int | None = typer.Option(None, "-k", help="Number of fingerprint pairs (preset default 100)."),
    eta: float | None = typer.Option(None, help="Weight of L_ADV (paper default 1)."),
    alpha: float | None = typer.Option(None, help="Weight of L_GAN (paper default 5)."),
    beta: float | None = typer.Option(None, help="Weight of L_hinge (paper default 5)."),
    gamma: float | None = typer.Option(None, help="Weight of L_conf (paper default 10)."),
    eps: float | None = typer.Option(None, help="L-inf bound of the perturbation in [0,1] pixels (default 0.05)."),
    false_accusation: float | None = typer.Option(
        None,
        "--false-accusation",
        min=1e-9,
        max=0.5,
        help="False-accusation rate aimed at: the threshold is the score an independent model reaches with at most "
        "this probability under the calibration negatives' hit-rate bound (default 0.001).",
    ),
    method: TrainMethod = typer.Option(
        TrainMethod.ganfinger, help="ganfinger, or a baseline from the same pools (gfaudit_trainer.generation.methods)."
    ),
    reference: list[Path] | None = typer.Option(
        None,
        "--reference",
        help="Independently trained model of the same task (ONNX, exported like the victim), or a folder of them; "
        "repeatable. Used label-only: alternately as a calibration negative and a selection negative.",
    ),
    executor: Executor = typer.Option(Executor.local, "--executor", help=EXECUTOR_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
    task_cpus: int | None = typer.Option(None, "--task-cpus", min=1, help=TASK_CPUS_HELP),
    task_gpus: float | None = typer.Option(None, "--task-gpus", min=0.0, help=TASK_GPUS_HELP),
    timeout: float = typer.Option(
        120.0,
        "--timeout",
        help="Seconds each --reference model may take per batch of images, in its own worker process "
        "like a suspect; past it the worker is killed (exit 4). Default 120.",
    ),
):
    """Build the pools and the GanFinger GAN, select K pairs, calibrate the threshold on negatives
    that neither the GAN nor the selection saw (and --reference models), and write a signed bundle.

    GanFinger also keeps its generator beside the bundle, as the owner's private artefact (mode 0600,
    never in the bundle): NAME.generator.safetensors, NAME.generator.json and the seed ledger
    NAME.generator.ledger.json, from which `gfaudit refresh` makes fresh bundles in seconds."""
    from gfaudit.audit.isolation import check_timeout

    check_timeout(timeout)
    outputs.guard(
        [
            outputs.file(out, "bundle"),
            outputs.file(str(out) + ".sig", "signature file"),
            outputs.file(out.with_suffix(".png"), "picture"),
            *_generator_outputs(out),
        ],
        [victim, key, data, cache, *(reference or [])],
    )
    pipeline = trainer("generation.pipeline")
    presets = trainer("presets")
    if preset not in presets.PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(presets.PRESETS)}")
    overrides = {
        "k": k,
        "eta": eta,
        "alpha": alpha,
        "beta": beta,
        "gamma": gamma,
        "eps": eps,
        "false_accusation_rate": false_accusation,
    }
    summary = pipeline.run(
        victim=str(victim),
        arch=arch,
        normalization=normalization.value,
        data=str(data) if data else None,
        preset_name=preset,
        device=device.value,
        key=str(key),
        out=str(out),
        cache=str(cache) if cache else None,
        seed=seed,
        overrides=overrides,
        method=method.value,
        references=[str(r) for r in reference or []],
        executor=executor.value,
        ray_address=ray_address,
        task_cpus=task_cpus,
        task_gpus=task_gpus,
        reference_timeout=timeout,
    )
    typer.echo(json.dumps(summary, indent=2))


def _generator_outputs(bundle_out: Path) -> list:
    from gfaudit.files.private_files import generator_files

    files = generator_files(bundle_out)
    return [
        outputs.file(files[0], "generator weights"),
        outputs.file(files[1], "generator config"),
        outputs.file(files[2], "seed ledger"),
    ]


@app.command()
@cli_errors
def refresh(
    generator: Path = typer.Option(
        ...,
        "--generator",
        help="The owner's saved generator: NAME.generator.json (or its .safetensors, or the bundle NAME.safetensors "
        "it was trained with); its seed ledger beside it is read and extended.",
    ),
    victim: Path = typer.Option(..., "--victim", help="The victim the generator was trained for (same file)."),
    key: Path = typer.Option(..., "--key", help="Owner's private key that signs the new bundle."),
    out: Path = typer.Option(
        ..., "-o", "--out", help="Bundle to write (NAME.safetensors, .sig and a .png picture beside it)."
    ),
    arch: str | None = typer.Option(
        None, "--arch", help="Architecture of a state_dict victim (default: the generator's)."
    ),
    data: Path | None = typer.Option(None, "--data", help="The data train used (the same split and seed)."),
    device: Device = typer.Option(Device.auto, help="auto (CUDA when torch sees it), cpu or cuda."),
    cache: Path | None = typer.Option(None, "--cache", help="The cache that holds train's pools."),
    k: int | None = typer.Option(
        None, "-k", min=1, help="Number of fresh pairs (default: the generator's bundle's K)."
    ),
    candidates: int | None = typer.Option(
        None,
        "--candidates",
        min=1,
        help="Seeds to draw (default: enough for K at the parent bundle's selection yield, times 1.5).",
    ),
    false_accusation: float | None = typer.Option(
        None, "--false-accusation", min=1e-9, max=0.5, help="False-accusation rate aimed at (default: train's)."
    ),
    reference: list[Path] | None = typer.Option(
        None, "--reference", help="Reference models (ONNX or folders); default: the ones train was given."
    ),
):
    """A new bundle of K fresh pairs from the saved generator, no GAN training: seeds that no earlier
    bundle of this generator drew (its ledger), selected and calibrated like train, signed with the
    same key. One fresh bundle per audit keeps a pirate's API from learning the fingerprint."""
    from gfaudit.files.private_files import generator_files

    files = generator_files(generator)
    outputs.guard(
        [
            outputs.file(out, "bundle"),
            outputs.file(str(out) + ".sig", "signature file"),
            outputs.file(out.with_suffix(".png"), "picture"),
            outputs.file(files[2], "seed ledger"),
        ],
        [victim, key, data, cache, files[0], files[1], *(reference or [])],
    )
    refresh_mod = trainer("generation.refresh")
    summary = refresh_mod.run(
        generator=str(generator),
        victim=str(victim),
        arch=arch,
        data=str(data) if data else None,
        device=device.value,
        key=str(key),
        out=str(out),
        cache=str(cache) if cache else None,
        k=k,
        candidates=candidates,
        false_accusation=false_accusation,
        references=[str(r) for r in reference] if reference else None,
    )
    typer.echo(json.dumps(summary, indent=2))


@app.command("export-onnx")
@cli_errors
def export_onnx(
    model: Path = typer.Argument(..., help="Model: state_dict (.pt/.safetensors) with --arch, .pt2 or TorchScript."),
    out: Path = typer.Option(..., "-o", "--out", help="ONNX file to write (single file, dynamic batch)."),
    arch: str | None = typer.Option(None, "--arch", help="Architecture of a state_dict, e.g. resnet20."),
    num_classes: int = typer.Option(10, help="Number of classes."),
):
    """Export the bare model (no normalisation inside) to ONNX, parity-checked against torch."""
    outputs.guard([outputs.file(out, "ONNX file")], [model])
    victim = trainer("models.victim")
    export = trainer("models.export")
    path = export.export(victim.load(model, arch, num_classes), out)
    info(f"wrote {path} (parity with torch checked)")


@library_app.command("build")
@cli_errors
def library_build(
    victim: Path = typer.Option(
        ..., "--victim", help="Victim: state_dict (.pt/.safetensors, needs --arch), .pt2 or TorchScript."
    ),
    out: Path = typer.Option(..., "-o", "--out", help="Folder for the suspects (.onnx) and library.json."),
    arch: str | None = typer.Option(None, "--arch", help="Architecture of a state_dict victim, e.g. resnet20."),
    normalization: Normalization = typer.Option(Normalization.imagenet, help="Mean/std the victim expects."),
    data: Path | None = typer.Option(None, "--data", help="Same data as for train (the partition seed must match)."),
    preset: str = typer.Option("cpu", "--preset", help="tiny, cpu or paper."),
    device: Device = typer.Option(Device.auto, help="auto, cpu or cuda."),
    cache: Path | None = typer.Option(None, "--cache", help="Cache for decoded data."),
    seed: int = typer.Option(0, help="Partition seed: use the one train used, so D_a stays disjoint from the pools."),
    only: str | None = typer.Option(None, "--only", help="Comma-separated recipe names to build."),
    executor: Executor = typer.Option(Executor.local, "--executor", help=EXECUTOR_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
    task_cpus: int | None = typer.Option(None, "--task-cpus", min=1, help=TASK_CPUS_HELP),
    task_gpus: float | None = typer.Option(None, "--task-gpus", min=0.0, help=TASK_GPUS_HELP),
):
    """Build pirated and unrelated suspects (fine-tuning, pruning, extraction, adversarial training, filters)."""
    outputs.guard(
        [outputs.folder(out, "library folder"), outputs.file(out / "library.json", "library.json")],
        [victim, data, cache],
    )
    library = trainer("library.build")
    pipeline = trainer("generation.pipeline")
    presets = trainer("presets")
    executors = trainer("executors")
    if preset not in library.SCALES:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(library.SCALES)}")
    names = [s.strip() for s in only.split(",")] if only else None
    try:
        library.jobs(preset, out, names)  # unknown recipes: before loading data or starting Ray
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    runner = executors.get(executor.value, ray_address)
    ctx = pipeline.load_context(
        victim, arch, normalization.value, str(data) if data else None, presets.get(preset), device.value, cache, seed
    )
    doc = library.build(
        ctx,
        preset,
        out,
        only=names,
        executor=runner,
        resources=executors.default_resources(ctx.device, task_cpus, task_gpus),
    )
    info(f"wrote {out / 'library.json'} with {len(doc.models)} models")
