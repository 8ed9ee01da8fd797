"""JSON reports (schema_version 1). Every document has ``error``: null, or {code, kind, message}
when the run stopped (then ``exit_code`` equals ``error.code``)."""

from __future__ import annotations

import json as _json

from gfaudit import __version__
from gfaudit.audit.check import CheckResult

SCHEMA_VERSION = 1


def _dump(doc: dict) -> str:
    return _json.dumps(doc, indent=2) + "\n"


def runtime(result: CheckResult) -> dict:
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:  # pragma: no cover - scoring needed it
        ort_version = None
    return {"provider": result.provider, "onnxruntime": ort_version}


def suspect_errors(result: CheckResult) -> list[str]:
    return [f"{s.path}: {s.error}" for s in result.suspects if s.verdict == "error"]


def bundle_summaries(result: CheckResult, pubkey_source: str | None = None) -> list[dict]:
    """Every bundle scored, each verified with ``pubkey_source``."""
    return [{**b.summary(), "pubkey": pubkey_source} for b in result.bundles]


def check_doc(result: CheckResult, pubkey_source: str | None = None) -> dict:
    bundles = bundle_summaries(result, pubkey_source)
    errors = suspect_errors(result)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "gfaudit", "version": __version__},
        "bundle": bundles[0],  # the first of "bundles", as before several bundles per check
        "bundles": bundles,
        "audit": result.audit,
        "runtime": runtime(result),
        "expect": result.expect,
        "suspects": [s.to_json() for s in result.suspects],
        "exit_code": result.exit_code,
        "error": (
            {
                "code": result.exit_code,
                "kind": "runtime",
                "message": f"{len(errors)} suspect(s) could not be scored: " + "; ".join(errors),
            }
            if errors
            else None
        ),
    }


def check(result: CheckResult, pubkey_source: str | None = None) -> str:
    return _dump(check_doc(result, pubkey_source))


def evaluation(doc: dict) -> str:
    n = doc.get("errors") or 0
    error = {"code": 4, "kind": "runtime", "message": f"{n} library model(s) could not be scored"} if n else None
    return _dump({**doc, "error": doc.get("error", error)})


def failure_doc(f) -> dict:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "gfaudit", "version": __version__},
        "command": f.command,
        "exit_code": f.code,
        "error": {"code": f.code, "kind": f.kind, "message": f.message},
    }
    if f.command == "check":
        doc.update(bundle=None, bundles=[], audit=None, suspects=[])
    return doc


def failure(f) -> str:
    return _dump(failure_doc(f))
