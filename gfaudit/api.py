"""The Python API: the same steps as the command line, returning results instead of printing.

Every function raises a subclass of :class:`gfaudit.errors.GfauditError` on failure
(``UsageError``, ``IntegrityError``, ``SuspectError``...), each with the ``exit_code`` the CLI would
use; nothing here prints or exits. Nothing here imports torch. Arguments are validated like the
CLI's options (a misspelt ``expect`` or ``device`` is a ``UsageError``). Models run in isolated
worker processes, which never re-run the caller's ``__main__``: the API works from a script
without an ``if __name__ == "__main__"`` guard, from stdin and from a notebook. See docs/api.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Union

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gfaudit import formats as _formats
from gfaudit.audit import arbiter as _authenticity, evaluate as _evaluate
from gfaudit.audit.arbiter import Authenticity
from gfaudit.audit.check import CheckResult, SuspectResult
from gfaudit.audit.isolation import DEFAULT_TIMEOUT
from gfaudit.bundle.container import Bundle
from gfaudit.errors import AuthenticityError, GfauditError, IntegrityError, SuspectError, UsageError

__all__ = [
    "Authenticity",
    "Bundle",
    "CheckResult",
    "SuspectResult",
    "GfauditError",
    "UsageError",
    "IntegrityError",
    "AuthenticityError",
    "SuspectError",
    "PublicKey",
    "Device",
    "Expect",
    "DEFAULT_TIMEOUT",
    "load_bundle",
    "verify_authenticity",
    "check_models",
    "evaluate_library",
    "render",
]

PathLike = Union[str, "os.PathLike[str]"]  # noqa: UP007 (a run-time alias: `str | "..."` cannot be evaluated)
#: A public key: a path to a PEM file, the PEM text or bytes, a loaded key, or None for
#: ``GFAUDIT_PUBKEY`` and then ``~/.config/gfaudit/config.toml`` (never the bundle).
PublicKey = PathLike | bytes | Ed25519PublicKey | None
Device = Literal["auto", "cpu", "cuda"]
Expect = Literal["derived", "not-derived"]


def _public_key(pubkey: PublicKey) -> Ed25519PublicKey:
    from gfaudit.bundle.keys import load_public, parse_public, resolve_public

    if isinstance(pubkey, Ed25519PublicKey):
        return pubkey
    if isinstance(pubkey, bytes):
        return parse_public(pubkey, "public key bytes")
    if isinstance(pubkey, str) and pubkey.lstrip().startswith("-----BEGIN"):
        return parse_public(pubkey.encode("utf-8"), "public key text")
    if pubkey is None:
        return resolve_public(None)[0]
    return load_public(pubkey)


def load_bundle(path: PathLike, pubkey: PublicKey = None) -> Bundle:
    """Verify a bundle's signature with ``pubkey``, then every tensor against the signed manifest,
    and return it. Raises ``IntegrityError`` (tampered, other key, missing .sig) or ``UsageError``
    (no or unreadable key)."""
    from gfaudit.bundle.container import load

    return load(Path(path), _public_key(pubkey))


def verify_authenticity(
    bundle: Bundle,
    victim: PathLike,
    device: Device = "auto",
    *,
    require: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Authenticity:
    """The arbiter's check: run the victim's ONNX on the pairs and compare with the signed labels and
    perturbation statistics. ``result.ok`` says whether they match; with ``require=True`` a mismatch
    raises ``AuthenticityError`` instead. The victim runs isolated like a suspect, under ``timeout``
    seconds (``None``: in this process, without a limit; trusted models only)."""
    from gfaudit.audit.check import validate

    validate(device, None, timeout, None)
    result = _authenticity.verify(bundle, _path(victim, "victim"), device, timeout)
    if require:
        _authenticity.require(result)
    return result


def check_models(
    bundle: Bundle | list[Bundle],
    models: PathLike | Iterable[PathLike],
    device: Device = "auto",
    expect: Expect | None = None,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    jobs: int | None = 1,
    executor: str = "local",
    ray_address: str | None = None,
) -> CheckResult:
    """Score each suspect ONNX model label-only: ``models`` is one path or several; a folder stands
    for every ``*.onnx`` entry in it that is not a folder, sorted (one that cannot be read is an
    ``error`` entry, never skipped). Against a list of verified bundles, one row per suspect and
    bundle (``SuspectResult.bundle``), each suspect labelled once per input specification.

    Returns a ``CheckResult``: one ``SuspectResult`` per model (verdict ``derived``, ``not-derived``
    or ``error`` with the reason) and ``exit_code``, the gate's answer as the CLI would exit. A model
    that cannot be scored is an ``error`` entry, not an exception; a missing CUDA device with
    ``device="cuda"`` raises. Each model runs in its own worker process under ``timeout`` seconds
    (``None``: in this process, without a limit; trusted models only); ``jobs`` models at once
    (``None``: one per CPU). Bad arguments (``expect="not_derived"``, ``timeout=0``) raise
    ``UsageError``, as the CLI exits 2. ``executor="ray"`` runs each model as a Ray task
    (``gfaudit[ray]``; ``ray_address`` as ``--ray-address``), with the same result."""
    from gfaudit.audit.check import check_bundles, validate
    from gfaudit.audit.suspects import expand

    bundles = bundle if isinstance(bundle, list) else [bundle]
    if not bundles or not all(isinstance(b, Bundle) for b in bundles):
        raise UsageError("bundle must be a Bundle from load_bundle, or a non-empty list of them")
    validate(device, expect, timeout, jobs)
    return check_bundles(
        bundles, expand(models), device, expect, timeout=timeout, jobs=jobs, executor=executor, ray_address=ray_address
    )


def evaluate_library(
    bundle: Bundle,
    library: PathLike,
    device: Device = "auto",
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    jobs: int | None = 1,
    executor: str = "local",
    ray_address: str | None = None,
) -> dict:
    """Score every model of a suspect library (a folder with ``library.json``, or the file) and return
    the evaluation document: per-model scores, per-family summary, ARUC, ROC-AUC, TPR at 0 % and 1 %
    FPR, the curves, and how many models the signed threshold flags (the JSON of ``gfaudit evaluate``).
    ``timeout``, ``jobs``, ``executor`` and ``ray_address`` as in :func:`check_models`."""
    from gfaudit.audit.check import validate

    validate(device, None, timeout, jobs)
    library_models = _evaluate.load_library(Path(_path(library, "library")))
    return _evaluate.evaluate(
        bundle, library_models, device, timeout=timeout, jobs=jobs, executor=executor, ray_address=ray_address
    )


def _path(value, what: str) -> str:
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise UsageError(f"{what} must be a path (str or os.PathLike)")
    return os.fspath(value)


def render(result: CheckResult | dict, fmt: str = "json", pubkey_source: str | None = None) -> str:
    """A report as the CLI writes it: a ``CheckResult`` as ``text``, ``json`` or ``sarif``; an evaluation
    document as ``text``, ``json`` or ``markdown``."""
    if isinstance(result, CheckResult):
        if not _formats.supported("check", fmt):
            raise UsageError(f"check reports come as {', '.join(_formats.COMMANDS['check'])}, not {fmt!r}")
        return _formats.render_check(fmt, result, pubkey_source)
    if not _formats.supported("evaluate", fmt):
        raise UsageError(f"evaluation reports come as {', '.join(_formats.COMMANDS['evaluate'])}, not {fmt!r}")
    return _formats.render_evaluation(fmt, result)
