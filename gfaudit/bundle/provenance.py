"""Facts about who and what made a bundle, recorded (signed) in the manifest's provenance."""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

__all__ = ["file_sha256", "now_utc", "versions"]


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def versions(*packages: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("gfaudit", "numpy", "onnxruntime-gpu", "onnxruntime", "safetensors", "cryptography", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def now_utc() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
