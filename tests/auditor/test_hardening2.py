"""Issue 18 regressions: hostile inputs, round 2, through the real CLI and real onnxruntime workers.

Folders never hide an unreadable ``*.onnx`` entry, reports never replace the config file, an empty
GFAUDIT_KEY_PASSWORD never writes an unencrypted key, victims and references run isolated under
``--timeout``, odd numbers and headers are usage errors, SIGTERM/SIGHUP unwind like Ctrl-C, and the
Python API works as people call it (one path, typos, unguarded scripts, stdin, pool workers).
"""

from __future__ import annotations

import glob
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from gfaudit import api
from gfaudit.bundle import keys
from gfaudit.errors import UsageError

import hostile_models as hm
import onnx_factory as f

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "fingerprints" / "resnet20-cifar10"
GFAUDIT = [sys.executable, "-c", "import sys; from gfaudit.cli.entry import main; sys.argv[0] = 'gfaudit'; main()"]


def one_line(stderr: str) -> bool:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return len(lines) == 1 and "Traceback" not in stderr


@pytest.fixture()
def work(tmp_path, copy_bundle, victim_onnx, keypair):
    d = tmp_path
    bundle = copy_bundle()
    suspect = d / "suspect.onnx"
    shutil.copy(victim_onnx, suspect)
    pub = d / "owner.pub"
    shutil.copy(keypair[1], pub)
    key = d / "owner.key"
    shutil.copy(keypair[0], key)
    return {"dir": d, "bundle": bundle, "suspect": suspect, "pub": pub, "key": key}


def check(cli, w, *extra, suspects=None, env=None):
    return cli("check", *(suspects or [w["suspect"]]), "--bundle", w["bundle"], "--pubkey", w["pub"], *extra, env=env)


# ------------------------------------------------------------------ folders: nothing disappears


def _hostile_entry(folder: Path, kind: str) -> Path:
    entry = folder / "pirate.onnx"
    if kind == "dangling":
        entry.symlink_to(folder / "gone.onnx")
    elif kind == "loop":
        entry.symlink_to(entry)
    elif kind == "fifo":
        os.mkfifo(entry)
    elif kind == "dev-zero":
        entry.symlink_to("/dev/zero")
    return entry


@pytest.mark.parametrize("kind", ["dangling", "loop", "fifo", "dev-zero"])
def test_unreadable_onnx_entry_in_a_folder_is_an_error_row_not_a_bypass(cli, work, kind):
    models = work["dir"] / "models"
    models.mkdir()
    shutil.copy(f.build(work["dir"] / "other.onnx", *f.weights(seed=3)), models / "a-unrelated.onnx")
    entry = _hostile_entry(models, kind)
    (models / "sub.onnx").mkdir()  # a folder named *.onnx is not a suspect
    r = check(cli, work, "--format", "json", "--expect", "not-derived", suspects=[models])
    rows = json.loads(r.stdout)["suspects"]
    assert [Path(s["path"]).name for s in rows] == ["a-unrelated.onnx", "pirate.onnx"]
    assert rows[0]["verdict"] == "not-derived"
    assert rows[1]["verdict"] == "error" and str(entry) in rows[1]["error"]
    assert r.exit_code == 4  # the gate fails: the pirate was not read
    named = check(cli, work, "--format", "json", "--expect", "not-derived", suspects=[entry])
    assert named.exit_code == 4  # the same as naming it directly


def test_api_folder_rule_matches_the_cli(work, keypair):
    models = work["dir"] / "models"
    models.mkdir()
    shutil.copy(work["suspect"], models / "a.onnx")
    _hostile_entry(models, "dangling")
    bundle = api.load_bundle(work["bundle"], pubkey=work["pub"])
    result = api.check_models(bundle, models, device="cpu")
    assert [s.verdict for s in result.suspects] == ["derived", "error"] and result.exit_code == 4


# ------------------------------------------------------------------ the config file is an input


@pytest.mark.parametrize("flag", ["-o", "--json-file-output", "--sarif-file-output"])
def test_check_reports_never_replace_the_config_file(cli, work, flag):
    cfg_dir = work["dir"] / "xdg" / "gfaudit"
    cfg_dir.mkdir(parents=True)
    cfg = cfg_dir / "config.toml"
    shutil.copy(work["pub"], cfg_dir / "owner.pub")
    cfg.write_text('pubkey = "owner.pub"\n')
    before = cfg.read_bytes()
    env = {"XDG_CONFIG_HOME": str(work["dir"] / "xdg"), "GFAUDIT_PUBKEY": ""}
    r = cli("check", work["suspect"], "--bundle", work["bundle"], flag, cfg, env=env)
    assert r.exit_code == 2 and "config file" in r.stderr and one_line(r.stderr)
    assert cfg.read_bytes() == before
    # the key the config names is protected the same way, before the key is even resolved
    r = cli("check", work["suspect"], "--bundle", work["bundle"], flag, cfg_dir / "owner.pub", env=env)
    assert r.exit_code == 2 and (cfg_dir / "owner.pub").read_bytes() == work["pub"].read_bytes()
    # and without the config, a run still works
    ok = cli("check", work["suspect"], "--bundle", work["bundle"], "--format", "json", env=env)
    assert ok.exit_code == 1


def test_evaluate_json_file_never_replaces_the_config_file(cli, work, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(work["suspect"], lib / "copy.onnx")
    (lib / "library.json").write_text(json.dumps({"models": [{"path": "copy.onnx", "label": "pirated"}]}))
    cfg = tmp_path / "xdg" / "gfaudit" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'pubkey = "{work["pub"]}"\n')
    before = cfg.read_bytes()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "GFAUDIT_PUBKEY": ""}
    r = cli("evaluate", "--library", lib, "--bundle", work["bundle"], "--json-file-output", cfg, env=env)
    assert r.exit_code == 2 and "config file" in r.stderr and cfg.read_bytes() == before


def test_deeply_nested_config_is_a_usage_error(cli, work, tmp_path):
    cfg = tmp_path / "xdg" / "gfaudit" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("pubkey = " + "[" * 50000 + "]" * 50000 + "\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "GFAUDIT_PUBKEY": ""}
    r = cli("check", work["suspect"], "--bundle", work["bundle"], env=env)
    assert r.exit_code == 2 and "config.toml" in r.stderr and "TOML" in r.stderr and one_line(r.stderr)


# ------------------------------------------------------------------ keys


def test_empty_key_password_never_writes_an_unencrypted_key(cli, tmp_path):
    r = cli("keygen", "--out", tmp_path / "k", env={"GFAUDIT_KEY_PASSWORD": ""})
    assert r.exit_code == 2 and "GFAUDIT_KEY_PASSWORD" in r.stderr and one_line(r.stderr)
    assert not (tmp_path / "k" / "owner.key").exists() and not (tmp_path / "k" / "owner.pub").exists()
    with pytest.raises(UsageError):
        os.environ["GFAUDIT_KEY_PASSWORD"] = ""
        try:
            keys.generate(tmp_path / "k2")
        finally:
            del os.environ["GFAUDIT_KEY_PASSWORD"]
    # a real passphrase still encrypts, and an empty one cannot open that key
    ok = cli("keygen", "--out", tmp_path / "k3", env={"GFAUDIT_KEY_PASSWORD": "s3cret"})
    assert ok.exit_code == 0 and b"ENCRYPTED" in (tmp_path / "k3" / "owner.key").read_bytes()
    r = cli("sign", tmp_path / "nothing.safetensors", "--key", tmp_path / "k3" / "owner.key", "--unverified")
    assert r.exit_code in (2, 3)


# ------------------------------------------------------------------ victims run isolated


def _npy(path: Path, arr: np.ndarray) -> Path:
    np.save(path, arr)
    return path


def _create(cli, w, victim, *extra, x=None, xp=None):
    x = x if x is not None else _npy(w["dir"] / "x.npy", f.random_pairs(k=20, eps=40)[0])
    xp = xp if xp is not None else _npy(w["dir"] / "xp.npy", f.random_pairs(k=20, eps=40)[1])
    out = w["dir"] / "new.safetensors"
    r = cli(
        "bundle",
        "create",
        "--x",
        x,
        "--x-prime",
        xp,
        "--victim",
        victim,
        "--key",
        w["key"],
        "--method",
        "custom",
        "-o",
        out,
        *extra,
    )
    return r, out


def test_bundle_create_victim_with_an_endless_loop_hits_the_time_limit(cli, work):
    loop = hm.endless_loop(work["dir"] / "victim-loop.onnx", *f.weights(seed=0))
    start = time.monotonic()
    r, out = _create(cli, work, loop, "--timeout", "2")
    assert time.monotonic() - start < 60
    assert r.exit_code == 4 and "time limit" in r.stderr and one_line(r.stderr)
    assert not out.exists() and not Path(str(out) + ".sig").exists()


def test_verify_victim_with_an_endless_loop_hits_the_time_limit(cli, work):
    loop = hm.endless_loop(work["dir"] / "victim-loop.onnx", *f.weights(seed=0))
    r = cli("verify", work["bundle"], "--pubkey", work["pub"], "--victim", loop, "--timeout", "2")
    assert r.exit_code == 4 and "time limit" in r.stderr and one_line(r.stderr)
    good = cli("verify", work["bundle"], "--pubkey", work["pub"], "--victim", work["suspect"], "--timeout", "60")
    assert good.exit_code == 0, good.output


def test_victim_endless_loop_ctrl_c_exits_130(work):
    loop = hm.endless_loop(work["dir"] / "victim-loop.onnx", *f.weights(seed=0))
    p = subprocess.Popen(
        [*GFAUDIT, "verify", str(work["bundle"]), "--pubkey", str(work["pub"]), "--victim", str(loop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    p.send_signal(signal.SIGINT)
    _, errs = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in errs


def test_bundle_create_k0_nan_mean_and_lying_npy_header_are_usage_errors(cli, work):
    empty = _npy(work["dir"] / "empty.npy", np.zeros((0, 3, 32, 32), np.uint8))
    r, out = _create(cli, work, work["suspect"], x=empty, xp=empty)
    assert r.exit_code == 2 and "no image" in r.stderr and one_line(r.stderr) and not out.exists()
    for mean, std in (("nan,0.5,0.5", "1,1,1"), ("0.5,0.5,0.5", "0,1,1"), ("0.5,0.5,0.5", "inf,1,1")):
        r, out = _create(cli, work, work["suspect"], "--mean", mean, "--std", std)
        assert r.exit_code == 2 and one_line(r.stderr) and not out.exists(), (mean, std)
        assert "finite" in r.stderr or "positive" in r.stderr
    # a .npy header that claims 10^9 images in a file of a few bytes: refused before any allocation
    liar = work["dir"] / "liar.npy"
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000, 3, 32, 32), }"
    header += b" " * (118 - len(header)) + b"\n"
    liar.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 64)
    r, out = _create(cli, work, work["suspect"], x=liar)
    assert r.exit_code == 2 and "header claims" in r.stderr and one_line(r.stderr) and not out.exists()


# ------------------------------------------------------------------ --timeout values


def test_timeout_beyond_the_poll_limit_is_valid(cli, work):
    r = check(cli, work, "--format", "json", "--timeout", "3000000")
    assert r.exit_code == 1 and json.loads(r.stdout)["suspects"][0]["verdict"] == "derived", r.output
    r = check(cli, work, "--timeout", "1e300")
    assert r.exit_code == 1, r.output


# ------------------------------------------------------------------ SIGTERM and SIGHUP


@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_unwind_like_ctrl_c(work, tmp_path, signame, code):
    loop = hm.endless_loop(work["dir"] / "loop.onnx", *f.weights(seed=0))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    report = tmp_path / "report.json"
    before = set(os.listdir(tmp_path))
    p = subprocess.Popen(
        [
            *GFAUDIT,
            "check",
            str(work["suspect"]),
            str(loop),
            "--bundle",
            str(work["bundle"]),
            "--pubkey",
            str(work["pub"]),
            "--json-file-output",
            str(report),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TMPDIR=str(tmp)),
    )
    # The first suspect's row is printed once it is scored: the command is running and the
    # endless suspect's worker is next (the forkserver itself starts earlier, from the entry point).
    first = ""
    while "[1/2]" not in first:
        first = p.stderr.readline()
        assert first, "gfaudit ended before scoring the first suspect"
    time.sleep(0.5)
    p.send_signal(getattr(signal, signame))
    out, errs = p.communicate(timeout=60)
    assert p.returncode == code, errs
    assert "Traceback" not in errs and errs.strip().splitlines()[-1] == f"gfaudit: terminated ({signame})"
    assert out == ""
    doc = json.loads(report.read_text())
    assert doc["error"]["code"] == code and doc["error"]["kind"] == "interrupted"
    assert not glob.glob(str(tmp / "pymp-*"))  # multiprocessing's socket folder is gone
    # (onnxruntime itself keeps a telemetry ".ses" file in TMPDIR; nothing else may remain)
    assert [n for n in os.listdir(tmp) if n != ".ses"] == []
    assert set(os.listdir(tmp_path)) == before | {"report.json"}  # no temporary report file left


# ------------------------------------------------------------------ --reference folders


def test_reference_folder_with_a_link_loop_is_a_usage_error(tmp_path):
    pytest.importorskip("torch")
    from gfaudit_trainer.models import references

    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "loop.onnx").symlink_to(refs / "loop.onnx")
    with pytest.raises(UsageError, match="loop.onnx"):
        references.expand([refs])
    (refs / "loop.onnx").unlink()
    (refs / "gone.onnx").symlink_to(refs / "nowhere.onnx")
    with pytest.raises(UsageError, match="gone.onnx"):
        references.expand([refs])


def test_reference_runs_isolated_under_the_time_limit(tmp_path):
    torch = pytest.importorskip("torch")
    from gfaudit.errors import SuspectError
    from gfaudit_trainer.models import references

    good = f.build(tmp_path / "good.onnx", *f.weights(seed=1))
    ref = references.OnnxReference(good, f.MEAN, f.STD, 10, timeout=60)
    x = torch.rand(5, 3, 32, 32)
    logits = ref(x)
    assert logits.shape == (5, 10) and torch.isfinite(logits).all()
    loop = hm.endless_loop(tmp_path / "loop.onnx", *f.weights(seed=1))
    with pytest.raises(SuspectError, match="time limit"):
        references.OnnxReference(loop, f.MEAN, f.STD, 10, timeout=2)(x)


# ------------------------------------------------------------------ the Python API as people call it


@pytest.fixture(scope="module")
def shipped_bundle():
    return api.load_bundle(SHIPPED / "resnet20-cifar10.safetensors", pubkey=SHIPPED / "owner.pub")


def test_check_models_takes_one_path(shipped_bundle):
    one = SHIPPED / "suspects" / "pruned-30pct.onnx"
    for arg in (one, str(one)):
        result = api.check_models(shipped_bundle, arg, device="cpu")
        assert [s.path for s in result.suspects] == [str(one)] and result.suspects[0].verdict == "derived"


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"expect": "not_derived"}, "expect"),
        ({"device": "gpu"}, "device"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"jobs": 0}, "jobs"),
        ({"jobs": 1.5}, "jobs"),
    ],
)
def test_check_models_validates_arguments_like_the_cli(shipped_bundle, kwargs, needle):
    with pytest.raises(UsageError, match=needle) as info:
        api.check_models(shipped_bundle, SHIPPED / "suspects", **kwargs)
    assert info.value.exit_code == 2


def test_check_models_timeout_none_runs_in_process(shipped_bundle):
    result = api.check_models(shipped_bundle, SHIPPED / "suspects" / "unrelated-resnet20.onnx", timeout=None)
    assert result.suspects[0].verdict == "not-derived"


def _pool_check(path: str):
    b = api.load_bundle(SHIPPED / "resnet20-cifar10.safetensors", pubkey=SHIPPED / "owner.pub")
    try:
        api.check_models(b, path, device="cpu")
    except UsageError as exc:
        return "UsageError", str(exc)
    return "ok", ""


def test_check_models_in_a_pool_worker_says_why_in_a_typed_error():
    with multiprocessing.get_context("fork").Pool(1) as pool:
        kind, message = pool.apply(_pool_check, (str(SHIPPED / "suspects" / "pruned-30pct.onnx"),))
    assert kind == "UsageError" and "daemonic" in message and "timeout=None" in message


UNGUARDED = textwrap.dedent(
    """
    from pathlib import Path
    from gfaudit import api

    shipped = Path("fingerprints/resnet20-cifar10")
    bundle = api.load_bundle(shipped / "resnet20-cifar10.safetensors", pubkey=shipped / "owner.pub")
    print("MAIN RAN")
    result = api.check_models(bundle, shipped / "suspects", device="cpu", jobs=2)
    print(",".join(s.verdict for s in result.suspects))
    """
)


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_unguarded_script_runs_once_from_a_file_and_from_stdin(tmp_path, how):
    script = tmp_path / "audit.py"
    script.write_text(UNGUARDED)
    if how == "file":
        r = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=300)
    else:
        r = subprocess.run(
            [sys.executable, "-"], input=UNGUARDED, cwd=REPO, capture_output=True, text=True, timeout=300
        )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("MAIN RAN") == 1  # no worker re-ran the caller's main module
    assert r.stdout.strip().splitlines()[-1] == "derived,derived,not-derived"
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr
