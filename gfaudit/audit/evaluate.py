"""``gfaudit evaluate``: score a suspect library through the same code as ``check`` and summarise.

library.json: ``{"models": [{"path": "...onnx", "label": "pirated"|"unrelated", "attack": "...",
"arch": "...", "accuracy": 0.0}, ...]}``; paths are relative to the json's folder. Any file in this
form works, including one written by hand.

The file is read bounded and parsed strictly (no duplicate keys, bounded nesting), and every entry
must stay inside the library folder: no absolute path, no ``..``, no symbolic link that leads out.
A violation is a usage error (exit 2) naming the entry, raised before any model is scored, with
the same message whether or not the target exists (so errors reveal nothing about other files).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from gfaudit.audit import metrics
from gfaudit.audit.check import check_one
from gfaudit.audit.isolation import DEFAULT_TIMEOUT
from gfaudit.bundle.container import Bundle
from gfaudit.errors import UsageError
from gfaudit.files import strict_json
from gfaudit.files.atomic import write_bytes_atomic
from gfaudit.files.safe_read import MAX_LIBRARY_JSON_BYTES, read_regular

LABELS = ("pirated", "unrelated")
FPRS = (0.0, 0.01)


@dataclass(frozen=True)
class LibraryEntry:
    """One model of a library.json, as the trainer writes it (``gfaudit library build``) and
    ``evaluate`` reads it. ``path`` is relative to the library folder; ``attack`` defaults to the
    label and ``family`` to the attack; the rest is what the builder recorded."""

    path: str
    label: str  # "pirated" or "unrelated"
    attack: str
    family: str
    arch: str | None = None
    accuracy: float | None = None
    seed: int | None = None
    hyper: dict = field(default_factory=dict, compare=True, hash=False)
    seconds: float | None = None

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "label": self.label,
            "attack": self.attack,
            "family": self.family,
            "arch": self.arch,
            "accuracy": self.accuracy,
            "seed": self.seed,
            "hyper": self.hyper,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, raw: object, where: str) -> LibraryEntry:
        """UsageError naming ``where`` for anything but a string path and a known label."""
        if not isinstance(raw, dict) or not isinstance(raw.get("path"), str) or raw.get("label") not in LABELS:
            raise UsageError(f"{where} needs a string path and a label of pirated or unrelated")
        attack = str(raw.get("attack") or raw["label"])
        arch, seed, seconds = raw.get("arch"), raw.get("seed"), raw.get("seconds")
        hyper = raw.get("hyper")
        return cls(
            raw["path"],
            raw["label"],
            attack,
            str(raw.get("family") or attack),
            None if arch is None else str(arch),
            _accuracy(raw.get("accuracy"), where),
            seed if type(seed) is int else None,
            hyper if isinstance(hyper, dict) else {},
            float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None,
        )


@dataclass(frozen=True)
class LibraryModel:
    """A library entry resolved for scoring: its ONNX file, checked to lie inside the library folder."""

    path: Path
    label: str
    attack: str
    arch: str | None
    accuracy: float | None
    family: str


def library_json_path(path: str | Path) -> Path:
    """``path`` itself, or ``path/library.json`` when it is a folder."""
    path = Path(path)
    return path / "library.json" if path.is_dir() else path


def contained(folder: Path, entry: str, where: str) -> Path:
    """The resolved path of ``entry`` if it stays inside ``folder``; UsageError naming it otherwise."""
    refuse = UsageError(
        f"{where}: path {entry!r} is outside the library folder (entries must be relative "
        "paths inside it, without '..' or links that lead out)"
    )
    if not entry or "\x00" in entry or os.path.isabs(entry) or ".." in Path(entry).parts:
        raise refuse
    root = Path(os.path.realpath(folder))
    target = Path(os.path.realpath(root / entry))
    if target == root or root not in target.parents:
        raise refuse
    return target


def _accuracy(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{where}: accuracy must be a number or null, not {str(value)[:40]!r}")
    return float(value)


def load_library(path: str | Path) -> list[LibraryModel]:
    path = library_json_path(path)
    data = read_regular(path, MAX_LIBRARY_JSON_BYTES, "library.json", UsageError)
    doc = strict_json.loads(data, str(path), UsageError)
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, list) or not models:
        raise UsageError(f'{path}: expected {{"models": [...]}} with at least one model')
    out = []
    for i, raw in enumerate(models):
        where = f"{path}: models[{i}]"
        e = LibraryEntry.from_json(raw, where)
        target = contained(path.parent, e.path, where)
        out.append(LibraryModel(target, e.label, e.attack, e.arch, e.accuracy, e.family))
    return out


def _row(lm: LibraryModel, bundle: Bundle, device: str, timeout: float | None, threads: int) -> tuple[dict, str | None]:
    result, prov = check_one(str(lm.path), bundle, device, None, timeout, threads)
    return {
        "path": str(lm.path),
        "label": lm.label,
        "attack": lm.attack,
        "family": lm.family,
        "arch": lm.arch,
        "accuracy": lm.accuracy,
        "score": result.score,
        "ard": result.ard,
        "p_ori": result.p_ori,
        "p_conf": result.p_conf,
        "verdict": result.verdict,
        "error": result.error,
    }, prov


def evaluate(
    bundle: Bundle,
    library: list[LibraryModel],
    device: str = "auto",
    progress=None,
    timeout: float | None = DEFAULT_TIMEOUT,
    jobs: int | None = 1,
    executor: str = "local",
    ray_address: str | None = None,
) -> dict:
    """Per-model scores, per-family summary and the separation metrics. Each model runs isolated
    under ``timeout`` seconds (see check.check_one); one that fails is an error row. ``jobs``
    models are scored at once (None: one per CPU), or with ``executor="ray"`` one Ray task each;
    rows keep the library's order."""
    from gfaudit.audit.check import validate
    from gfaudit.audit.onnx_model import require_runtime
    from gfaudit.audit.parallel import intra_op_threads, resolve_jobs, runner

    timeout = validate(device, None, timeout, jobs)
    require_runtime()
    jobs = resolve_jobs(jobs)
    threads = 1 if executor == "ray" else intra_op_threads(jobs, len(library)) if jobs > 1 else 0
    pairs = runner(executor, ray_address)(
        lambda lm: _row(lm, bundle, device, timeout, threads),
        list(library),
        jobs,
        progress and (lambda i, n, pair: progress(i, n, pair[0])),
    )
    rows = [row for row, _ in pairs]
    provider = next((prov for _, prov in pairs if prov), None)
    scored = [r for r in rows if r["score"] is not None]
    pirated = [r["score"] for r in scored if r["label"] == "pirated"]
    unrelated = [r["score"] for r in scored if r["label"] == "unrelated"]
    threshold = bundle.manifest.threshold_float
    doc = {
        "schema_version": 1,
        "bundle": bundle.summary(),
        "runtime": {"provider": provider},
        "models": rows,
        "errors": sum(r["score"] is None for r in rows),
        "families": _families(scored, threshold),
        "signed_threshold": {
            "value": threshold,
            "pirated_flagged": sum(s >= threshold for s in pirated),
            "pirated": len(pirated),
            "unrelated_flagged": sum(s >= threshold for s in unrelated),
            "unrelated": len(unrelated),
        },
    }
    if pirated and unrelated:
        tau, level = metrics.best_threshold(pirated, unrelated)
        g, r, u = metrics.curves(pirated, unrelated)
        doc.update(
            aruc=round(metrics.aruc(pirated, unrelated), 4),
            roc_auc=round(metrics.roc_auc(pirated, unrelated), 4),
            tpr_at_fpr={str(f): metrics.tpr_at_fpr(pirated, unrelated, f) for f in FPRS},
            best_threshold={"tau": tau, "min_robustness_uniqueness": level},
            curves={
                "tau": g[::10].round(3).tolist(),
                "robustness": r[::10].round(4).tolist(),
                "uniqueness": u[::10].round(4).tolist(),
            },
        )
    else:
        doc.update(aruc=None, roc_auc=None, tpr_at_fpr=None, best_threshold=None, curves=None)
    return doc


def _families(rows: list[dict], threshold: float) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["label"], r["family"])].append(r)
    out = []
    for (label, family), members in sorted(groups.items()):
        scores = [m["score"] for m in members]
        out.append(
            {
                "label": label,
                "family": family,
                "n": len(members),
                "mean_score": round(sum(scores) / len(scores), 4),
                "min_score": round(min(scores), 4),
                "max_score": round(max(scores), 4),
                "mean_p_ori": round(sum(m["p_ori"] for m in members) / len(members), 4),
                "mean_p_conf": round(sum(m["p_conf"] for m in members) / len(members), 4),
                "flagged": sum(s >= threshold for s in scores),
            }
        )
    return out


PLOT_EXTRA = "pip install 'gfaudit[plot]'"


def require_matplotlib():
    """matplotlib.pyplot on the Agg backend, or a UsageError that names the small ``plot`` extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(f"--plot needs matplotlib: {PLOT_EXTRA}") from None
    return plt


def plot(doc: dict, out: str | Path, title: str | None = None) -> Path:
    """Robustness and uniqueness curves with the ARUC area shaded (the paper's Figure 2), the signed
    threshold marked, both axes labelled."""
    plt = require_matplotlib()
    import io

    import numpy as np

    if not doc.get("curves"):
        raise UsageError("--plot needs at least one pirated and one unrelated model")
    c = doc["curves"]
    tau, r, u = (np.asarray(c[k]) for k in ("tau", "robustness", "uniqueness"))
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    ax.plot(tau, r, label="robustness R(τ): pirated flagged")
    ax.plot(tau, u, label="uniqueness U(τ): unrelated cleared")
    ax.fill_between(tau, np.minimum(r, u), alpha=0.25, label=f"ARUC = {doc['aruc']:.3f}")
    t = doc["signed_threshold"]["value"]
    ax.axvline(t, color="black", ls="--", lw=1, label=f"signed threshold {t:.3f}")
    ax.set_xlabel("threshold τ on the score (derived if score ≥ τ)")
    ax.set_ylabel("share of library models")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title or f"{doc['bundle']['method']}: robustness and uniqueness")
    fig.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(out, buf.getvalue())
    return Path(out)


def plot_methods(docs: dict[str, dict], out: str | Path, title: str | None = None) -> Path:
    """One panel per method (robustness, uniqueness, the ARUC area, the method's signed threshold),
    both axes labelled on every panel, one legend for the figure."""
    plt = require_matplotlib()
    import io
    import math

    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    docs = {m: d for m, d in docs.items() if d.get("curves")}
    if not docs:
        raise UsageError("no method has curves to plot (each needs a pirated and an unrelated model)")
    cols = min(3, len(docs))
    rows = math.ceil(len(docs) / cols)
    spare_slot = rows * cols > len(docs)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 3.1 * rows + (0.3 if spare_slot else 0.8)), dpi=110, squeeze=False
    )
    colors = {"r": "tab:blue", "u": "tab:orange", "t": "black"}
    for ax, (method, doc) in zip(axes.flat, docs.items(), strict=False):  # spare panels stay empty
        c = doc["curves"]
        tau, r, u = (np.asarray(c[k]) for k in ("tau", "robustness", "uniqueness"))
        ax.plot(tau, r, color=colors["r"])
        ax.plot(tau, u, color=colors["u"])
        ax.fill_between(tau, np.minimum(r, u), color="tab:green", alpha=0.25)
        t = doc["signed_threshold"]["value"]
        ax.axvline(t, color=colors["t"], ls="--", lw=1)
        ax.annotate(f"τ = {t:.2f}", (t, 0.04), xytext=(3, 0), textcoords="offset points", fontsize=7)
        ax.set_title(f"{method}: ARUC {doc['aruc']:.3f}", fontsize=9)
        ax.set_xlabel("threshold τ on the score", fontsize=8)
        ax.set_ylabel("share of library models", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
    spare = list(axes.flat)[len(docs) :]
    for ax in spare:
        ax.axis("off")
    handles = [
        Line2D([], [], color=colors["r"], label="robustness R(τ):\npirated models flagged"),
        Line2D([], [], color=colors["u"], label="uniqueness U(τ):\nunrelated models cleared"),
        Patch(color="tab:green", alpha=0.25, label="min(R, U):\nits area is the ARUC"),
        Line2D([], [], color=colors["t"], ls="--", label="the method's\nsigned threshold"),
    ]
    if title:
        fig.suptitle(title, fontsize=10)
    if spare:  # the one legend fills the first empty panel
        spare[0].legend(handles=handles, loc="center", fontsize=8, frameon=False)
        fig.tight_layout()
    else:
        fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.7 / (3.1 * rows + 0.8), 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(out, buf.getvalue())
    return Path(out)
