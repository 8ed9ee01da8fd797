"""Reading user-supplied .npy arrays (``bundle create --x/--x-prime``) without trusting their headers."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from gfaudit.errors import UsageError
from gfaudit.files.safe_read import max_bundle_bytes, read_regular

__all__ = ["read_npy"]


def read_npy(path: Path):
    """A .npy array read through the bounded, regular-file-only reader (exit 2 on anything odd). The
    header's shape must account for exactly the bytes that follow it: a header that claims 10^9
    images in a small file is refused before anything is allocated."""
    data = read_regular(path, max_bundle_bytes(), ".npy array", UsageError)

    def refuse(why: str) -> UsageError:
        return UsageError(f"{path}: not a readable .npy array ({why})")

    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        header = np.lib.format.read_array_header_2_0 if version >= (2, 0) else np.lib.format.read_array_header_1_0
        shape, fortran, dtype = header(stream)
    except (OSError, ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise refuse(str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__) from None
    if dtype.hasobject:
        raise refuse("object arrays are not allowed")
    need = math.prod(shape) * dtype.itemsize
    have = len(data) - stream.tell()
    if need != have:
        raise refuse(f"its header claims shape {list(shape)} of {dtype} ({need} bytes), the file holds {have}")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise refuse(str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__) from None
