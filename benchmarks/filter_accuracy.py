"""What each input filter costs the victim: test accuracy behind every filter of
trainer/models/input_filters.py at a ladder of strengths, and the strongest strength that loses at
most --budget points (what a pirate would deploy). These strengths set the cpu preset's robustness
checks and the library's filter pirates (docs/benchmark-notes.md).

    python benchmarks/filter_accuracy.py --victim ../shared/models/resnet20-cifar10-jpeg/resnet20.pt \\
        --data ../shared/data/cifar10-jpeg --cache ~/.cache/gfaudit
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LADDER = {
    "gaussian_blur": (0.3, 0.5, 0.7, 1.0, 1.5),
    "box_blur": (2, 3),
    "median": (3,),
    "jpeg": (95, 90, 80, 70, 60, 50, 40, 30, 20),
    "bit_depth": (7, 6, 5, 4, 3),
    "noise": (0.01, 0.02, 0.03, 0.05, 0.08),
    "translate": (1, 2, 3),
    "resize": (0.9, 0.75, 0.6, 0.5),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--victim", type=Path, required=True)
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--normalization", default="imagenet")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gfaudit")
    p.add_argument("--budget", type=float, default=3.0, help="accuracy points a pirate gives up (default 3)")
    args = p.parse_args(argv)

    import torch
    from torch import nn

    from gfaudit.bundle.normalization import NORMALIZATIONS
    from gfaudit_trainer.models import input_filters, zoo
    from gfaudit_trainer.models.data import load_split
    from gfaudit_trainer.models.training import predict
    from gfaudit_trainer.models.victim import load

    torch.manual_seed(0)
    mean, std = NORMALIZATIONS[args.normalization]
    victim = zoo.Normalized(load(args.victim, args.arch), mean, std).eval()
    test = load_split(args.data, "test", args.cache)
    base = float((predict(victim, test.images, "cpu") == test.labels).float().mean())
    print(f"victim {args.victim.name}: {base:.2%} on {len(test.labels)} test images, no filter", file=sys.stderr)
    print("| filter | strength | accuracy | change (points) |")
    print("|---|---|---|---|")
    strongest = {}
    for name, ladder in LADDER.items():
        for strength in ladder:
            spec = f"{name}@{strength}"
            model = nn.Sequential(input_filters.make(spec), victim).eval()
            acc = float((predict(model, test.images, "cpu") == test.labels).float().mean())
            drop = (base - acc) * 100
            print(f"| {name} | {strength} | {acc:.2%} | {-drop:+.1f} |", flush=True)
            if drop <= args.budget:
                strongest[name] = spec
    print(f"\nstrongest within {args.budget:g} points: {', '.join(strongest.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
