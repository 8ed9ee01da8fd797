"""Typed errors of the auditor. Each carries the exit code the CLI maps it to (SPEC: exit codes)."""

from __future__ import annotations

__all__ = ["AuthenticityError", "GfauditError", "IntegrityError", "KeyFileError", "SuspectError", "UsageError"]


class GfauditError(Exception):
    """Base class: a failure the user can act on, reported as one line."""

    exit_code = 4


class UsageError(GfauditError):
    """Bad arguments or inputs the user supplied (exit 2)."""

    exit_code = 2


class IntegrityError(GfauditError):
    """The bundle is missing, tampered with, signed by another key or of an unknown format (exit 3)."""

    exit_code = 3


class AuthenticityError(IntegrityError):
    """The victim does not behave on the fingerprints as the signed bundle claims (exit 3)."""


class SuspectError(GfauditError):
    """A model could not be loaded or run: bad ONNX, incompatible input or output, missing CUDA (exit 4)."""

    exit_code = 4


class KeyFileError(UsageError):
    """A key file is missing, unreadable, of the wrong type or needs a passphrase (exit 2)."""
