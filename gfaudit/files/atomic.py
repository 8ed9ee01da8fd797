"""Write files so that a reader never sees a partial one: temporary file in the same folder, then rename.

Which paths may be written at all is decided before any work by :mod:`gfaudit.files.outputs`; as a last
line of defence this module also refuses to replace anything but a regular file (a rename would
turn a device into a file, or replace a symbolic link instead of writing through it).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gfaudit.errors import UsageError

__all__ = ["atomic_path", "write_bytes_atomic", "write_text_atomic"]


def _refuse_odd_target(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path}: refusing to replace something that is not a regular file")


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` in one rename; the file gets ``mode`` from its first byte on."""
    path = Path(path)
    _refuse_odd_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{path}: cannot write here: a part of {path.parent} is not a folder") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text_atomic(path: str | os.PathLike, text: str, mode: int = 0o644) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), mode)


@contextmanager
def atomic_path(path: str | os.PathLike, mode: int = 0o644) -> Iterator[Path]:
    """A temporary file name beside ``path``, for writers that want a name rather than bytes
    (torch.save, safetensors, np.savez, ONNX export): renamed onto ``path`` with ``mode`` when the
    block ends without error, removed when it raises. The name keeps ``path``'s suffix, so a writer
    that appends one (np.savez) finds it already there."""
    path = Path(path)
    _refuse_odd_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{path}: cannot write here: a part of {path.parent} is not a folder") from None
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
