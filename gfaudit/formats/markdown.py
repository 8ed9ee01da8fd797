"""Markdown tables for an evaluation (``evaluate --format markdown``)."""

from __future__ import annotations

from pathlib import Path


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def evaluation(doc: dict) -> str:
    b = doc["bundle"]
    st = doc["signed_threshold"]
    lines = [
        f"Bundle `{Path(b['path']).name}` ({b['method']}, rule {b['rule']}, K={b['k']}, signed threshold {b['threshold']})",
        "",
        "| metric | value |",
        "|---|---|",
        f"| ARUC | {_f(doc['aruc'])} |",
        f"| ROC-AUC | {_f(doc['roc_auc'])} |",
    ]
    for fpr, tpr in (doc["tpr_at_fpr"] or {}).items():
        lines.append(f"| TPR at {float(fpr):.0%} FPR | {_f(tpr)} |")
    if doc["best_threshold"]:
        lines.append(f"| best threshold (max min(R,U)) | {doc['best_threshold']['tau']:.3f} |")
    lines += [
        f"| pirated flagged at signed threshold | {st['pirated_flagged']}/{st['pirated']} |",
        f"| unrelated flagged at signed threshold | {st['unrelated_flagged']}/{st['unrelated']} |",
        "",
        "| label | family | n | mean score | min | max | mean P_ori | mean P_conf | flagged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in doc["families"]:
        lines.append(
            f"| {f['label']} | {f['family']} | {f['n']} | {f['mean_score']:.3f} | {f['min_score']:.3f} | "
            f"{f['max_score']:.3f} | {f['mean_p_ori']:.3f} | {f['mean_p_conf']:.3f} | {f['flagged']}/{f['n']} |"
        )
    lines += [
        "",
        "| model | label | attack | accuracy | score | P_ori | P_conf | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["models"]:
        lines.append(
            f"| {Path(r['path']).name} | {r['label']} | {r['attack']} | {_f(r['accuracy'])} | {_f(r['score'])} | "
            f"{_f(r['p_ori'])} | {_f(r['p_conf'])} | {r['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def failure(f) -> str:
    return f"**gfaudit {f.command} failed** (exit {f.code}, {f.kind} error): {f.message}\n"
