"""Commands that need the trainer (torch): registered on the main app, imported lazily when run."""

from __future__ import annotations

from .cli import app  # noqa: F401
