"""Several bundles per ``check``, and rotation: which bundles serve an audit.

One mechanism for both. ``check`` takes bundles from ``--bundle`` (repeatable) and ``--bundle-dir``
(every ``*.safetensors`` in the folder, sorted, except the owner's private generator files); every
one is verified before any suspect runs. Without rotation every suspect is scored against every
bundle. With rotation (``--operator NAME --served-ledger FILE``) ``check`` serves, out of those
bundles, the first ``--serve N`` (default 1) that this operator has never been served, records them
in the ledger before any suspect runs (its queries reveal the pairs to whoever runs the suspect),
and the report names the audit and the bundles that served it.

The ledger is the owner's record, written atomically (mode 0600): one entry per served bundle with
the audit id, the operator, the bundle's file name and sha256 and the time. Bundles are told apart
by sha256, so renaming or copying a served bundle does not make it fresh.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from gfaudit.bundle.provenance import now_utc
from gfaudit.errors import UsageError
from gfaudit.files.atomic import write_bytes_atomic
from gfaudit.files.private_files import is_private
from gfaudit.files.safe_read import MAX_LIBRARY_JSON_BYTES, read_regular

__all__ = ["LEDGER_FORMAT", "Audit", "ServedLedger", "bundle_paths", "pick"]

LEDGER_FORMAT = "gfaudit-served-ledger-v1"


def bundle_paths(files: list[Path], folders: list[Path]) -> list[Path]:
    """The bundles named by ``--bundle`` (in order), then those in each ``--bundle-dir`` (sorted),
    each once. A folder without a bundle is a usage error."""
    out: list[Path] = list(files)
    for folder in folders:
        if not folder.is_dir():
            raise UsageError(f"--bundle-dir {folder}: not a folder")
        found = sorted(p for p in folder.glob("*.safetensors") if not is_private(p) and not p.name.startswith("."))
        if not found:
            raise UsageError(f"--bundle-dir {folder}: no bundle (*.safetensors) in it")
        out += found
    seen: set[str] = set()
    unique = []
    for p in out:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    if not unique:
        raise UsageError("no bundle given: pass --bundle FILE or --bundle-dir DIR (or set GFAUDIT_BUNDLE)")
    return unique


@dataclass(frozen=True)
class Audit:
    """What the report says about a rotated audit."""

    audit_id: str
    operator: str
    ledger: str
    served: tuple[str, ...]  # sha256 of the bundles served now
    earlier: int  # bundles this operator had been served before this audit

    def to_json(self) -> dict:
        return {
            "id": self.audit_id,
            "operator": self.operator,
            "ledger": self.ledger,
            "served": list(self.served),
            "served_to_operator_before": self.earlier,
        }


class ServedLedger:
    """Which bundle served which audit of which operator (the owner's record)."""

    def __init__(self, path: Path, entries: list[dict]):
        self.path = path
        self.entries = entries

    @classmethod
    def read(cls, path: Path) -> ServedLedger:
        if not os.path.lexists(path):
            return cls(path, [])
        data = read_regular(path, MAX_LIBRARY_JSON_BYTES, "served ledger", UsageError)
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise UsageError(f"{path}: the served ledger is not valid JSON") from None
        entries = doc.get("served") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or doc.get("format") != LEDGER_FORMAT or not isinstance(entries, list):
            raise UsageError(f"{path}: not a {LEDGER_FORMAT} file")
        if not all(isinstance(e, dict) and isinstance(e.get("bundle_sha256"), str) for e in entries):
            raise UsageError(f"{path}: a served-ledger entry has no bundle_sha256")
        return cls(path, entries)

    def served_to(self, operator: str) -> set[str]:
        return {e["bundle_sha256"] for e in self.entries if e.get("operator") == operator}

    def audit_ids(self) -> set[str]:
        return {str(e.get("audit_id")) for e in self.entries}

    def record(self, audit_id: str, operator: str, bundles) -> None:
        when = now_utc()
        for b in bundles:
            self.entries.append(
                {
                    "audit_id": audit_id,
                    "operator": operator,
                    "bundle": b.path.name,
                    "bundle_sha256": b.sha256,
                    "served": when,
                }
            )
        doc = {"format": LEDGER_FORMAT, "served": self.entries}
        write_bytes_atomic(self.path, (json.dumps(doc, indent=1) + "\n").encode(), mode=0o600)


def pick(
    bundles: list, ledger: ServedLedger, operator: str, audit_id: str | None, serve: int = 1
) -> tuple[list, Audit]:
    """The first ``serve`` verified bundles this operator has never been served, recorded in the
    ledger now (before any suspect sees them); UsageError when too few are left."""
    if not operator.strip():
        raise UsageError("--operator: give the name of the suspect's operator")
    if serve < 1:
        raise UsageError(f"--serve {serve}: must be at least 1")
    taken = ledger.audit_ids()
    if audit_id is None:
        audit_id, n = f"{operator}-{now_utc()}", 1
        while audit_id in taken:
            n += 1
            audit_id = f"{operator}-{now_utc()}-{n}"
    elif audit_id in taken:
        raise UsageError(f"--audit-id {audit_id}: already in {ledger.path}; each audit gets its own id")
    seen = ledger.served_to(operator)
    fresh, shas = [], set()
    for b in bundles:
        if b.sha256 not in seen and b.sha256 not in shas:
            fresh.append(b)
            shas.add(b.sha256)
    if len(fresh) < serve:
        raise UsageError(
            f"{operator!r} has been served {len(seen)} of these bundles; {len(fresh)} unserved left, {serve} needed: "
            "make a fresh one with `gfaudit refresh`"
        )
    chosen = fresh[:serve]
    ledger.record(audit_id, operator, chosen)
    return chosen, Audit(audit_id, operator, str(ledger.path), tuple(b.sha256 for b in chosen), len(seen))
