"""The command line. Only this layer prints and picks exit codes; the library raises typed errors.

Exit codes (SPEC): 0 not derived / expectation met, 1 derived (finding), 2 usage error,
3 bundle integrity or signature failure, 4 runtime error (bad ONNX, incompatible input, no CUDA).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .errors import GfauditError, UsageError

app = typer.Typer(
    name="gfaudit",
    help="Prove that a deployed classifier derives from yours, with signed GanFinger fingerprints.",
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
bundle_app = typer.Typer(help="Create signed fingerprint bundles.", no_args_is_help=True, rich_markup_mode=None)
library_app = typer.Typer(help="Build suspect libraries for evaluation (needs gfaudit[train]).",
                          no_args_is_help=True, rich_markup_mode=None)
app.add_typer(bundle_app, name="bundle")
app.add_typer(library_app, name="library")


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Format(str, Enum):
    """Report formats of ``check`` (gfaudit.formats.COMMANDS["check"])."""

    text = "text"
    json = "json"
    sarif = "sarif"


class InfoFormat(str, Enum):
    """Formats of ``inspect``, ``verify`` and ``doctor``: there is no SARIF view of a bundle."""

    text = "text"
    json = "json"


# Environment variables for the flags a CI job sets (the public key's, GFAUDIT_PUBKEY, is read by
# keys.resolve_public, which also accepts the PEM text itself).
ENV_BUNDLE, ENV_FORMAT, ENV_DEVICE = "GFAUDIT_BUNDLE", "GFAUDIT_FORMAT", "GFAUDIT_DEVICE"


class Expect(str, Enum):
    derived = "derived"
    not_derived = "not-derived"


class Normalization(str, Enum):
    imagenet = "imagenet"
    cifar10 = "cifar10"
    none = "none"


_STATE = {"quiet": False}


def err(message: str) -> None:
    typer.echo(f"gfaudit: {message}", err=True)


def info(message: str) -> None:
    """Progress, "wrote FILE" and warnings: silenced by --quiet (errors always print, through err)."""
    if not _STATE["quiet"]:
        err(message)


def _set_quiet(value: bool) -> bool:
    if value:
        _STATE["quiet"] = True
    return value


QUIET_HELP = "Print nothing on stderr unless the run fails."


def cli_errors(fn):
    """Turn library errors into one stderr line and the documented exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except GfauditError as exc:
            err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None
        except MemoryError:
            err("error: out of memory")
            raise typer.Exit(4) from None
        except Exception as exc:  # the last guard: a one-line report, exit 4
            if os.environ.get("GFAUDIT_DEBUG"):
                raise
            err(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            raise typer.Exit(4) from None

    return wrapper


def _version(value: bool):
    if value:
        typer.echo(f"gfaudit {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help=QUIET_HELP),
):
    """gfaudit: fingerprint your model (train), sign the fingerprints, and audit suspects (check)."""
    _STATE["quiet"] = quiet


def _emit(text: str, out: Optional[Path]) -> None:
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        from .atomic import write_text_atomic

        write_text_atomic(out, text)
        info(f"wrote {out}")


def _floats(value: Optional[str], what: str) -> Optional[list[float]]:
    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what} must be comma-separated numbers, e.g. 0.5,0.5,0.5") from None


def _load_verified(bundle_path: Path, pubkey: Optional[str]):
    from . import bundle as bundle_io
    from .keys import resolve_public

    key, source = resolve_public(pubkey)
    return bundle_io.load(bundle_path, key), source


# ---------------------------------------------------------------- keys and bundles


@app.command()
@cli_errors
def keygen(
    out: Path = typer.Option(..., "--out", help="Folder for owner.key (private, mode 0600) and owner.pub."),
    force: bool = typer.Option(False, "--force", help="Replace existing key files."),
):
    """Make an Ed25519 owner key pair. Set GFAUDIT_KEY_PASSWORD to encrypt the private key."""
    from .keys import generate

    key_path, pub_path = generate(out, force=force)
    info(f"wrote {key_path} (private: keep it out of any repository) and {pub_path}")


@bundle_app.command("create")
@cli_errors
def bundle_create(
    x: Path = typer.Option(..., "--x", help="Originals x: .npy, uint8 [K,C,H,W]."),
    x_prime: Path = typer.Option(..., "--x-prime", help="Perturbed x': .npy, uint8 [K,C,H,W]."),
    victim: Path = typer.Option(..., "--victim", help="The victim as ONNX; it labels every pair."),
    key: Path = typer.Option(..., "--key", help="Owner's private key (owner.key)."),
    out: Path = typer.Option(..., "-o", "--out", help="Bundle to write (NAME.safetensors, plus NAME.safetensors.sig)."),
    normalization: Normalization = typer.Option(Normalization.imagenet, help="Mean/std the victim expects on [0,1] pixels (the same default as train)."),
    mean: Optional[str] = typer.Option(None, help="Explicit per-channel mean, comma-separated (overrides --normalization)."),
    std: Optional[str] = typer.Option(None, help="Explicit per-channel std, comma-separated."),
    threshold: float = typer.Option(0.5, help="Decision threshold on the score (derived if score >= threshold)."),
    method: str = typer.Option("ganfinger", help="Method that made the pairs (ganfinger, ipguard, conferae, ...)."),
    rule: Optional[str] = typer.Option(None, help="Scoring rule: ard or label_match (default: ard for ganfinger)."),
    class_names: Optional[str] = typer.Option(None, help="Comma-separated class names."),
    device: Device = typer.Option(Device.auto, help="Where the victim runs."),
):
    """Pack fingerprint pairs made by any method into a signed bundle labelled by the victim."""
    import numpy as np

    from .create import create
    from .keys import load_private
    from .normalization import resolve

    m, s = resolve(normalization.value, _floats(mean, "--mean"), _floats(std, "--std"))
    arrays = []
    for p in (x, x_prime):
        try:
            arrays.append(np.load(p, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{p}: not a readable .npy array ({exc})") from None
    names = [n.strip() for n in class_names.split(",")] if class_names else None
    created = create(out, x=arrays[0], x_prime=arrays[1], victim_onnx=victim, mean=m, std=s,
                     key=load_private(key), method=method, rule=rule, threshold=threshold,
                     class_names=names, device=device.value)
    if created.dropped:
        info(f"warning: dropped {created.dropped} pair(s) whose x' the victim labels like x")
    info(f"wrote {created.path} and {created.path}.sig with {created.kept} pair(s)")


@app.command()
@cli_errors
def sign(
    bundle: Path = typer.Argument(..., help="Bundle to re-sign (NAME.safetensors)."),
    key: Path = typer.Option(..., "--key", help="Private key that signs the new envelope."),
    pubkey: Optional[str] = typer.Option(None, "--pubkey", help="Key the current signature must verify with."),
    unverified: bool = typer.Option(False, "--unverified", help="Re-sign without verifying the current signature (you vouch for the contents)."),
    threshold: Optional[float] = typer.Option(None, help="Replace the signed threshold."),
):
    """Re-sign a bundle (key rotation, new threshold). The tensors are re-hashed from the file."""
    from . import bundle as bundle_io, manifest as mf
    from .keys import load_private, resolve_public

    if unverified:
        predicate = _peek_predicate(bundle)
        data = bundle.read_bytes() if bundle.is_file() else None
        if data is None:
            raise UsageError(f"{bundle}: not found")
    else:
        k, _ = resolve_public(pubkey)
        _, predicate, data = bundle_io.verify_statement(bundle, k)
    manifest = mf.parse(predicate).raw
    from safetensors.numpy import load as st_load

    tensors = st_load(data)
    manifest["tensors"] = {n: bundle_io.tensor_entry(tensors[n]) for n in mf.REQUIRED_TENSORS}
    if threshold is not None:
        manifest["scoring"]["threshold"] = mf.decimal_string(threshold)
    mf.parse(manifest)
    bundle_io.write_signed(bundle, data, manifest, load_private(key))
    info(f"re-signed {bundle} (envelope {bundle_io.sig_path(bundle)})")


def _peek_predicate(bundle: Path) -> dict:
    """Decode the signed payload WITHOUT verifying it; only for display or explicit --unverified use."""
    import base64

    from .bundle import sig_path
    from .errors import IntegrityError
    from .manifest import parse_statement

    try:
        env = json.loads(sig_path(bundle).read_bytes())
        return parse_statement(json.loads(base64.b64decode(env["payload"])))[1]
    except FileNotFoundError:
        raise IntegrityError(f"{sig_path(bundle)}: signature file not found") from None
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(f"{sig_path(bundle)}: not a readable DSSE envelope") from None


@app.command()
@cli_errors
def inspect(
    bundle: Path = typer.Argument(..., help="Bundle (NAME.safetensors)."),
    pubkey: Optional[str] = typer.Option(None, "--pubkey", help="Verify with this public key first."),
    unverified: bool = typer.Option(False, "--unverified", help="Show the manifest without verifying it (marked UNVERIFIED)."),
    fmt: InfoFormat = typer.Option(InfoFormat.text, "--format", help="text or json."),
):
    """Show a bundle's manifest: method, threshold, input spec, provenance, perturbation."""
    if unverified:
        manifest, status = _peek_predicate(bundle), "UNVERIFIED (signature not checked)"
    else:
        b, source = _load_verified(bundle, pubkey)
        manifest, status = b.manifest.raw, f"verified with {source}; sha256 {b.sha256}"
    if fmt is InfoFormat.text:
        lines = [f"# {bundle}: {status}"]
        lines += _flatten(manifest)
        _emit("\n".join(lines) + "\n", None)
    else:
        _emit(json.dumps({"status": status, "manifest": manifest}, indent=2) + "\n", None)


def _flatten(obj, prefix: str = "") -> list[str]:
    if isinstance(obj, dict):
        return [line for k, v in obj.items() for line in _flatten(v, f"{prefix}{k}.")]
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return [line for i, v in enumerate(obj) for line in _flatten(v, f"{prefix}{i}.")]
    return [f"{prefix[:-1]:<40} {json.dumps(obj)}"]


@app.command()
@cli_errors
def verify(
    bundle: Path = typer.Argument(..., help="Bundle (NAME.safetensors)."),
    pubkey: Optional[str] = typer.Option(None, "--pubkey", help="Owner's public key (or GFAUDIT_PUBKEY, or config)."),
    victim: Optional[Path] = typer.Option(None, "--victim", help="Victim ONNX: also check the fingerprints are authentic."),
    device: Device = typer.Option(Device.auto, envvar=ENV_DEVICE, help="Where the victim runs."),
    fmt: InfoFormat = typer.Option(InfoFormat.text, "--format", help="text or json."),
):
    """Check signature and integrity; with --victim, the arbiter's authenticity check (exit 3 if not)."""
    from . import authenticity

    b, source = _load_verified(bundle, pubkey)
    doc = {"bundle": b.summary(), "pubkey": source, "signature": "ok", "integrity": "ok"}
    result = None
    if victim is not None:
        result = authenticity.verify(b, str(victim), device.value)
        doc["authenticity"] = result.to_json()
    if fmt is InfoFormat.text:
        text = f"signature ok ({source}); integrity ok: {b.k} pairs, method {b.manifest.method}, threshold {b.manifest.threshold}\n"
        if result is not None:
            text += (f"authenticity {'ok' if result.ok else 'FAILED'}: victim gives stored y on {result.y_agree}/{b.k}, "
                     f"stored y' on {result.y_prime_agree}/{b.k}; perturbation statistics "
                     f"{'match' if not result.perturbation_mismatch else 'differ: ' + ', '.join(result.perturbation_mismatch)}; "
                     f"victim sha256 {'matches' if result.victim_sha256_matches else 'differs from'} provenance\n")
        _emit(text, None)
    else:
        _emit(json.dumps(doc, indent=2) + "\n", None)
    if result is not None:
        authenticity.require(result)


# ---------------------------------------------------------------- auditing


JSON_FILE_HELP = "Also write the JSON report to FILE (atomically), whatever --format says."
SARIF_FILE_HELP = "Also write the SARIF 2.1.0 report to FILE (atomically), whatever --format says."


def _run_with_reports(outputs, body):
    """Run ``body()``; if it raises, write the failure report into every requested file, then re-raise
    (cli_errors turns it into one stderr line and the exit code)."""
    try:
        return body()
    except GfauditError as exc:
        outputs.write_failure(exc.exit_code, str(exc))
        raise
    except KeyboardInterrupt:
        outputs.write_failure(130, "interrupted")
        raise
    except Exception as exc:
        outputs.write_failure(4, f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        raise


@app.command()
@cli_errors
def check(
    suspects: List[Path] = typer.Argument(..., help="Suspect models (.onnx), or folders whose .onnx files are all checked (sorted)."),
    bundle: Path = typer.Option(..., "--bundle", envvar=ENV_BUNDLE, help="Signed fingerprint bundle (NAME.safetensors + .sig)."),
    pubkey: Optional[str] = typer.Option(None, "--pubkey", help="Owner's public key (or GFAUDIT_PUBKEY: a path or the PEM text; or config); never taken from the bundle."),
    fmt: Format = typer.Option(Format.text, "--format", envvar=ENV_FORMAT, help="Report format for stdout or -o: text, json or sarif."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Write the --format report here (atomically) instead of stdout."),
    json_file: Optional[Path] = typer.Option(None, "--json-file-output", metavar="FILE", help=JSON_FILE_HELP),
    sarif_file: Optional[Path] = typer.Option(None, "--sarif-file-output", metavar="FILE", help=SARIF_FILE_HELP),
    device: Device = typer.Option(Device.auto, envvar=ENV_DEVICE, help="auto (CUDA if it works), cpu, or cuda (exit 4 if CUDA does not work)."),
    expect: Optional[Expect] = typer.Option(None, help="Gate mode: exit 0 when every suspect gets this verdict, 1 otherwise."),
    quiet: bool = typer.Option(False, "-q", "--quiet", callback=_set_quiet, help=QUIET_HELP),
):
    """Verify the bundle, run each suspect label-only, and report ARD, P_ori, P_conf and the verdict.

    Exit 0: not derived (or --expect met); 1: derived (or --expect not met); 2: usage;
    3: bundle integrity/signature; 4: runtime (bad ONNX, incompatible model, CUDA missing).
    Several suspects: the most severe code. A run that stops still writes every requested report
    file, as a failure report (JSON "error", SARIF executionSuccessful false).
    """
    from . import formats
    from .check import check as run_check
    from .outputs import Outputs
    from .suspects import expand

    outputs = Outputs.plan("check", fmt.value, out, json=json_file, sarif=sarif_file)

    def progress(i, n, entry):
        info(f"[{i}/{n}] {entry.path}: {entry.verdict}")

    def body():
        b, source = _load_verified(bundle, pubkey)
        paths = expand(suspects)
        return run_check(b, paths, device.value, expect.value if expect else None,
                         progress=progress if len(paths) > 1 else None), source

    result, source = _run_with_reports(outputs, body)
    for s in result.suspects:
        if s.verdict == "error":
            err(f"error: {s.error}")
    for path in outputs.write(lambda name: formats.render_check(name, result, source)):
        info(f"wrote {path}")
    raise typer.Exit(result.exit_code)


class EvalFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


@app.command()
@cli_errors
def evaluate(
    library: Path = typer.Option(..., "--library", help="Folder with library.json, or the json itself."),
    bundle: Path = typer.Option(..., "--bundle", envvar=ENV_BUNDLE, help="Signed fingerprint bundle."),
    pubkey: Optional[str] = typer.Option(None, "--pubkey", help="Owner's public key (or GFAUDIT_PUBKEY, or config)."),
    fmt: EvalFormat = typer.Option(EvalFormat.text, "--format", help="text, json or markdown."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Write the report here (atomically)."),
    json_file: Optional[Path] = typer.Option(None, "--json-file-output", metavar="FILE", help=JSON_FILE_HELP),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Draw robustness/uniqueness curves to this PNG (needs gfaudit[plot])."),
    device: Device = typer.Option(Device.auto, envvar=ENV_DEVICE, help="auto, cpu or cuda."),
    quiet: bool = typer.Option(False, "-q", "--quiet", callback=_set_quiet, help=QUIET_HELP),
):
    """Score every model of a suspect library like `check` and report ARUC, ROC-AUC, TPR@FPR, per family."""
    from . import evaluate as ev, formats
    from .outputs import Outputs

    outputs = Outputs.plan("evaluate", fmt.value, out, json=json_file)

    def progress(i, n, row):
        info(f"[{i}/{n}] {Path(row['path']).name}: score {row['score']}")

    def body():
        if plot is not None:
            ev.require_matplotlib()  # before minutes of scoring, not after
        b, _ = _load_verified(bundle, pubkey)
        doc = ev.evaluate(b, ev.load_library(library), device.value, progress=progress)
        if plot is not None:
            ev.plot(doc, plot)
            info(f"wrote {plot}")
        return doc

    doc = _run_with_reports(outputs, body)
    for path in outputs.write(lambda name: formats.render_evaluation(name, doc)):
        info(f"wrote {path}")
    raise typer.Exit(4 if doc["errors"] else 0)


@app.command()
@cli_errors
def doctor(fmt: InfoFormat = typer.Option(InfoFormat.text, "--format", help="text or json.")):
    """Report the onnxruntime build, the providers that really run, and conflicting installs."""
    from .doctor import diagnose

    report = diagnose()
    if fmt is InfoFormat.text:
        lines = [f"gfaudit {report['gfaudit'] or __version__}, onnxruntime {report['onnxruntime_module']}"]
        lines += [f"package {k}: {v or 'not installed'}" for k, v in report["packages"].items()]
        lines.append(f"providers built in: {', '.join(report['available_providers'])}")
        lines.append(f"providers that run: {', '.join(report['working_providers']) or 'none'}")
        lines.append(f"NVIDIA driver: {'found' if report['cuda_driver'] else 'not found'}")
        lines += [f"problem: {p}" for p in report["problems"]] or ["no problems found"]
        _emit("\n".join(lines) + "\n", None)
    else:
        _emit(json.dumps(report, indent=2) + "\n", None)
    raise typer.Exit(4 if report["problems"] else 0)


def main() -> None:
    app(prog_name="gfaudit")


# Registers train, export-onnx, library build and evaluate on ``app`` (they import torch only when run).
from . import cli_train  # noqa: E402,F401


if __name__ == "__main__":
    main()
