"""Score suspect models against verified bundles and decide, per suspect and bundle, derived or not.

Each suspect runs in its own worker process under a time limit (``isolation.py``): a suspect that
cannot be scored becomes its own ``error`` row (exit 4) and never costs the others a verdict.
Against several bundles (``check_bundles``), a suspect is labelled once per input specification
(shape, normalisation, classes): the pairs of all bundles that share it go through one run, and
each bundle gets its own row, verdict and exit code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from gfaudit.audit.isolation import DEFAULT_TIMEOUT, Job, Labels, check_timeout, require_available, run
from gfaudit.audit.onnx_model import DEVICES, OnnxClassifier
from gfaudit.bundle import scoring
from gfaudit.bundle.container import Bundle
from gfaudit.errors import SuspectError, UsageError

EXPECTATIONS = ("derived", "not-derived")


@dataclass
class SuspectResult:
    path: str
    verdict: str  # "derived", "not-derived" or "error"
    exit_code: int
    threshold: float
    score: float | None = None
    ard: float | None = None
    p_ori: float | None = None
    p_conf: float | None = None
    match_rate: float | None = None
    p_value: float | None = None  # P[an independent model scores this high] under the signed null model
    error: str | None = None
    # the smallest p-value the calibration models support without the null model's extrapolation
    p_value_supported: float | None = None
    bundle: str | None = None  # path of the bundle that produced this row
    bundle_sha256: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class CheckResult:
    bundle: Bundle  # the first of ``bundles``
    provider: str | None
    expect: str | None
    suspects: list[SuspectResult] = field(default_factory=list)  # one row per suspect and bundle
    bundles: list[Bundle] = field(default_factory=list)  # every bundle scored, in order
    audit: dict | None = None  # rotation: the audit id, operator and bundles served (gfaudit.audit.rotation)

    def __post_init__(self) -> None:
        if not self.bundles:
            self.bundles = [self.bundle]

    @property
    def exit_code(self) -> int:
        """The most severe per-suspect code (4 error > 1 finding > 0)."""
        return max((s.exit_code for s in self.suspects), default=0)


def decide(score: float, threshold: float, expect: str | None) -> tuple[str, int]:
    """Verdict and exit code: 1 means a finding (derived), or with --expect, the expectation was not met."""
    verdict = "derived" if score >= threshold else "not-derived"
    if expect is None:
        return verdict, int(verdict == "derived")
    return verdict, int(verdict != expect)


def score_model(model: OnnxClassifier, bundle: Bundle) -> scoring.Score:
    spec = bundle.manifest.input
    pred_x = model.labels(bundle.x, spec.mean, spec.std)
    pred_xp = model.labels(bundle.x_prime, spec.mean, spec.std)
    return scoring.score(bundle.manifest.rule, bundle.y, bundle.y_prime, pred_x, pred_xp)


def open_model(path: str, bundle: Bundle, device: str) -> OnnxClassifier:
    spec = bundle.manifest.input
    return OnnxClassifier(
        path, device=device, channels=spec.channels, height=spec.height, width=spec.width, num_classes=spec.num_classes
    )


def job_for(path: str, bundle: Bundle, device: str, threads: int = 0) -> Job:
    spec = bundle.manifest.input
    return Job(
        path,
        bundle.x,
        bundle.x_prime,
        spec.mean,
        spec.std,
        spec.channels,
        spec.height,
        spec.width,
        spec.num_classes,
        device,
        threads,
    )


def suspect_labels(path: str, bundle: Bundle, device: str, timeout: float | None, threads: int = 0) -> Labels:
    """The suspect's labels on x and x'; in a worker process under ``timeout`` seconds, or in this
    process without a limit when ``timeout`` is None (trusted models only). ``threads``: the
    onnxruntime intra-op threads of its session (0: every core)."""
    job = job_for(path, bundle, device, threads)
    return run(job, timeout)


def _row(path: str, bundle: Bundle, pred_x, pred_xp, expect: str | None) -> SuspectResult:
    s = scoring.score(bundle.manifest.rule, bundle.y, bundle.y_prime, pred_x, pred_xp)
    verdict, code = decide(s.score, bundle.manifest.threshold_float, expect)
    ard = s.p_conf - s.p_ori
    return SuspectResult(
        path,
        verdict,
        code,
        bundle.manifest.threshold_float,
        round(s.score, 6),
        round(ard, 6),
        round(s.p_ori, 6),
        round(s.p_conf, 6),
        round(s.match_rate, 6),
        suspect_p_value(bundle, s.score),
        p_value_supported=_supported(bundle),
        bundle=str(bundle.path),
        bundle_sha256=bundle.sha256,
    )


def _error_row(path: str, bundle: Bundle, exc: SuspectError) -> SuspectResult:
    return SuspectResult(
        path,
        "error",
        exc.exit_code,
        bundle.manifest.threshold_float,
        error=str(exc),
        bundle=str(bundle.path),
        bundle_sha256=bundle.sha256,
    )


def check_one(
    path: str,
    bundle: Bundle,
    device: str,
    expect: str | None,
    timeout: float | None = DEFAULT_TIMEOUT,
    threads: int = 0,
) -> tuple[SuspectResult, str | None]:
    """One suspect's row; any failure of the suspect itself is an ``error`` row, not an exception.
    A missing device (DeviceError) still aborts: it concerns every suspect alike."""
    rows, provider = check_suspect(path, [bundle], device, expect, timeout, threads)
    return rows[0], provider


def input_groups(bundles: list[Bundle]) -> list[list[int]]:
    """Indices of the bundles that share one input specification (the suspect sees the same input
    tensor for them), in order of first appearance."""
    groups: dict[tuple, list[int]] = {}
    for i, b in enumerate(bundles):
        spec = b.manifest.input
        key = (spec.channels, spec.height, spec.width, tuple(spec.mean), tuple(spec.std), spec.num_classes)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def check_suspect(
    path: str,
    bundles: list[Bundle],
    device: str,
    expect: str | None,
    timeout: float | None = DEFAULT_TIMEOUT,
    threads: int = 0,
) -> tuple[list[SuspectResult], str | None]:
    """One suspect against every bundle: one row per bundle, in order. The suspect runs once per
    input group (``input_groups``) on the pairs of all its bundles; a failure is an error row for
    each bundle of that group."""
    rows: list[SuspectResult | None] = [None] * len(bundles)
    provider = None
    for group in input_groups(bundles):
        members = [bundles[i] for i in group]
        first = members[0]
        job = job_for(path, first, device, threads)
        if len(members) > 1:
            job = replace(
                job,
                x=np.concatenate([b.x for b in members]),
                x_prime=np.concatenate([b.x_prime for b in members]),
            )
        try:
            labels = run(job, timeout)
        except SuspectError as exc:
            for i in group:
                rows[i] = _error_row(path, bundles[i], exc)
            continue
        provider = provider or labels.provider
        start = 0
        for i in group:
            b = bundles[i]
            end = start + b.k
            rows[i] = _row(path, b, labels.pred_x[start:end], labels.pred_x_prime[start:end], expect)
            start = end
    return [r for r in rows if r is not None], provider


def suspect_p_value(bundle: Bundle, score: float) -> float | None:
    """How likely an independent model scores >= ``score`` under the bundle's signed calibration."""
    null = bundle.manifest.null_model
    if null is None:
        return None
    return float(f"{null.p_value(score, bundle.k):.3g}")


def _supported(bundle: Bundle) -> float | None:
    null = bundle.manifest.null_model
    if null is None or not null.supported_p_value:
        return None
    return round(null.supported_p_value, 6)


def validate(device: str, expect: str | None, timeout: float | None, jobs: int | None) -> float | None:
    """The options as the CLI checks them, for library callers too (UsageError, exit 2): a device of
    DEVICES, an expectation of EXPECTATIONS or None, a positive finite timeout or None, jobs >= 1
    or None. Returns the timeout as a float (or None)."""
    if device not in DEVICES:
        raise UsageError(f"device {device!r}: choose one of {', '.join(DEVICES)}")
    if expect is not None and expect not in EXPECTATIONS:
        raise UsageError(f"expect {expect!r}: choose one of {', '.join(EXPECTATIONS)}, or None")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise UsageError(f"jobs {jobs!r}: must be a whole number of at least 1, or None (one per CPU)")
    timeout = check_timeout(timeout, "timeout")
    if timeout is not None:
        require_available()
    return timeout


def check(
    bundle: Bundle,
    paths: list[str],
    device: str = "auto",
    expect: str | None = None,
    progress=None,
    timeout: float | None = DEFAULT_TIMEOUT,
    jobs: int | None = 1,
    executor: str = "local",
    ray_address: str | None = None,
) -> CheckResult:
    """Score every suspect; a bad suspect is an error entry, a missing device aborts (DeviceError).
    ``timeout``: seconds per suspect (None: in-process, no limit). ``jobs``: suspects scored at
    once, each in its own worker with the cores divided among them (None: one per CPU); the rows
    keep the order of ``paths``. ``progress(i, n, entry)`` is called as each suspect finishes."""
    return check_bundles(
        [bundle],
        paths,
        device,
        expect,
        progress and (lambda i, n, rows: progress(i, n, rows[0])),
        timeout,
        jobs,
        executor=executor,
        ray_address=ray_address,
    )


def check_bundles(
    bundles: list[Bundle],
    paths: list[str],
    device: str = "auto",
    expect: str | None = None,
    progress=None,
    timeout: float | None = DEFAULT_TIMEOUT,
    jobs: int | None = 1,
    audit: dict | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> CheckResult:
    """``check`` against several verified bundles: per suspect one row per bundle (suspects in the
    order of ``paths``, bundles in the order given), each suspect labelled once per input group.
    ``progress(i, n, rows)`` gets a finished suspect's rows. The exit code is the most severe row's:
    a suspect derived by any bundle makes it 1. ``executor`` ``"ray"``: one Ray task per suspect
    (``parallel.map_on_ray``; ``jobs`` is then Ray's to decide), the same rows."""
    from gfaudit.audit.onnx_model import require_runtime
    from gfaudit.audit.parallel import intra_op_threads, resolve_jobs, runner

    timeout = validate(device, expect, timeout, jobs)
    if not bundles:
        raise ValueError("check_bundles needs at least one bundle")
    require_runtime()  # no runtime at all is the run's failure, not one error row per suspect
    jobs = resolve_jobs(jobs)
    threads = 1 if executor == "ray" else intra_op_threads(jobs, len(paths)) if jobs > 1 else 0
    rows = runner(executor, ray_address)(
        lambda path: check_suspect(str(path), bundles, device, expect, timeout, threads),
        list(paths),
        jobs,
        progress and (lambda i, n, row: progress(i, n, row[0])),
    )
    result = CheckResult(bundles[0], None, expect, bundles=list(bundles), audit=audit)
    for entries, provider in rows:
        result.suspects.extend(entries)
        result.provider = result.provider or provider
    return result
