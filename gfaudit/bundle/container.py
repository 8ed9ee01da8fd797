"""Write and load signed fingerprint bundles (format v1; the fields are described in manifest.py).

Loading verifies in this order and fails closed at the first mismatch: DSSE signature with the
user's key -> statement and manifest -> sha256 of the safetensors file -> each tensor's sha256,
dtype and shape. Nothing in the bundle is used before the signature has been checked.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gfaudit.bundle import dsse, manifest as mf
from gfaudit.bundle.perturbation import statistics
from gfaudit.errors import IntegrityError, UsageError
from gfaudit.files import strict_json
from gfaudit.files.atomic import write_bytes_atomic
from gfaudit.files.safe_read import MAX_SIG_BYTES, max_bundle_bytes, read_regular

__all__ = [
    "SAFETENSORS_METADATA",
    "SIG_SUFFIX",
    "Bundle",
    "build_manifest",
    "load",
    "parse_payload",
    "read_data",
    "read_envelope",
    "sig_path",
    "tensor_entry",
    "verify_statement",
    "write",
    "write_signed",
]

SIG_SUFFIX = ".sig"
SAFETENSORS_METADATA = {"format": "gfaudit-bundle-v1"}


def sig_path(bundle_path: str | os.PathLike) -> Path:
    return Path(str(bundle_path) + SIG_SUFFIX)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tensor_entry(arr: np.ndarray) -> dict:
    return {"sha256": _sha256(np.ascontiguousarray(arr).tobytes()), "dtype": str(arr.dtype), "shape": list(arr.shape)}


@dataclass(frozen=True)
class Bundle:
    """A bundle whose signature and integrity have been verified."""

    path: Path
    sha256: str
    x: np.ndarray
    x_prime: np.ndarray
    y: np.ndarray
    y_prime: np.ndarray
    manifest: mf.Manifest

    @property
    def k(self) -> int:
        return int(self.x.shape[0])

    def summary(self) -> dict:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "method": self.manifest.method,
            "rule": self.manifest.rule,
            "threshold": str(self.manifest.threshold),
            "k": self.k,
        }


def _validate_arrays(x, x_prime, y, y_prime, num_classes: int) -> None:
    if x.dtype != np.uint8 or x_prime.dtype != np.uint8:
        raise UsageError("x and x_prime must be uint8 arrays")
    if x.ndim != 4 or x.shape != x_prime.shape or x.shape[0] < 1:
        raise UsageError(f"x and x_prime must share one [K,C,H,W] shape, got {x.shape} and {x_prime.shape}")
    if y.shape != (x.shape[0],) or y_prime.shape != (x.shape[0],):
        raise UsageError("y and y_prime must hold one label per pair")
    for lab in (y, y_prime):
        if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
            raise UsageError("labels out of range for the number of classes")


def build_manifest(
    pairs: dict[str, np.ndarray],
    *,
    method: str,
    rule: str,
    threshold: float | str,
    input_spec: mf.InputSpec,
    provenance: dict,
    null_model: mf.AnyNullModel | None = None,
) -> dict:
    """The manifest for ``pairs`` (x, x_prime, y, y_prime): what gets signed."""
    scoring: dict[str, object] = {
        "rule": rule,
        "threshold": mf.decimal_string(threshold),
        "verdict": "derived if score >= threshold",
    }
    if null_model is not None:
        scoring["null_model"] = null_model.to_json()
    return {
        "format_version": mf.FORMAT_VERSION,
        "method": method,
        "k": int(pairs["x"].shape[0]),
        "tensors": {name: tensor_entry(pairs[name]) for name in mf.REQUIRED_TENSORS},
        "input": input_spec.to_json(),
        "scoring": scoring,
        "perturbation": statistics(pairs["x"], pairs["x_prime"]),
        "provenance": provenance,
    }


def write(
    path: str | os.PathLike,
    pairs: dict[str, np.ndarray],
    *,
    method: str,
    rule: str,
    threshold: float | str,
    input_spec: mf.InputSpec,
    provenance: dict,
    key: Ed25519PrivateKey,
    null_model: mf.AnyNullModel | None = None,
) -> Path:
    """Serialise, sign and atomically write ``path`` and ``path.sig``; returns the bundle path.
    ``pairs`` holds x and x_prime (uint8 [K,C,H,W]) and y and y_prime (the victim's labels)."""
    from safetensors.numpy import save

    pairs = {
        "x": np.ascontiguousarray(pairs["x"]),
        "x_prime": np.ascontiguousarray(pairs["x_prime"]),
        "y": pairs["y"].astype(np.int64),
        "y_prime": pairs["y_prime"].astype(np.int64),
    }
    _validate_arrays(pairs["x"], pairs["x_prime"], pairs["y"], pairs["y_prime"], input_spec.num_classes)
    if rule not in mf.SCORING_RULES:
        raise UsageError(f"unknown scoring rule {rule!r}")
    manifest = build_manifest(
        pairs,
        method=method,
        rule=rule,
        threshold=threshold,
        input_spec=input_spec,
        provenance=provenance,
        null_model=null_model,
    )
    mf.parse(manifest)  # what we sign must be what we can read back
    data = save(pairs, metadata=SAFETENSORS_METADATA)
    return write_signed(path, data, manifest, key)


def write_signed(path: str | os.PathLike, data: bytes, manifest: dict, key: Ed25519PrivateKey) -> Path:
    """Sign ``manifest`` as the predicate over ``data`` and write both files atomically."""
    path = Path(path)
    stmt = mf.statement(path.name, _sha256(data), manifest)
    payload = json.dumps(stmt, sort_keys=True, separators=(",", ":")).encode("utf-8")
    envelope = json.dumps(dsse.sign(payload, key), indent=2).encode("utf-8")
    # The data file first: a crash between the renames leaves an old signature that fails closed.
    write_bytes_atomic(path, data)
    write_bytes_atomic(sig_path(path), envelope + b"\n")
    return path


def read_envelope(path: str | os.PathLike) -> bytes:
    """The ``.sig`` bytes of bundle ``path`` (regular file, capped; IntegrityError otherwise)."""
    if not os.path.lexists(path) and not os.path.lexists(sig_path(path)):
        # Neither file: a mistyped path (exit 2), not a stripped signature (exit 3).
        raise UsageError(f"{path}: bundle not found (no such file); check --bundle or GFAUDIT_BUNDLE")
    return read_regular(sig_path(path), MAX_SIG_BYTES, "signature file (.sig)", IntegrityError)


def read_data(path: str | os.PathLike) -> bytes:
    """The bundle's bytes (regular file, capped; IntegrityError otherwise)."""
    return read_regular(path, max_bundle_bytes(), "bundle", IntegrityError)


def parse_payload(payload: bytes) -> object:
    """The signed statement, parsed strictly (no duplicate keys, bounded nesting)."""
    return strict_json.loads(payload, "signed payload", IntegrityError)


def verify_statement(path: str | os.PathLike, key: Ed25519PublicKey) -> tuple[str, object, bytes]:
    """Check the signature over ``path.sig`` and the file's digest; return (sha256, predicate, data)."""
    path = Path(path)
    envelope = read_envelope(path)
    payload = dsse.verify(envelope, key)
    subject_sha, predicate = mf.parse_statement(parse_payload(payload))
    data = read_data(path)
    actual = _sha256(data)
    if actual != subject_sha:
        raise IntegrityError(f"{path.name}: sha256 {actual[:16]}... does not match the signed digest")
    return actual, predicate, data


def load(path: str | os.PathLike, key: Ed25519PublicKey) -> Bundle:
    """Verify and load a bundle. Raises IntegrityError on any mismatch."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    path = Path(path)
    sha, predicate, data = verify_statement(path, key)
    manifest = mf.parse(predicate)
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise IntegrityError(f"{path.name}: not a readable safetensors file ({exc})") from None
    for name, dtype in mf.REQUIRED_TENSORS.items():
        if name not in tensors:
            raise IntegrityError(f"{path.name}: tensor {name!r} is missing")
        arr = tensors[name]
        if tensor_entry(arr) != manifest.tensors[name] or str(arr.dtype) != dtype:
            raise IntegrityError(f"{path.name}: tensor {name!r} does not match the signed manifest")
    x, xp, y, yp = (tensors[n] for n in ("x", "x_prime", "y", "y_prime"))
    spec = manifest.input
    if x.ndim != 4 or x.shape[1:] != (spec.channels, spec.height, spec.width) or x.shape != xp.shape:
        raise IntegrityError(f"{path.name}: fingerprint shape {x.shape} does not match the input spec")
    if y.shape != (x.shape[0],) or yp.shape != (x.shape[0],) or x.shape[0] < 1:
        raise IntegrityError(f"{path.name}: label tensors do not match the number of pairs")
    for lab in (y, yp):
        if lab.min() < 0 or lab.max() >= spec.num_classes:
            raise IntegrityError(f"{path.name}: labels out of range for {spec.num_classes} classes")
    return Bundle(path, sha, x, xp, y, yp, manifest)
