"""Benchmark of the fast training recipe (trainer/models/recipes.py): accuracy on the JPEG CIFAR-10 test
split and wall time on this machine, for models trained from scratch and for extraction students.

    python benchmarks/fast_recipe.py                       # the issue's two targets
    python benchmarks/fast_recipe.py --rows scratch-airbench scratch-resnet20 --epochs 8

Each row is cached under --cache (a finished row is not re-trained; delete its .json to redo it).
Prints a markdown table; the targets are >= 85 % accuracy in <= 30 min from scratch, and >= 83 %
agreement with the victim for a label-extraction student.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gfaudit.files.atomic import write_text_atomic

from common import SHARED  # noqa: E402


@dataclass(frozen=True)
class Row:
    name: str
    arch: str
    data: str  # "all": the whole training split; "d_v" / "d_a": the pipeline's partitions
    query: str = ""  # "" true labels; "label"/"prob": the victim answers every augmented batch
    temperature: float = 1.0


ROWS = {
    r.name: r
    for r in (
        Row("scratch-airbench", "airbench", "all"),
        Row("scratch-airbench-half", "airbench:width=0.5", "all"),
        Row("scratch-airbench-half-dv", "airbench:width=0.5", "d_v"),
        Row("scratch-resnet20", "resnet20", "all"),
        Row("scratch-resnet20-dv", "resnet20", "d_v"),
        Row("extract-label-airbench", "airbench", "all", query="label"),
        Row("extract-label-airbench-half-da", "airbench:width=0.5", "d_a", query="label"),
        Row("extract-prob-airbench-half-da", "airbench:width=0.5", "d_a", query="prob", temperature=2.0),
        Row("extract-label-resnet20-da", "resnet20", "d_a", query="label"),
    )
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", nargs="+", default=["scratch-airbench", "extract-label-airbench"], choices=sorted(ROWS))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--victim", type=Path, default=SHARED / "models" / "resnet20-cifar10-jpeg" / "resnet20.pt")
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "cifar10-jpeg")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gfaudit" / "fast-recipe")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--pools",
        type=Path,
        default=None,
        help="Instead of training: tabulate the models a pool build trained with the recipe "
        "(their cached .json: accuracy, fidelity, seconds), e.g. ~/.cache/gfaudit/pools/<key>",
    )
    args = ap.parse_args(argv)
    if args.pools is not None:
        print(pool_table(args.pools))
        return 0

    import torch

    from gfaudit.bundle.normalization import resolve as resolve_norm
    from gfaudit_trainer.models import data as data_mod, zoo
    from gfaudit_trainer.models.training import FitConfig, accuracy, fit, predict, resolve_device
    from gfaudit_trainer.models.victim import load as load_victim

    device = resolve_device(args.device)
    args.cache.mkdir(parents=True, exist_ok=True)
    train = data_mod.load_split(str(args.data), "train", args.cache.parent)
    test = data_mod.load_split(str(args.data), "test", args.cache.parent)
    d_v, _, d_a = data_mod.partition(train, 0)
    mean, std = resolve_norm("imagenet")
    victim = zoo.Normalized(load_victim(args.victim, "resnet20"), mean, std).to(device).eval()
    victim_test = predict(victim, test.images, device)
    victim_wrong = victim_test != test.labels
    results = []
    for name in args.rows:
        row = ROWS[name]
        out = args.cache / f"{name}-e{args.epochs}.json"
        if out.is_file():
            results.append(json.loads(out.read_text()))
            continue
        split = {"all": train, "d_v": d_v, "d_a": d_a}[row.data]
        torch.manual_seed(0)
        model = zoo.Normalized(zoo.build(row.arch), mean, std)
        cfg = FitConfig.fast(args.epochs, row.arch, seed=0, query=row.query, temperature=row.temperature)
        start = time.perf_counter()
        fit(model, split.images, split.labels, cfg, device, teacher=victim if row.query else None, desc=name)
        seconds = time.perf_counter() - start
        pred = predict(model, test.images, device)
        res = {
            "row": name,
            "arch": row.arch,
            "images": len(split),
            "query": row.query or "true labels",
            "epochs": args.epochs,
            "accuracy": float(accuracy(model, test.images, test.labels, device)),
            "agreement": float((pred == victim_test).float().mean()),
            "wrong_agreement": float((pred[victim_wrong] == victim_test[victim_wrong]).float().mean()),
            "minutes": seconds / 60,
            "threads": torch.get_num_threads(),
            "device": str(device),
        }
        write_text_atomic(out, json.dumps(res, indent=2))
        results.append(res)
        print(f"{name}: {res['accuracy']:.1%} in {res['minutes']:.1f} min", file=sys.stderr, flush=True)
    print(
        "| row | arch | train images | targets | epochs | test acc. | agreement with victim | on victim's errors | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['row']} | {r['arch']} | {r['images']} | {r['query']} | {r['epochs']} | {r['accuracy']:.1%} | "
            f"{r['agreement']:.1%} | {r['wrong_agreement']:.1%} | {r['minutes']:.1f} |"
        )
    return 0


def pool_table(folder: Path) -> str:
    """The pool models of one build as a markdown table, read from their cached metadata."""
    lines = [
        "| model | recipe | targets | train images | epochs | test acc. | agreement with victim | "
        "on victim's errors | minutes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for meta_path in sorted(folder.glob("*.json")):
        m = json.loads(meta_path.read_text())
        minutes = f"{m['seconds'] / 60:.1f}" if "seconds" in m else "-"
        lines.append(
            f"| {meta_path.stem} | {m.get('recipe', 'classic')} | {m.get('query', '?')} | {m.get('train_images')} | "
            f"{m.get('epochs')} | {m['accuracy']:.1%} | {m['agreement_with_victim']:.1%} | "
            f"{m.get('agreement_on_victim_errors', float('nan')):.1%} | {minutes} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
