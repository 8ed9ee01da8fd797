"""How far can selection go? An upper bound on ARUC for the GAN's candidate pairs on one library.

GanFinger keeps K of a few thousand candidate pairs (x, x'). This script trains the GAN of the
preset (pools and library come from the benchmark's cache), labels every candidate with every pool
and library model, and prints:

- how often each group of models gives x' the victim's label (pool positives and negatives, library
  students, unrelated models, white-box copies);
- how alike extraction students and unrelated models are, pair by pair (correlation of their
  follow rates);
- the ARUC of the preset's own selection, of the same without its negative filter, and of an
  *oracle* that ranks candidates by the library's own labels (pirated minus unrelated follow
  rate). The oracle peeks at the answers, so its ARUC is an in-sample upper bound: no selection
  rule over these candidates can beat it on this library.

Run after ``benchmarks/run.py`` has built the pools and the library:
    python benchmarks/separability.py --scale cpu --cache /path/to/cache
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import context_arguments, load_context  # noqa: E402

WHITE_BOX = ("copy", "pruning", "fine-tune")  # library families that start from the victim's weights


def follow_matrix(ctx, pools, library, x, x_prime):
    """Labels on x and x' of the victim, every pool model and every library model, as numpy arrays."""
    from gfaudit.audit.onnx_model import OnnxClassifier
    from gfaudit_trainer.models.training import predict

    rows = {"victim": (predict(ctx.victim, x, ctx.device).numpy(), predict(ctx.victim, x_prime, ctx.device).numpy())}
    for m in pools.models:
        rows[f"pool:{m.role}:{m.split}{m.index}"] = (
            predict(m.model, x, ctx.device).numpy(),
            predict(m.model, x_prime, ctx.device).numpy(),
        )
    for m in library:
        c = OnnxClassifier(m.path, device="cpu")
        rows[f"lib:{m.label}:{m.family}:{m.path.name}"] = (
            c.labels(x.numpy(), ctx.mean, ctx.std),
            c.labels(x_prime.numpy(), ctx.mean, ctx.std),
        )
    return rows


def ard_of(rows, keys, sel):
    from gfaudit.bundle import scoring

    y, yp = (a[sel] for a in rows["victim"])
    return [scoring.ard(y, yp, rows[k][0][sel], rows[k][1][sel]).score for k in keys]


def main() -> None:
    args = context_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0])).parse_args()

    from gfaudit.audit import evaluate, metrics
    from gfaudit_trainer.generation import pipeline, selection
    from gfaudit_trainer.generation.methods.ganfinger import gan_candidates

    preset, ctx = load_context(args)
    pools, _, _ = pipeline.build_pools(ctx, preset)
    library = evaluate.load_library(args.cache / f"bench-{args.scale}" / "library")
    seeds, x_prime, _ = gan_candidates(ctx, pools, preset)
    rows = follow_matrix(ctx, pools, library, seeds.images, x_prime)

    y, yp = rows["victim"]
    cand = (y == seeds.labels.numpy()) & (yp != y)
    follow = {k: (v[1] == yp) for k, v in rows.items()}
    groups = {
        "pool positives": [k for k in rows if k.startswith("pool:positive")],
        "pool negatives": [k for k in rows if k.startswith("pool:negative")],
        "library white-box copies": [k for k in rows if k.split(":")[1:3] in (["pirated", f] for f in WHITE_BOX)],
        "library extraction students": [k for k in rows if k.startswith("lib:pirated:extract-")],
        "library unrelated models": [k for k in rows if k.startswith("lib:unrelated")],
    }
    rate = {g: np.mean([follow[k] for k in ks], axis=0) for g, ks in groups.items() if ks}
    print(
        f"# Separability at scale {args.scale}: {int(cand.sum())} candidate pairs "
        f"(victim right on x, flipped on x') of {len(cand)} seeds\n"
    )
    print("| models | count | share of candidate x' labelled like the victim |\n|---|---|---|")
    for g, ks in groups.items():
        if ks:
            print(f"| {g} | {len(ks)} | {rate[g][cand].mean():.3f} |")
    s, u = rate.get("library extraction students"), rate.get("library unrelated models")
    if s is not None and u is not None:
        print(
            f"\nPair by pair, the follow rates of extraction students and unrelated models correlate at "
            f"{np.corrcoef(s[cand], u[cand])[0, 1]:.2f}; {int((cand & (s == 1) & (u == 0)).sum())} candidates are "
            f"followed by every student and by no unrelated model."
        )

    pirated = [k for k in rows if k.startswith("lib:pirated")]
    unrelated = [k for k in rows if k.startswith("lib:unrelated")]

    votes = selection.vote(ctx.victim, pools, seeds.images, x_prime, ctx.device)

    def chosen(neg_follow):
        return selection.choose(
            votes, seeds.images, x_prime, seeds.labels, preset.k, preset.pos_agree, preset.x_agreement, neg_follow
        ).index.numpy()

    oracle_score = np.mean([follow[k] for k in pirated], 0) - np.mean([follow[k] for k in unrelated], 0)
    oracle = np.argsort(-np.where(cand, oracle_score, -np.inf), kind="stable")[: min(preset.k, int(cand.sum()))]
    print("\n| selection | K | ARUC | ROC-AUC | max unrelated ARD |\n|---|---|---|---|---|")
    variants = [(f"preset `{preset.name}`: pools only, neg_follow={preset.neg_follow}", chosen(preset.neg_follow))]
    if preset.neg_follow < 1.0:
        variants.append(("the same without the negative filter (neg_follow=1)", chosen(1.0)))
    variants.append(("oracle (ranks by the library itself)", oracle))
    for name, idx in variants:
        p, q = ard_of(rows, pirated, idx), ard_of(rows, unrelated, idx)
        print(f"| {name} | {len(idx)} | {metrics.aruc(p, q):.3f} | {metrics.roc_auc(p, q):.3f} | {max(q):.2f} |")


if __name__ == "__main__":
    main()
