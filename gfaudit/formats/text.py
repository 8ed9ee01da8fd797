"""Plain text for a terminal."""

from __future__ import annotations

import re

from ..check import CheckResult


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:+.3f}" if v < 0 else f"{v:.3f}"


def p_value_text(p: float | None) -> str:
    """A p-value for people: two significant digits, '-' for a bundle signed without a null model."""
    return "-" if p is None else f"{p:.2g}"


def check(result: CheckResult, pubkey_source: str | None = None) -> str:
    b = result.bundle
    lines = [
        f"bundle   {b.path} (sha256 {b.sha256[:16]}..., verified with {pubkey_source or 'the given key'})",
        f"method   {b.manifest.method}, rule {b.manifest.rule}, K={b.k}, threshold {b.manifest.threshold}",
        f"runtime  {result.provider or '-'}",
        "",
        f"{'verdict':<12} {'score':>7} {'P_ori':>6} {'P_conf':>6} {'p-value':>8}  suspect",
    ]
    for s in result.suspects:
        if s.verdict == "error":
            lines.append(f"{'ERROR':<12} {'-':>7} {'-':>6} {'-':>6} {'-':>8}  {s.path}: {s.error}")
        else:
            lines.append(
                f"{s.verdict:<12} {_fmt(s.score):>7} {_fmt(s.p_ori):>6} {_fmt(s.p_conf):>6} "
                f"{p_value_text(s.p_value):>8}  {s.path}"
            )
    derived = sum(s.verdict == "derived" for s in result.suspects)
    lines += [
        "",
        f"{derived} of {len(result.suspects)} suspect(s) derived from the fingerprinted model; exit {result.exit_code}",
    ]
    null = b.manifest.null_model
    if null is not None:
        lines.append(
            f"p-value: the chance that an independent model scores this high (signed calibration: hit rate "
            f"<= {null.hit_rate}; the threshold aims at a false-accusation rate of {null.false_accusation_rate})"
        )
    return "\n".join(lines) + "\n"


def evaluation(doc: dict) -> str:
    from .markdown import evaluation as markdown

    keep = [line for line in markdown(doc).splitlines() if not re.fullmatch(r"\|(-+\|)+", line)]
    return "\n".join(keep) + "\n"


def failure(f) -> str:
    return f"gfaudit {f.command} failed (exit {f.code}, {f.kind} error): {f.message}\n"
