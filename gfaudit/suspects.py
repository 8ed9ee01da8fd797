"""Suspect paths as given on a command line: files stay as they are, a folder stands for its .onnx files."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import UsageError


def expand(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Each folder replaced by the ``*.onnx`` files directly inside it, sorted by name; other paths kept
    in order (a missing file is reported per suspect by ``check``). A folder without any is a usage error."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(str(f) for f in path.iterdir() if f.suffix.lower() == ".onnx" and f.is_file())
            if not found:
                raise UsageError(f"{path}: folder holds no .onnx file")
            out.extend(found)
        else:
            out.append(str(p))
    if not out:
        raise UsageError("no suspect model given")
    return out
