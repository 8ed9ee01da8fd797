"""The output-path policy: what any gfaudit command may write onto, checked before any work.

Every command that writes (``check -o``, ``evaluate -o/--plot``, ``keygen``, ``bundle create``,
``sign``, ``train``, ``export-onnx``, ``library build``) calls :func:`guard` with its outputs and its
inputs before it reads a model or scores anything. An output is refused (UsageError, exit 2) when:

- it is, by path or by inode (``os.path.samefile``: hard links too), one of the run's inputs;
- it is gfaudit's config file (``$XDG_CONFIG_HOME/gfaudit/config.toml``), which names the
  verifying key: an input of every run that may resolve a key, so never a report;
- it is an existing private key (a name ending in ``.key`` or PEM ``PRIVATE KEY`` text);
- it exists and is not a regular file: folder, device, FIFO, socket, or any symbolic link
  (``os.replace`` would replace the link, not what it points to);
- it exists and is read-only (no write bit: also refused for root, who could write anyway);
- its folder cannot be written, or a path component is not a folder;
- two outputs of the run are the same file.

An accepted file output is then written by :mod:`gfaudit.files.atomic` (temporary file in the same folder,
then ``os.replace``), which re-checks that it is not replacing anything but a regular file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gfaudit.errors import UsageError
from gfaudit.files.config import config_path
from gfaudit.files.safe_read import file_kind

__all__ = ["Output", "OutputRefused", "file", "folder", "guard", "is_private_key"]


class OutputRefused(UsageError):
    """An output path the policy refuses (exit 2). Nothing may be written there, not even a failure report."""


_PRIVATE_PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_HEAD_BYTES = 64 * 1024

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Output:
    """One path a command will write: a file (replaced atomically) or a folder (filled with files)."""

    path: Path
    what: str = "output"
    folder: bool = False
    may_replace_key: bool = False  # keygen --force replaces owner.key on purpose


def _head(path: Path) -> bytes:
    """The first bytes of a regular file, without blocking on anything odd."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, _HEAD_BYTES)
    except OSError:
        return b""
    finally:
        os.close(fd)


def is_private_key(path: PathLike) -> bool:
    """True for an existing file named ``*.key`` or holding PEM private-key text."""
    p = Path(path)
    return p.name.endswith(".key") or bool(_PRIVATE_PEM.search(_head(p)))


def _read_only(path: Path, st: os.stat_result) -> bool:
    return not (st.st_mode & 0o222) or not os.access(path, os.W_OK)


def _check_parent(path: Path, what: str) -> None:
    """The nearest existing ancestor must be a writable folder (missing folders are created later)."""
    parent = path.parent
    while True:
        try:
            st = os.stat(parent)
            break
        except FileNotFoundError:
            if parent.parent == parent:
                return
            parent = parent.parent
        except OSError as exc:
            raise OutputRefused(f"{path}: cannot write the {what} here ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputRefused(f"{path}: cannot write the {what}: {parent} is not a folder")
    if _read_only(parent, st):
        raise OutputRefused(f"{path}: cannot write the {what}: folder {parent} is read-only")


def _check_file(out: Output) -> None:
    p = out.path
    if os.path.islink(p):
        raise OutputRefused(f"{p}: refusing to write the {out.what} onto a symbolic link; name the real file")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        _check_parent(p, out.what)
        return
    except OSError as exc:
        raise OutputRefused(f"{p}: cannot write the {out.what} here ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise OutputRefused(f"{p}: refusing to write the {out.what} onto {file_kind(st.st_mode)}; name a regular file")
    if not out.may_replace_key and is_private_key(p):
        raise OutputRefused(f"{p}: refusing to write the {out.what} onto a private key")
    if _read_only(p, st):
        raise OutputRefused(f"{p}: refusing to replace a read-only file")
    _check_parent(p, out.what)


def _check_folder(out: Output) -> None:
    p = out.path
    try:
        st = os.stat(p)
    except FileNotFoundError:
        _check_parent(p, out.what)
        return
    except OSError as exc:
        raise OutputRefused(f"{p}: cannot use it as the {out.what} ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputRefused(
            f"{p}: the {out.what} must be a folder, and this is {file_kind(st.st_mode) if not stat.S_ISREG(st.st_mode) else 'a file'}"
        )
    if _read_only(p, st):
        raise OutputRefused(f"{p}: the {out.what} is read-only")


def _same(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def guard(outputs: Iterable[Output | None], inputs: Iterable[PathLike | None] = ()) -> None:
    """Refuse (UsageError, exit 2) any output that would destroy an input or is not a plain file; see module doc."""
    outs = [o for o in outputs if o is not None]
    ins = [Path(i) for i in inputs if i is not None and str(i) != ""]
    config = config_path()
    for i, out in enumerate(outs):
        for other in outs[:i]:
            if _same(out.path, other.path):
                raise OutputRefused(f"{out.path}: the {out.what} and the {other.what} are the same file")
        if _same(out.path, config):
            raise OutputRefused(f"{out.path}: refusing to write the {out.what} onto gfaudit's config file")
        for src in ins:
            if _same(out.path, src):
                raise OutputRefused(f"{out.path}: refusing to write the {out.what} onto an input of this run ({src})")
        (_check_folder if out.folder else _check_file)(out)


def file(path: PathLike | None, what: str = "output", **kw) -> Output | None:
    return None if path is None else Output(Path(path), what, **kw)


def folder(path: PathLike, what: str = "output folder") -> Output:
    return Output(Path(path), what, folder=True)
