"""Plain text for a terminal."""

from __future__ import annotations

import re

from gfaudit.audit.check import CheckResult


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:+.3f}" if v < 0 else f"{v:.3f}"


def p_value_text(p: float | None, supported: float | None = None) -> str:
    """A p-value for people: two significant digits, '-' for a bundle signed without a null model,
    and a '*' when it is below what the calibration models support (the null model's extrapolation)."""
    if p is None:
        return "-"
    return f"{p:.2g}*" if supported is not None and p < supported else f"{p:.2g}"


def check(result: CheckResult, pubkey_source: str | None = None) -> str:
    b = result.bundle
    many = len(result.bundles) > 1
    verified = f"verified with {pubkey_source or 'the given key'}"
    lines = []
    for n, bb in enumerate(result.bundles, 1):
        tag = f"[{n}] " if many else ""
        lines += [
            f"bundle   {tag}{bb.path} (sha256 {bb.sha256[:16]}..., {verified})",
            f"method   {tag}{bb.manifest.method}, rule {bb.manifest.rule}, K={bb.k}, threshold {bb.manifest.threshold}",
        ]
    if result.audit:
        a = result.audit
        lines.append(
            f"audit    {a['id']} for operator {a['operator']}: served {len(a['served'])} bundle(s) never served to "
            f"it before ({a['served_to_operator_before']} earlier; ledger {a['ledger']})"
        )
    index = {bb.sha256: n for n, bb in enumerate(result.bundles, 1)}
    lines += [
        f"runtime  {result.provider or '-'}",
        "",
        f"{'verdict':<12} {'score':>7} {'P_ori':>6} {'P_conf':>6} {'p-value':>8}  {'bundle  ' if many else ''}suspect",
    ]
    for s in result.suspects:
        tag = f"[{index.get(s.bundle_sha256 or '', '?')}]".ljust(8) if many else ""
        if s.verdict == "error":
            lines.append(f"{'ERROR':<12} {'-':>7} {'-':>6} {'-':>6} {'-':>8}  {tag}{s.path}: {s.error}")
        else:
            lines.append(
                f"{s.verdict:<12} {_fmt(s.score):>7} {_fmt(s.p_ori):>6} {_fmt(s.p_conf):>6} "
                f"{p_value_text(s.p_value, s.p_value_supported):>8}  {tag}{s.path}"
            )
    if many:
        paths = list(dict.fromkeys(s.path for s in result.suspects))
        derived = sum(any(s.verdict == "derived" for s in result.suspects if s.path == p) for p in paths)
        lines += [
            "",
            f"{derived} of {len(paths)} suspect(s) derived from the fingerprinted model by at least one of "
            f"{len(result.bundles)} bundles; exit {result.exit_code}",
        ]
    else:
        derived = sum(s.verdict == "derived" for s in result.suspects)
        lines += [
            "",
            f"{derived} of {len(result.suspects)} suspect(s) derived from the fingerprinted model; exit {result.exit_code}",
        ]
    null = b.manifest.null_model
    if null is not None and not many:
        lines.append(
            f"p-value: the chance that an independent model scores this high (signed null model: {null.describe()})"
        )
        if any(
            s.p_value_supported and s.p_value is not None and s.p_value < s.p_value_supported for s in result.suspects
        ):
            lines.append(
                f"* below {null.supported_p_value:.2g} = 1/(n+1), the smallest p-value that the "
                f"{len(getattr(null, 'calibration_hits', ()))} calibration models show without the model: "
                "the beta-binomial's extrapolation"
            )
    return "\n".join(lines) + "\n"


def evaluation(doc: dict) -> str:
    from gfaudit.formats.markdown import evaluation as markdown

    keep = [line for line in markdown(doc).splitlines() if not re.fullmatch(r"\|(-+\|)+", line)]
    return "\n".join(keep) + "\n"


def failure(f) -> str:
    return f"gfaudit {f.command} failed (exit {f.code}, {f.kind} error): {f.message}\n"
