"""The command line. Only this layer prints and picks exit codes; the library raises typed errors.

Exit codes (SPEC): 0 not derived / expectation met, 1 derived (finding), 2 usage error,
3 bundle integrity or signature failure, 4 runtime error (bad ONNX, incompatible input, no CUDA).
"""

from __future__ import annotations

import json
import math
import os
import sys
from enum import Enum
from pathlib import Path

import typer

from gfaudit import __version__

# The shared CLI layer (app, error mapping, the option enums generated from the tables) lives in
# gfaudit.cli.common, which the trainer's commands (gfaudit_trainer.commands) import too.
# Names this module does not use are re-exported: gfaudit.cli.app.app, .info, ... stay importable.
from gfaudit.cli.common import (
    _STATE,
    QUIET_HELP,
    Device,
    Executor,
    Method,
    Normalization,
    Rule,
    _set_quiet,
    app,
    bundle_app,
    cli_errors,
    err,
    info,
)
from gfaudit.errors import GfauditError, UsageError
from gfaudit.files import interrupt, outputs

AUDIT_EXECUTOR_HELP = (
    "Where suspects run: local (worker processes here, --jobs at once) or ray (one Ray task per suspect, "
    "needs gfaudit[ray]; the same report)."
)
AUDIT_RAY_HELP = (
    "Ray cluster for --executor ray: auto (the running cluster), ray://HOST:10001, or none for a local Ray "
    "on this machine. On a cluster the suspect files must be readable on every node."
)
JOBS_HELP = (
    "Suspects scored at once, each in its own worker process with the cores divided among them "
    "(default: one per CPU); the report keeps the input order."
)
DEFAULT_TIMEOUT = 120.0  # seconds per suspect (gfaudit.audit.isolation.DEFAULT_TIMEOUT)
TIMEOUT_HELP = (
    "Seconds each suspect may take to load and run; past it the suspect's worker is killed and "
    "the suspect gets an error row (exit 4). Default 120."
)
VICTIM_TIMEOUT_HELP = (
    "Seconds the victim may take to load and run, in its own worker process like a suspect; "
    "past it the worker is killed (exit 4). Default 120."
)


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


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        from gfaudit.files.atomic import write_text_atomic

        write_text_atomic(out, text)
        info(f"wrote {out}")


def _floats(value: str | None, what: str) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what} must be comma-separated numbers, e.g. 0.5,0.5,0.5") from None


def _load_verified(bundle_path: Path, pubkey: str | None, writes: tuple = (), inputs: tuple = ()):
    """Resolve the public key, refuse bad ``writes`` (before any work), then verify and load the bundle."""
    from gfaudit.bundle import container as bundle_io
    from gfaudit.bundle.keys import resolve_public

    key, source = resolve_public(pubkey)
    outputs.guard(writes, [bundle_path, bundle_io.sig_path(bundle_path), _key_file(source), *inputs])
    return bundle_io.load(bundle_path, key), source


def _guard_reports(writes: tuple, bundle_path: Path | list[Path], pubkey: str | None, inputs) -> None:
    """Refuse bad report paths before anything else, even before the key is resolved: a run that
    fails later writes failure reports into these files, so they must be safe to write first."""
    from gfaudit.bundle import container as bundle_io
    from gfaudit.bundle.keys import key_files

    paths = bundle_path if isinstance(bundle_path, list) else [bundle_path]
    bundles = [q for p in paths for q in (p, bundle_io.sig_path(p))]
    outputs.guard(writes, [*bundles, *key_files(pubkey), *inputs])


def _key_file(source: str | None) -> str | None:
    """The public key's file (an input of the run), unless it came as PEM text in the environment."""
    return None if not source or source.startswith("$") else source


def _threshold(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise UsageError(f"--threshold {value!r}: must be a finite number between 0 and 1")
    return value


def _timeout(value: float) -> float:
    from gfaudit.audit.isolation import check_timeout

    return check_timeout(value) or value


def _jobs(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise UsageError(f"--jobs {value}: must be at least 1")
    return value


# ---------------------------------------------------------------- keys and bundles


@app.command()
@cli_errors
def keygen(
    out: Path = typer.Option(..., "--out", help="Folder for owner.key (private, mode 0600) and owner.pub."),
    force: bool = typer.Option(False, "--force", help="Replace existing key files."),
):
    """Make an Ed25519 owner key pair. Set GFAUDIT_KEY_PASSWORD to encrypt the private key."""
    from gfaudit.bundle.keys import generate

    key_file, pub_file = out / "owner.key", out / "owner.pub"
    if not force and (os.path.lexists(key_file) or os.path.lexists(pub_file)):
        raise UsageError(f"{key_file} or {pub_file} already exists; pass --force to replace them")
    outputs.guard(
        [
            outputs.folder(out, "key folder"),
            outputs.file(key_file, "private key", may_replace_key=force),
            outputs.file(pub_file, "public key"),
        ]
    )
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
    normalization: Normalization = typer.Option(
        Normalization.imagenet, help="Mean/std the victim expects on [0,1] pixels (the same default as train)."
    ),
    mean: str | None = typer.Option(
        None, help="Explicit per-channel mean, comma-separated (overrides --normalization)."
    ),
    std: str | None = typer.Option(None, help="Explicit per-channel std, comma-separated."),
    method: Method = typer.Option(
        ..., "--method", help="Method that made the pairs (it picks the scoring rule; custom: any other method)."
    ),
    threshold: float | None = typer.Option(
        None,
        help="Decision threshold on the score (derived if score >= threshold); default 0.5. Not calibrated: "
        "bundle create signs no null model.",
    ),
    rule: Rule | None = typer.Option(
        None, help="Scoring rule (default: the method's, gfaudit.bundle.scoring.METHOD_RULES: ard for ganfinger)."
    ),
    class_names: str | None = typer.Option(None, help="Comma-separated class names."),
    device: Device = typer.Option(Device.auto, help="Where the victim runs."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", help=VICTIM_TIMEOUT_HELP),
):
    """Pack fingerprint pairs made by any method into a signed bundle labelled by the victim.

    The victim runs isolated like a suspect, under --timeout (exit 4 if it cannot be run)."""
    from gfaudit.audit.create import create
    from gfaudit.bundle.container import sig_path
    from gfaudit.bundle.keys import load_private
    from gfaudit.bundle.normalization import resolve

    _threshold(threshold)
    _timeout(timeout)
    given = threshold is not None
    threshold = threshold if threshold is not None else 0.5
    outputs.guard(
        [outputs.file(out, "bundle"), outputs.file(sig_path(out), "signature file")], [x, x_prime, victim, key]
    )
    from gfaudit.audit import isolation

    isolation.prestart()  # the victim's worker server starts while the arrays are read
    m, s = resolve(normalization.value, _floats(mean, "--mean"), _floats(std, "--std"))
    from gfaudit.files.npy import read_npy

    arrays = [read_npy(p) for p in (x, x_prime)]
    names = [n.strip() for n in class_names.split(",")] if class_names else None
    created = create(
        out,
        x=arrays[0],
        x_prime=arrays[1],
        victim_onnx=victim,
        mean=m,
        std=s,
        key=load_private(key),
        method=method.value,
        rule=rule.value if rule else None,
        threshold=threshold,
        class_names=names,
        device=device.value,
        timeout=timeout,
        provenance={"threshold_source": "bundle create --threshold" if given else "bundle create default"},
    )
    if created.dropped:
        info(f"warning: dropped {created.dropped} pair(s) whose x' the victim labels like x")
    info(f"wrote {created.path} and {created.path}.sig with {created.kept} pair(s), method {method.value}")
    info(
        f"warning: threshold {threshold:g} ({'given' if given else 'the default'}) is not calibrated: no null model "
        "is signed, so check reports no p-value and nobody knows how often it flags an unrelated model; score "
        "independent models (gfaudit evaluate) and re-sign with gfaudit sign --threshold, or let gfaudit train calibrate"
    )


@app.command()
@cli_errors
def sign(
    bundle: Path = typer.Argument(..., help="Bundle to re-sign (NAME.safetensors)."),
    key: Path = typer.Option(..., "--key", help="Private key that signs the new envelope."),
    pubkey: str | None = typer.Option(None, "--pubkey", help="Key the current signature must verify with."),
    unverified: bool = typer.Option(
        False, "--unverified", help="Re-sign without verifying the current signature (you vouch for the contents)."
    ),
    threshold: float | None = typer.Option(None, help="Replace the signed threshold."),
):
    """Re-sign a bundle (key rotation, new threshold). The tensors are re-hashed from the file."""
    from gfaudit.bundle import container as bundle_io, signing
    from gfaudit.bundle.keys import load_private, resolve_public

    _threshold(threshold)
    # The bundle and its .sig are rewritten on purpose; the keys must never be.
    writes = [outputs.file(bundle, "bundle"), outputs.file(bundle_io.sig_path(bundle), "signature file")]
    if unverified:
        outputs.guard(writes, [key, pubkey])
        verifying_key = None
    else:
        verifying_key, source = resolve_public(pubkey)
        outputs.guard(writes, [key, _key_file(source)])
    signing.resign(bundle, load_private(key), verifying_key, threshold)
    info(f"re-signed {bundle} (envelope {bundle_io.sig_path(bundle)})")


@app.command()
@cli_errors
def inspect(
    bundle: Path = typer.Argument(..., help="Bundle (NAME.safetensors)."),
    pubkey: str | None = typer.Option(None, "--pubkey", help="Verify with this public key first."),
    unverified: bool = typer.Option(
        False, "--unverified", help="Show the manifest without verifying it (marked UNVERIFIED)."
    ),
    fmt: InfoFormat = typer.Option(InfoFormat.text, "--format", help="text or json."),
):
    """Show a bundle's manifest: method, threshold, input spec, provenance, perturbation."""
    if unverified:
        from gfaudit.bundle.signing import peek_predicate

        manifest, status = peek_predicate(bundle), "UNVERIFIED (signature not checked)"
        signer = "UNVERIFIED: the signature was not checked (--unverified)"
    else:
        from gfaudit.bundle.keys import keyid, resolve_public

        b, source = _load_verified(bundle, pubkey)
        manifest, status = b.manifest.raw, f"verified with {source}; sha256 {b.sha256}"
        signer = f"Ed25519 key {keyid(resolve_public(pubkey)[0])} (verified with {source})"
    summary = _summary(manifest, signer)
    if fmt is InfoFormat.text:
        lines = [f"# {bundle}: {status}"]
        lines += [f"{k + ':':<12} {v}" for k, v in summary.items()]
        lines += ["", "# the signed manifest, every field:"]
        lines += _flatten(manifest)
        _emit("\n".join(lines) + "\n", None)
    else:
        _emit(json.dumps({"status": status, "summary": summary, "manifest": manifest}, indent=2) + "\n", None)


def _summary(manifest: object, signer: str) -> dict[str, str]:
    """The lines a reader of ``inspect`` wants first: method, K, threshold, null model, victim, signer."""
    raw = manifest if isinstance(manifest, dict) else {}

    def get(*path: str) -> object:
        node: object = raw
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    shape = get("tensors", "x", "shape")
    null = get("scoring", "null_model")
    if isinstance(null, dict) and null.get("kind") != "binomial-upper-bound":
        null_text = f"{null.get('kind')}: " + ", ".join(f"{k} {v}" for k, v in null.items() if k != "kind")
    elif isinstance(null, dict):
        null_text = (
            f"{null.get('kind')}: an independent model follows a pair at most {null.get('hit_rate')} of the time; "
            f"threshold aimed at a false-accusation rate of {null.get('false_accusation_rate')}"
        )
    else:
        null_text = "none: the threshold is not calibrated (check reports no p-value)"
    victim = get("provenance", "victim_sha256")
    victim_file = get("provenance", "victim_file")
    return {
        "method": f"{get('method')} (scoring rule {get('scoring', 'rule')})",
        "K": str(shape[0]) if isinstance(shape, list) and shape else "?",
        "threshold": f"{get('scoring', 'threshold')} (derived if score >= threshold)",
        "null model": null_text,
        "victim": f"sha256 {victim}" + (f" ({victim_file})" if victim_file else "") if victim else "not recorded",
        "signer": signer,
    }


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
    pubkey: str | None = typer.Option(None, "--pubkey", help="Owner's public key (or GFAUDIT_PUBKEY, or config)."),
    victim: Path | None = typer.Option(
        None, "--victim", help="Victim ONNX: also check the fingerprints are authentic."
    ),
    device: Device = typer.Option(Device.auto, envvar=ENV_DEVICE, help="Where the victim runs."),
    fmt: InfoFormat = typer.Option(InfoFormat.text, "--format", help="text or json."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", help=VICTIM_TIMEOUT_HELP),
):
    """Check signature and integrity; with --victim, the arbiter's authenticity check (exit 3 if not).

    The victim runs isolated like a suspect, under --timeout (exit 4 if it cannot be run)."""
    from gfaudit.audit import arbiter as authenticity, isolation

    _timeout(timeout)
    if victim is not None:
        isolation.prestart()
    b, source = _load_verified(bundle, pubkey)
    doc = {"bundle": b.summary(), "pubkey": source, "signature": "ok", "integrity": "ok"}
    result = None
    if victim is not None:
        result = authenticity.verify(b, str(victim), device.value, timeout)
        doc["authenticity"] = result.to_json()
    if fmt is InfoFormat.text:
        text = f"signature ok ({source}); integrity ok: {b.k} pairs, method {b.manifest.method}, threshold {b.manifest.threshold}\n"
        if result is not None:
            text += (
                f"authenticity {'ok' if result.ok else 'FAILED'}: victim gives stored y on {result.y_agree}/{b.k}, "
                f"stored y' on {result.y_prime_agree}/{b.k}; perturbation statistics "
                f"{'match' if not result.perturbation_mismatch else 'differ: ' + ', '.join(result.perturbation_mismatch)}; "
                f"victim sha256 {'matches' if result.victim_sha256_matches else 'differs from'} provenance\n"
            )
        _emit(text, None)
    else:
        _emit(json.dumps(doc, indent=2) + "\n", None)
    if result is not None:
        authenticity.require(result)


# ---------------------------------------------------------------- auditing


JSON_FILE_HELP = "Also write the JSON report to FILE (atomically), whatever --format says."
SARIF_FILE_HELP = "Also write the SARIF 2.1.0 report to FILE (atomically), whatever --format says."


def _run_with_reports(reports, body):
    """Run ``body()``; if it raises, write the failure report into every requested file, then re-raise
    (cli_errors turns it into one stderr line and the exit code)."""
    try:
        return body()
    except outputs.OutputRefused:
        raise  # the report paths themselves are refused: write nothing there
    except GfauditError as exc:
        reports.write_failure(exc.exit_code, str(exc))
        raise
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP
        reports.write_failure(interrupt.exit_code(exc), interrupt.message(exc))
        raise
    except Exception as exc:
        reports.write_failure(
            4, f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
        raise


@app.command()
@cli_errors
def check(
    suspects: list[Path] = typer.Argument(
        ..., help="Suspect models (.onnx), or folders whose .onnx files are all checked (sorted)."
    ),
    bundle: list[Path] | None = typer.Option(
        None,
        "--bundle",
        help="Signed fingerprint bundle (NAME.safetensors + .sig); repeatable: every suspect is scored against "
        "each. Default: $GFAUDIT_BUNDLE (one path).",
    ),
    bundle_dir: list[Path] | None = typer.Option(
        None,
        "--bundle-dir",
        metavar="DIR",
        help="A folder of bundles (its *.safetensors, sorted; the owner's generator files are skipped); repeatable.",
    ),
    pubkey: str | None = typer.Option(
        None,
        "--pubkey",
        help="Owner's public key (or GFAUDIT_PUBKEY: a path or the PEM text; or config); never taken from the bundle.",
    ),
    operator: str | None = typer.Option(
        None,
        "--operator",
        help="Rotation: the suspect's operator. Serves --serve bundles (of --bundle/--bundle-dir) this operator "
        "was never served, recorded in --served-ledger before any suspect runs.",
    ),
    served_ledger: Path | None = typer.Option(
        None, "--served-ledger", metavar="FILE", help="Rotation: the owner's ledger of served bundles (JSON, atomic)."
    ),
    audit_id: str | None = typer.Option(
        None, "--audit-id", help="Rotation: this audit's id in the ledger and report (default OPERATOR-UTC time)."
    ),
    serve: int = typer.Option(1, "--serve", min=1, help="Rotation: unserved bundles to serve in this audit."),
    fmt: Format = typer.Option(
        Format.text, "--format", envvar=ENV_FORMAT, help="Report format for stdout or -o: text, json or sarif."
    ),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Write the --format report here (atomically) instead of stdout."
    ),
    json_file: Path | None = typer.Option(None, "--json-file-output", metavar="FILE", help=JSON_FILE_HELP),
    sarif_file: Path | None = typer.Option(None, "--sarif-file-output", metavar="FILE", help=SARIF_FILE_HELP),
    device: Device = typer.Option(
        Device.auto, envvar=ENV_DEVICE, help="auto (CUDA if it works), cpu, or cuda (exit 4 if CUDA does not work)."
    ),
    expect: Expect | None = typer.Option(
        None, help="Gate mode: exit 0 when every suspect gets this verdict, 1 otherwise."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", callback=_set_quiet, help=QUIET_HELP),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", help=TIMEOUT_HELP),
    jobs: int | None = typer.Option(None, "-j", "--jobs", help=JOBS_HELP),
    executor: Executor = typer.Option(Executor.local, "--executor", help=AUDIT_EXECUTOR_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=AUDIT_RAY_HELP),
):
    """Verify the bundle(s), run each suspect label-only, and report ARD, P_ori, P_conf and the verdict.

    Several bundles (--bundle repeated, --bundle-dir): all are verified before any suspect runs,
    each suspect is labelled once per input shape and normalisation, and every bundle gets its own
    row; derived by any bundle is exit 1. Rotation (--operator, --served-ledger): serve bundles this
    operator has never seen, one fresh bundle per audit, recorded in the ledger and the report.

    Exit 0: not derived (or --expect met); 1: derived (or --expect not met); 2: usage;
    3: bundle integrity/signature; 4: runtime (bad ONNX, incompatible model, CUDA missing).
    Several suspects: the most severe code. Each suspect runs in its own worker process under
    --timeout; one that cannot be scored gets an error row and the others are still scored. A run
    that stops still writes every requested report file, as a failure report (JSON "error", SARIF
    executionSuccessful false).
    """
    from gfaudit import formats
    from gfaudit.audit import isolation, rotation
    from gfaudit.audit.check import check_bundles
    from gfaudit.audit.suspects import expand
    from gfaudit.formats.destinations import Outputs

    _timeout(timeout)
    _jobs(jobs)
    reports = Outputs.plan("check", fmt.value, out, json=json_file, sarif=sarif_file)
    writes = tuple(outputs.file(p, "report") for p in reports.files())
    if (operator is None) != (served_ledger is None):
        raise UsageError("rotation needs both --operator NAME and --served-ledger FILE")
    if operator is None and (audit_id is not None or serve != 1):
        raise UsageError("--audit-id and --serve belong to rotation: add --operator and --served-ledger")
    files = list(bundle or [])
    if not files and not bundle_dir and os.environ.get(ENV_BUNDLE):
        files = [Path(os.environ[ENV_BUNDLE])]
    if served_ledger is not None:
        writes += (outputs.file(served_ledger, "served ledger"),)
    bundle_files = [*files, *(bundle_dir or [])]
    _guard_reports(writes, bundle_files, pubkey, suspects)
    isolation.prestart()  # the workers' server starts (importing onnxruntime) while the bundles are verified

    def progress(i, n, rows):
        verdicts = ", ".join(dict.fromkeys(r.verdict for r in rows))
        info(f"[{i}/{n}] {rows[0].path}: {verdicts}")

    def body():
        paths = expand(suspects)
        found = rotation.bundle_paths(files, list(bundle_dir or []))
        verified = [_load_verified(p, pubkey, writes, tuple(paths)) for p in found]  # all, before any suspect
        bundles, source = [b for b, _ in verified], verified[0][1]
        audit = None
        if operator is not None and served_ledger is not None:
            ledger = rotation.ServedLedger.read(served_ledger)
            bundles, served = rotation.pick(bundles, ledger, operator, audit_id, serve)
            audit = served.to_json()
            info(f"audit {served.audit_id}: serving {', '.join(b.path.name for b in bundles)} to {operator}")
        return check_bundles(
            bundles,
            paths,
            device.value,
            expect.value if expect else None,
            progress=progress if len(paths) > 1 else None,
            timeout=timeout,
            jobs=jobs,
            audit=audit,
            executor=executor.value,
            ray_address=ray_address,
        ), source

    result, source = _run_with_reports(reports, body)
    for s in result.suspects:
        if s.verdict == "error":
            err(f"error: {s.error}")
    for path in reports.write(lambda name: formats.render_check(name, result, source)):
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
    pubkey: str | None = typer.Option(None, "--pubkey", help="Owner's public key (or GFAUDIT_PUBKEY, or config)."),
    fmt: EvalFormat = typer.Option(EvalFormat.text, "--format", help="text, json or markdown."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Write the report here (atomically)."),
    json_file: Path | None = typer.Option(None, "--json-file-output", metavar="FILE", help=JSON_FILE_HELP),
    plot: Path | None = typer.Option(
        None, "--plot", help="Draw robustness/uniqueness curves to this PNG (needs gfaudit[plot])."
    ),
    device: Device = typer.Option(Device.auto, envvar=ENV_DEVICE, help="auto, cpu or cuda."),
    quiet: bool = typer.Option(False, "-q", "--quiet", callback=_set_quiet, help=QUIET_HELP),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", help=TIMEOUT_HELP),
    jobs: int | None = typer.Option(None, "-j", "--jobs", help=JOBS_HELP),
    executor: Executor = typer.Option(Executor.local, "--executor", help=AUDIT_EXECUTOR_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=AUDIT_RAY_HELP),
):
    """Score every model of a suspect library like `check` and report ARUC, ROC-AUC, TPR@FPR, per family."""
    from gfaudit import formats
    from gfaudit.audit import evaluate as ev, isolation
    from gfaudit.formats.destinations import Outputs

    _timeout(timeout)
    _jobs(jobs)
    reports = Outputs.plan("evaluate", fmt.value, out, json=json_file)
    writes = (*(outputs.file(p, "report") for p in reports.files()), outputs.file(plot, "plot"))
    _guard_reports(writes, bundle, pubkey, [library])
    isolation.prestart()

    def progress(i, n, row):
        info(f"[{i}/{n}] {Path(row['path']).name}: score {row['score']}")

    def body():
        if plot is not None:
            ev.require_matplotlib()  # before minutes of scoring, not after
        library_json = ev.library_json_path(library)
        models = ev.load_library(library)
        b, _ = _load_verified(bundle, pubkey, writes, (library_json, *(m.path for m in models)))
        doc = ev.evaluate(
            b,
            models,
            device.value,
            progress=progress,
            timeout=timeout,
            jobs=jobs,
            executor=executor.value,
            ray_address=ray_address,
        )
        if plot is not None:
            ev.plot(doc, plot)
            info(f"wrote {plot}")
        return doc

    doc = _run_with_reports(reports, body)
    for path in reports.write(lambda name: formats.render_evaluation(name, doc)):
        info(f"wrote {path}")
    raise typer.Exit(4 if doc["errors"] else 0)


@app.command()
@cli_errors
def doctor(fmt: InfoFormat = typer.Option(InfoFormat.text, "--format", help="text or json.")):
    """Report the onnxruntime build, the providers that really run, and conflicting installs."""
    from gfaudit.audit.doctor import diagnose

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
    interrupt.install()
    app(prog_name="gfaudit")


PLUGIN_GROUP = "gfaudit.commands"


def load_plugins() -> None:
    """Register the commands other installed packages add to ``gfaudit``: the trainer's train, refresh,
    export-onnx and library build (``gfaudit_trainer.commands``, declared in pyproject.toml). Found by
    entry point, so the auditor never imports the trainer by name; each module registers its commands
    on the apps of :mod:`gfaudit.cli.common` and imports torch only when one of them runs."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        ep.load()


def _names_an_auditor_command(argv: list[str]) -> bool:
    """Whether the command line runs one of the auditor's own commands (then the trainer's need not be
    found: finding them costs ``gfaudit check`` ~25 ms of importlib.metadata for nothing)."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    own = {c.name or (c.callback.__name__.replace("_", "-") if c.callback else "") for c in app.registered_commands}
    return bool(words) and words[0] in own | {"bundle"}


if not _names_an_auditor_command(sys.argv):
    load_plugins()

if __name__ == "__main__":
    main()
