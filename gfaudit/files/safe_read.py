"""Bounded reads of regular files only: a FIFO never blocks, a device never fills memory.

Every file gfaudit reads on a user's say-so (bundle, ``.sig``, keys, ``library.json``, ``.npy``
inputs, the config file) goes through :func:`read_regular`; suspects, which onnxruntime opens by
path, are vetted with :func:`require_regular`. The file is opened with ``O_NONBLOCK`` (so opening a
FIFO returns at once), checked with ``fstat`` on the open descriptor (so the check and the read see
the same file), refused unless it is a regular file, and read to at most ``cap + 1`` bytes.
The caller picks the error class, and with it the exit code (3 for the bundle, 2 for keys and
library files, 4 for a suspect).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from gfaudit.errors import GfauditError

__all__ = [
    "BUNDLE_CAP_ENV",
    "MAX_BUNDLE_BYTES_DEFAULT",
    "MAX_CONFIG_BYTES",
    "MAX_KEY_BYTES",
    "MAX_LIBRARY_JSON_BYTES",
    "MAX_MODEL_BYTES_DEFAULT",
    "MAX_SIG_BYTES",
    "MODEL_CAP_ENV",
    "max_bundle_bytes",
    "max_model_bytes",
    "read_regular",
    "require_regular",
]

MiB = 1 << 20
GiB = 1 << 30
# Documented caps (docs/design.md, "Hardening"). The two large ones can be raised by environment.
MAX_SIG_BYTES = 16 * MiB
MAX_KEY_BYTES = 64 * 1024
MAX_CONFIG_BYTES = 1 * MiB
MAX_LIBRARY_JSON_BYTES = 16 * MiB
MAX_BUNDLE_BYTES_DEFAULT = 2 * GiB
MAX_MODEL_BYTES_DEFAULT = 4 * GiB
BUNDLE_CAP_ENV = "GFAUDIT_MAX_BUNDLE_BYTES"
MODEL_CAP_ENV = "GFAUDIT_MAX_MODEL_BYTES"


def _env_cap(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        cap = int(value)
    except ValueError:
        return default
    return cap if cap > 0 else default


def max_bundle_bytes() -> int:
    return _env_cap(BUNDLE_CAP_ENV, MAX_BUNDLE_BYTES_DEFAULT)


def max_model_bytes() -> int:
    return _env_cap(MODEL_CAP_ENV, MAX_MODEL_BYTES_DEFAULT)


def file_kind(mode: int) -> str:
    """A file type in words, for the one-line errors of readers and writers alike."""
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _open(path: Path, what: str, error: type[GfauditError]) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found (no such file)") from None
    except PermissionError:
        raise error(f"{path}: cannot read {what} (permission denied)") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO opened for writing only
            raise error(f"{path}: {what} is not a regular file") from None
        raise error(f"{path}: cannot open {what} ({exc.strerror or exc})") from None


def _fstat_regular(fd: int, path: Path, what: str, cap: int, error: type[GfauditError]) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: {what} is {file_kind(st.st_mode)}, not a regular file")
    if st.st_size > cap:
        raise error(f"{path}: {what} is too large ({st.st_size} bytes; the limit is {cap})")
    return st


def read_regular(path: str | os.PathLike, cap: int, what: str, error: type[GfauditError]) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``cap`` bytes; else ``error`` with one line."""
    path = Path(path)
    fd = _open(path, what, error)
    try:
        _fstat_regular(fd, path, what, cap, error)
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= cap:
            try:
                chunk = os.read(fd, min(cap + 1 - total, 8 * MiB))
            except OSError as exc:
                raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > cap:  # the file grew while we read it
            raise error(f"{path}: {what} is too large (over {cap} bytes)")
        return b"".join(chunks)
    finally:
        os.close(fd)


def require_regular(path: str | os.PathLike, cap: int, what: str, error: type[GfauditError]) -> int:
    """Check, without reading it, that ``path`` is a readable regular file of at most ``cap`` bytes; its size."""
    path = Path(path)
    fd = _open(path, what, error)
    try:
        return _fstat_regular(fd, path, what, cap, error).st_size
    finally:
        os.close(fd)
