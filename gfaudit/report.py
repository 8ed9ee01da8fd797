"""Render a CheckResult as text, JSON (schema_version 1) or SARIF 2.1.0 for code-scanning uploads."""

from __future__ import annotations

import json

from . import __version__
from .check import CheckResult

SCHEMA_VERSION = 1
FORMATS = ("text", "json", "sarif")


def _runtime(result: CheckResult) -> dict:
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:  # pragma: no cover - the auditor depends on it
        ort_version = None
    return {"provider": result.provider, "onnxruntime": ort_version}


def to_json(result: CheckResult, pubkey_source: str | None = None) -> dict:
    bundle = result.bundle.summary()
    bundle["pubkey"] = pubkey_source
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "gfaudit", "version": __version__},
        "bundle": bundle,
        "runtime": _runtime(result),
        "expect": result.expect,
        "suspects": [s.to_json() for s in result.suspects],
        "exit_code": result.exit_code,
    }


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:+.3f}" if v < 0 else f"{v:.3f}"


def _pval(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"


def to_text(result: CheckResult, pubkey_source: str | None = None) -> str:
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
            lines.append(f"{s.verdict:<12} {_fmt(s.score):>7} {_fmt(s.p_ori):>6} {_fmt(s.p_conf):>6} "
                         f"{_pval(s.p_value):>8}  {s.path}")
    derived = sum(s.verdict == "derived" for s in result.suspects)
    lines += ["", f"{derived} of {len(result.suspects)} suspect(s) derived from the fingerprinted model; exit {result.exit_code}"]
    null = b.manifest.null_model
    if null is not None:
        lines.append(f"p-value: chance that an independent model scores this high (signed calibration: hit rate <= "
                     f"{null.hit_rate}, threshold aims at a false-accusation rate of {null.false_accusation_rate})")
    return "\n".join(lines) + "\n"


def to_sarif(result: CheckResult, pubkey_source: str | None = None) -> dict:
    b = result.bundle
    rules = [
        {"id": "GFA001", "name": "DerivedModel",
         "shortDescription": {"text": "Model derives from a fingerprinted model"},
         "help": {"text": "The suspect's labels on the signed fingerprint pairs reach the bundle's threshold."}},
        {"id": "GFA002", "name": "SuspectUnreadable",
         "shortDescription": {"text": "Suspect model could not be scored"},
         "help": {"text": "onnxruntime could not load or run the model with the bundle's input spec."}},
    ]
    results = []
    for s in result.suspects:
        loc = [{"physicalLocation": {"artifactLocation": {"uri": s.path}}}]
        if s.verdict == "error":
            results.append({"ruleId": "GFA002", "level": "error", "message": {"text": s.error}, "locations": loc})
            continue
        text = (f"{s.verdict}: score {s.score:.3f} vs threshold {s.threshold} "
                f"(P_ori {s.p_ori:.3f}, P_conf {s.p_conf:.3f}, p-value {_pval(s.p_value)}; "
                f"bundle {b.path.name} {b.sha256[:12]})")
        entry = {"ruleId": "GFA001", "message": {"text": text}, "locations": loc,
                 "properties": s.to_json()}
        if s.verdict == "derived":
            entry["level"] = "error" if s.exit_code else "note"
        else:
            entry.update(kind="pass", level="none")
        results.append(entry)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "gfaudit", "version": __version__,
                                "informationUri": "https://github.com/gfaudit/gfaudit", "rules": rules}},
            "results": results,
            "properties": {"bundle": b.summary(), "runtime": _runtime(result)},
        }],
    }


def render(result: CheckResult, fmt: str, pubkey_source: str | None = None) -> str:
    if fmt == "text":
        return to_text(result, pubkey_source)
    doc = to_json(result, pubkey_source) if fmt == "json" else to_sarif(result, pubkey_source)
    return json.dumps(doc, indent=2) + "\n"
