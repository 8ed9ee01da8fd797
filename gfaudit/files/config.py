"""Where gfaudit's user configuration lives: ``$XDG_CONFIG_HOME/gfaudit/config.toml`` (default
``~/.config``). The keys module reads the owner's public key path from it; the output policy
refuses to write a report onto it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_path"]


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "gfaudit" / "config.toml"
