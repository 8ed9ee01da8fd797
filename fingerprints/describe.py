"""Print the measured part of a shipped bundle's README from its signed provenance.

    python fingerprints/describe.py fingerprints/resnet20-cifar10/resnet20-cifar10.safetensors \
        --pubkey fingerprints/resnet20-cifar10/owner.pub

Every number comes from the verified manifest (nothing is typed by hand), so the README cannot
drift from the bundle it describes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROLE_NAMES = {
    ("positive", "train"): "positive, GAN",
    ("positive", "val"): "positive, selection",
    ("negative", "train"): "negative, GAN",
    ("negative", "val"): "negative, selection",
    ("negative", "calib"): "negative, calibration only",
}


def _pct(v) -> str:
    return "-" if v is None else f"{100 * float(v):.1f} %"


def describe(manifest: dict) -> str:
    prov = manifest["provenance"]
    scoring, pert = manifest["scoring"], manifest["perturbation"]
    cal = prov.get("calibration", {})
    null = scoring.get("null_model")
    div = prov.get("fingerprint_diversity", {})
    sel = prov.get("selection", {})
    lines = [
        "| | value |",
        "|---|---|",
        f"| victim test accuracy (10,000 JPEG test images) | {_pct(prov.get('victim_test_accuracy'))} |",
        f"| pairs | K = {manifest['k']} |",
        f"| threshold | ARD >= {scoring['threshold']} ({cal.get('method', 'see provenance')}) |",
    ]
    if null and null.get("kind") == "beta-binomial-predictive":
        loo = cal.get("leave_one_out", [])
        lines.append(
            f"| null model | beta-binomial with parameter uncertainty over {len(null['calibration_hits'])} calibration "
            f"models' hits {null['calibration_hits']} of {null['pairs']}; threshold at a predictive tail of "
            f"{null['false_accusation_rate']}; p-values below {cal.get('supported_p_value')} are the model's "
            f"extrapolation; assumes {null.get('assumption', 'exchangeable calibration models')} |"
        )
        if loo:
            worst = max(loo, key=lambda r: r["score"] - r["threshold_without_it"])
            lines.append(
                f"| leave-one-out | {sum(r['flagged'] for r in loo)} of {len(loo)} calibration models at or above the "
                f"threshold fitted without them (closest: {worst['score']:.2f} against {worst['threshold_without_it']}) |"
            )
    elif null:
        lines.append(
            f"| null model | an independent model hits a pair with probability <= {null['hit_rate']} "
            f"(Clopper-Pearson bound over the calibration negatives); the threshold aims at a "
            f"false-accusation rate of {null['false_accusation_rate']} |"
        )
    lines += [
        f"| perturbation | L-inf {pert['linf_max']:.3f}, mean L2 {pert['l2_mean']:.2f}, mean PSNR "
        f"{pert['psnr_mean_db']:.1f} dB |"
    ]
    if div:
        per = div.get("pairs_per_target", {})
        lines.append(
            f"| input-specific? | mean cosine of x' - x {div.get('cosine_same_target')} within a target "
            f"class, {div.get('cosine_other_target')} across; {len(per)} target classes, the largest "
            f"holds {_pct(div.get('largest_target_share'))} of the pairs |"
        )
    if sel:
        lines.append(
            f"| selection | {sel.get('candidates')} candidates, {sel.get('victim_correct_and_flipped')} "
            f"flipped by x', {sel.get('eligible')} passed the filters, {sel.get('selected')} kept |"
        )
    t = prov.get("timings_s", {})
    lines.append(
        f"| time (this run) | pools {t.get('pool_building', '-')} s, GAN {t.get('gan_training', '-')} s, "
        f"fingerprint generation {t.get('fingerprint_generation', '-')} s, total {t.get('total', '-')} s |"
    )
    lines += [
        "",
        "Pools (test accuracy; fidelity = test images labelled like the victim; on errors = share of the "
        "victim's own mistakes repeated):",
        "",
        "| role | model | trained on | accuracy | fidelity | on errors |",
        "|---|---|---|---|---|---|",
    ]
    for m in prov.get("pools", []):
        how = m.get("source") or (
            f"{m.get('train_images', '?')} images, {m.get('query', '?')} targets, "
            f"{m.get('recipe', '?')} recipe, {m.get('epochs', '?')} epochs"
        )
        lines.append(
            f"| {ROLE_NAMES.get((m['role'], m['split']), m['role'] + '/' + m['split'])} | {m['arch']} | {how} | "
            f"{_pct(m['accuracy'])} | {_pct(m['agreement_with_victim'])} | "
            f"{_pct(m.get('agreement_on_victim_errors'))} |"
        )
    scores = prov.get("validation_scores", {})
    if scores:
        lines += [
            "",
            "Scores of the pool models on the signed pairs (ARD; selection filtered on the "
            "selection negatives, so theirs are near 0 by construction; the calibration "
            "negatives set the threshold):",
            "",
            "| role | model | ARD | hits of K |",
            "|---|---|---|---|",
        ]
        for role, rows in scores.items():
            for r in rows:
                lines.append(f"| {role} | {r['arch']} | {r['ard']:.2f} | {r.get('hits', '-')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--pubkey", required=True)
    args = ap.parse_args()
    from gfaudit.bundle import container as bundle_io
    from gfaudit.bundle.keys import resolve_public

    key, _ = resolve_public(args.pubkey)
    print(describe(bundle_io.load(args.bundle, key).manifest.raw), end="")


if __name__ == "__main__":
    main()
