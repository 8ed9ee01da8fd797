"""Names of the owner's private files beside a bundle (torch-free, so the CLI can guard them first).

``gfaudit train`` keeps GanFinger's generator beside ``NAME.safetensors`` as
``NAME.generator.safetensors`` (weights), ``NAME.generator.json`` (config) and
``NAME.generator.ledger.json`` (the seeds each bundle of this generator drew and kept). None of
them is ever part of a bundle; ``check --bundle-dir`` skips them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

__all__ = ["GENERATOR_SUFFIXES", "GeneratorFiles", "generator_files", "is_private"]

GENERATOR_SUFFIXES = (".generator.ledger.json", ".generator.safetensors", ".generator.json")


class GeneratorFiles(NamedTuple):
    weights: Path
    config: Path
    ledger: Path


def generator_files(path: str | os.PathLike) -> GeneratorFiles:
    """The generator files of a bundle ``NAME.safetensors``, or of any one of the generator's own files."""
    p = Path(path)
    name = p.name
    stem = name
    for suffix in (*GENERATOR_SUFFIXES, ".safetensors"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            break
    return GeneratorFiles(
        p.with_name(stem + ".generator.safetensors"),
        p.with_name(stem + ".generator.json"),
        p.with_name(stem + ".generator.ledger.json"),
    )


def is_private(path: str | os.PathLike) -> bool:
    """A generator file, never a bundle."""
    return Path(path).name.endswith(GENERATOR_SUFFIXES)
