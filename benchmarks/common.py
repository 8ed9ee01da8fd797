"""What the benchmark scripts share: where the shared victim and data live, the arguments that name
them, and the trainer context built from those arguments."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GFAUDIT_SHARED", REPO.parent / "shared"))


def context_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--scale, --victim, --arch, --normalization, --data, --cache and --device, defaulting to the shared ResNet-20."""
    from gfaudit_trainer.presets import PRESETS  # torch-free: the one table of scales

    ap.add_argument("--scale", default="cpu", choices=tuple(PRESETS))
    ap.add_argument("--victim", type=Path, default=SHARED / "models" / "resnet20-cifar10-jpeg" / "resnet20.pt")
    ap.add_argument("--arch", default="resnet20")
    ap.add_argument("--normalization", default="imagenet")
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "cifar10-jpeg")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench")
    ap.add_argument("--device", default="auto")
    return ap


def executor_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--executor, --ray-address, --task-cpus and --task-gpus, as `gfaudit train` takes them."""
    ap.add_argument(
        "--executor",
        default="local",
        choices=("local", "ray"),
        help="where pool and library models train (ray: one Ray task each; needs gfaudit[ray])",
    )
    ap.add_argument("--ray-address", default=None, help="auto, ray://HOST:10001, or none for a local Ray")
    ap.add_argument("--task-cpus", type=int, default=None, help="CPU threads per model task")
    ap.add_argument("--task-gpus", type=float, default=None, help="GPU share per model task (default 0.25 on cuda)")
    return ap


def executor(args, ctx):
    """(executor, per-model resources) for the parsed executor arguments."""
    from gfaudit_trainer import executors

    return (
        executors.get(args.executor, args.ray_address),
        executors.default_resources(ctx.device, args.task_cpus, args.task_gpus),
    )


def load_context(args):
    """(preset, trainer context) for the parsed arguments; seed 0, as the shipped bundle."""
    from gfaudit_trainer import presets
    from gfaudit_trainer.generation import pipeline

    preset = presets.get(args.scale)
    ctx = pipeline.load_context(
        args.victim, args.arch, args.normalization, str(args.data), preset, args.device, args.cache, 0
    )
    return preset, ctx
