"""Where one run's reports go: the ``--format`` report to stdout or ``-o``, plus any
``--json-file-output`` / ``--sarif-file-output`` files, all written atomically. A run that stops
(exit 2, 3 or 4) still writes every requested file, as a failure report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gfaudit import formats
from gfaudit.errors import UsageError
from gfaudit.files.atomic import write_text_atomic

__all__ = ["Outputs", "Target"]


@dataclass(frozen=True)
class Target:
    fmt: str
    path: Path | None  # None: stdout


@dataclass
class Outputs:
    command: str
    targets: list[Target] = field(default_factory=list)

    @classmethod
    def plan(cls, command: str, fmt: str, out: Path | None, **files: Path | None) -> Outputs:
        """``files`` maps a format name to the file its ``--<format>-file-output`` option named."""
        targets = [Target(fmt, out)]
        for name, path in files.items():
            if path is not None:
                if not formats.supported(command, name):
                    raise UsageError(f"{command} cannot write {name}")
                targets.append(Target(name, Path(path)))
        paths = [str(t.path) for t in targets if t.path is not None]
        if len(set(paths)) != len(paths):
            raise UsageError("two reports would be written to the same file; give each its own path")
        return cls(command, targets)

    def files(self) -> list[Path]:
        return [t.path for t in self.targets if t.path is not None]

    def write(self, render: Callable[[str], str]) -> list[Path]:
        """Render every target with ``render(fmt)``; files are written before stdout. Returns the files."""
        texts = [(t, render(t.fmt)) for t in self.targets]
        written = []
        for t, text in texts:
            if t.path is not None:
                write_text_atomic(t.path, text)
                written.append(t.path)
        for t, text in texts:
            if t.path is None:
                sys.stdout.write(text)
                sys.stdout.flush()
        return written

    def write_failure(self, code: int, message: str) -> list[Path]:
        """The failure report into every requested file (stdout stays empty: nothing was scored).
        A file that cannot be written is skipped: the run is failing already and says why."""
        failure = formats.Failure(self.command, code, message)
        written = []
        for t in self.targets:
            if t.path is None:
                continue
            try:
                write_text_atomic(t.path, formats.render_failure(t.fmt, failure))
                written.append(t.path)
            except OSError:
                pass
        return written
