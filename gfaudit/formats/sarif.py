"""SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps).

One result per suspect, and its level follows the gate: a suspect that fails the gate (exit 1: a
derived model, or with ``--expect derived`` one that lost the fingerprint) is an ``error``; one that
passes it is ``kind: pass, level: none``; a suspect that could not be scored is an ``error`` of
rule GFA002. ``invocations[0]`` says whether the run succeeded, with the reason of a failure as a
tool execution notification. ``partialFingerprints`` depend only on the rule, the suspect's path
and the bundle's sha256, so the same suspect keeps one alert across runs.
"""

from __future__ import annotations

import hashlib
import json as _json
import os
from pathlib import Path
from urllib.parse import quote

from gfaudit import __version__
from gfaudit.audit.check import CheckResult
from gfaudit.formats.text import p_value_text

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFO_URI = "https://github.com/gfaudit/gfaudit"
HELP_URI = f"{INFO_URI}/blob/main/docs/ci.md"

DERIVED, UNREADABLE, MISSING = "GFA001", "GFA002", "GFA003"

RULES = [
    {
        "id": DERIVED,
        "name": "DerivedModel",
        "shortDescription": {"text": "Model derives from a fingerprinted model"},
        "fullDescription": {
            "text": "The suspect model labels the signed fingerprint pairs (x, x') like the "
            "fingerprinted victim: its score reaches the bundle's signed threshold, so it is "
            "a copy, fine-tuned, pruned or extracted version of the protected model."
        },
        "help": {
            "text": "The suspect's labels on the signed fingerprint pairs reach the bundle's threshold. "
            "Do not ship or accept this model unless you own the fingerprinted model; keep the report "
            "and the signed bundle as evidence.",
            "markdown": "The suspect's labels on the signed fingerprint pairs reach the bundle's threshold "
            "(`score >= threshold`). Do not ship or accept this model unless you own the "
            "fingerprinted model; keep the report and the signed bundle as evidence. "
            f"See [gfaudit as a CI gate]({HELP_URI}).",
        },
        "helpUri": HELP_URI,
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "security-severity": "8.0",
            "precision": "high",
            "problem.severity": "error",
            "tags": ["security", "model-provenance", "intellectual-property"],
        },
    },
    {
        "id": UNREADABLE,
        "name": "SuspectUnreadable",
        "shortDescription": {"text": "Suspect model could not be scored"},
        "fullDescription": {
            "text": "onnxruntime could not load or run the suspect model with the bundle's input "
            "specification (unreadable ONNX, wrong input shape or class count), so the gate "
            "has no verdict for it."
        },
        "help": {
            "text": "Export the model to ONNX with a single [N, C, H, W] or [N, H, W, C] image input and a "
            "[N, classes] output; `gfaudit doctor` shows what the runtime can run.",
            "markdown": "Export the model to ONNX with a single `[N, C, H, W]` or `[N, H, W, C]` image input and a "
            "`[N, classes]` output; `gfaudit doctor` shows what the runtime can run.",
        },
        "helpUri": HELP_URI,
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "security-severity": "5.0",
            "precision": "high",
            "problem.severity": "error",
            "tags": ["security", "model-provenance"],
        },
    },
    {
        "id": MISSING,
        "name": "FingerprintMissing",
        "shortDescription": {"text": "Model no longer carries the expected fingerprint"},
        "fullDescription": {
            "text": "With --expect derived, the suspect (typically your own release) scores below "
            "the bundle's signed threshold: a training change removed the fingerprint, and with "
            "it the evidence of ownership for this model."
        },
        "help": {
            "text": "Rebuild the fingerprints for the new model (gfaudit train) or find the change that removed "
            "them before releasing.",
            "markdown": "Rebuild the fingerprints for the new model (`gfaudit train`) or find the change that "
            "removed them before releasing.",
        },
        "helpUri": HELP_URI,
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "security-severity": "4.0",
            "precision": "high",
            "problem.severity": "warning",
            "tags": ["security", "model-provenance"],
        },
    },
]
_RULE_INDEX = {r["id"]: i for i, r in enumerate(RULES)}

NOTIFICATIONS = [
    {"id": "GFA102", "name": "UsageError", "shortDescription": {"text": "Bad arguments or inputs (exit 2)"}},
    {
        "id": "GFA103",
        "name": "BundleIntegrityFailure",
        "shortDescription": {"text": "Bundle signature or integrity check failed; nothing was scored (exit 3)"},
    },
    {
        "id": "GFA104",
        "name": "RuntimeError",
        "shortDescription": {"text": "A model could not be run, or the device is missing (exit 4)"},
    },
]
_NOTE_ID = {2: "GFA102", 3: "GFA103", 4: "GFA104"}


def artifact_uri(path: str) -> str:
    """A relative, forward-slash, percent-encoded URI when the file lies under the working directory
    (code scanning matches it to the repository), else a file:// URI."""
    p = Path(path)
    try:
        rel = Path(os.path.relpath(p.resolve(), Path.cwd().resolve())) if p.is_absolute() else p
    except ValueError:  # another drive on Windows
        rel = p
    if rel.is_absolute() or rel.parts[:1] == ("..",):
        return p.resolve().as_uri()
    return quote(rel.as_posix())


def fingerprint(rule_id: str, uri: str, bundle_sha256: str | None) -> dict:
    digest = hashlib.sha256(f"{rule_id}\0{uri}\0{bundle_sha256 or ''}".encode()).hexdigest()
    return {"gfauditSuspect/v1": digest[:32]}


def _note(code: int, text: str) -> dict:
    note_id = _NOTE_ID.get(code, "GFA104")
    return {
        "level": "error",
        "message": {"text": text},
        "descriptor": {"id": note_id, "index": [n["id"] for n in NOTIFICATIONS].index(note_id)},
    }


def _driver() -> dict:
    return {
        "name": "gfaudit",
        "version": __version__,
        "semanticVersion": __version__,
        "informationUri": INFO_URI,
        "rules": RULES,
        "notifications": NOTIFICATIONS,
    }


def _log(results: list[dict], invocation: dict, properties: dict | None = None) -> dict:
    run = {"tool": {"driver": _driver()}, "invocations": [invocation], "results": results}
    if properties:
        run["properties"] = properties
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _dump(doc: dict) -> str:
    return _json.dumps(doc, indent=2) + "\n"


def check_doc(result: CheckResult, pubkey_source: str | None = None) -> dict:
    from gfaudit.formats.json import bundle_summaries, runtime

    by_sha = {bb.sha256: bb for bb in result.bundles}
    results, notes = [], []
    for s in result.suspects:
        b = by_sha.get(s.bundle_sha256 or "", result.bundle)
        uri = artifact_uri(s.path)
        loc = [{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": 1}}}]
        if s.verdict == "error":
            rule = UNREADABLE
            entry: dict[str, object] = {"level": "error", "message": {"text": f"{s.path}: {s.error}"}}
            notes.append(_note(s.exit_code, f"{s.path}: {s.error}"))
        else:
            rule = MISSING if result.expect == "derived" else DERIVED
            gate = "fails the gate" if s.exit_code else "passes the gate"
            text = (
                f"{s.verdict} ({gate}): score {s.score:.3f} vs threshold {s.threshold} "
                f"(P_ori {s.p_ori:.3f}, P_conf {s.p_conf:.3f}, p-value {p_value_text(s.p_value, s.p_value_supported)}; "
                f"bundle {b.path.name} {b.sha256[:12]})"
            )
            entry = {"message": {"text": text}}
            entry.update({"kind": "fail", "level": "error"} if s.exit_code else {"kind": "pass", "level": "none"})
        entry.update(
            ruleId=rule,
            ruleIndex=_RULE_INDEX[rule],
            locations=loc,
            partialFingerprints=fingerprint(rule, uri, b.sha256),
            properties=s.to_json(),
        )
        results.append(entry)
    invocation = {"executionSuccessful": not notes, "exitCode": result.exit_code, "toolExecutionNotifications": notes}
    bundles = bundle_summaries(result, pubkey_source)
    properties = {"bundle": bundles[0], "bundles": bundles, "runtime": runtime(result), "expect": result.expect}
    if result.audit:
        properties["audit"] = result.audit
    return _log(results, invocation, properties)


def check(result: CheckResult, pubkey_source: str | None = None) -> str:
    return _dump(check_doc(result, pubkey_source))


def failure_doc(f) -> dict:
    invocation = {
        "executionSuccessful": False,
        "exitCode": f.code,
        "exitCodeDescription": f"{f.kind} error",
        "toolExecutionNotifications": [_note(f.code, f.message)],
    }
    return _log([], invocation, {"command": f.command})


def failure(f) -> str:
    return _dump(failure_doc(f))
