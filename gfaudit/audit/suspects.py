"""Suspect paths as given on a command line: files stay as they are, a folder stands for its .onnx files.

The folder rule is a gate's: every entry named ``*.onnx`` that is not itself a folder is a suspect,
whatever it is (a regular file, a dangling link, a symbolic-link loop, a FIFO, a link to a device).
One that cannot be read becomes its own error row (exit 4), exactly as when it is named directly;
it never silently disappears, or ``--expect not-derived`` could pass while a pirate goes unread.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from gfaudit.errors import UsageError


def _is_folder(path: str) -> bool:
    """True only for a folder (or a link to one); anything that cannot even be stat'ed is not."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def folder_models(folder: Path, what: str = "folder") -> list[str]:
    """Every ``*.onnx`` entry directly inside ``folder`` that is not a folder, sorted by name."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.lower().endswith(".onnx")]
    except OSError as exc:
        raise UsageError(f"{folder}: cannot list the {what} ({exc.strerror or exc})") from None
    return [p for p in (os.path.join(folder, n) for n in sorted(names)) if not _is_folder(p)]


def expand(paths: Iterable[str | os.PathLike] | str | os.PathLike) -> list[str]:
    """Each folder replaced by its ``*.onnx`` entries (see the module doc), sorted by name; other
    paths kept in order (a missing or unreadable file is reported per suspect by ``check``). One
    path may be given alone. A folder without any ``.onnx`` entry is a usage error."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        if isinstance(p, bytes) or not isinstance(p, (str, os.PathLike)):
            raise UsageError(f"a suspect must be a path (str or os.PathLike), not {type(p).__name__}")
        if not os.fspath(p):
            raise UsageError("a suspect path is empty")
        path = Path(p)
        if _is_folder(str(path)):
            found = folder_models(path)
            if not found:
                raise UsageError(f"{path}: folder holds no .onnx file")
            out.extend(found)
        else:
            out.append(str(p))
    if not out:
        raise UsageError("no suspect model given")
    return out
