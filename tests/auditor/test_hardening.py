"""Issue 10 regressions: every hostile case from the issue's "Why", run through the real CLI.

Outputs never destroy inputs, odd files never hang or exhaust memory, library entries stay inside
the library folder, one bad suspect never costs the others, stdout carries only the report,
strict JSON, and the exit codes of the SPEC table. Helpers in hostile_models.py build the
misbehaving suspects.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gfaudit.bundle import dsse, keys

import hostile_models as hm
import onnx_factory as f

REPO = Path(__file__).resolve().parents[2]
GFAUDIT = [sys.executable, "-c", "import sys; from gfaudit.cli.entry import main; sys.argv[0] = 'gfaudit'; main()"]


def one_line(stderr: str) -> bool:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return len(lines) == 1 and "Traceback" not in stderr


def snapshot(path: Path):
    st = path.stat()
    return path.read_bytes(), stat.S_IMODE(st.st_mode), st.st_ino


@pytest.fixture()
def work(tmp_path, copy_bundle, victim_onnx, keypair):
    """A private bundle, suspect and key pair in one folder."""
    d = tmp_path
    bundle = copy_bundle()
    suspect = d / "suspect.onnx"
    shutil.copy(victim_onnx, suspect)
    key = d / "owner.key"
    shutil.copy(keypair[0], key)
    pub = d / "owner.pub"
    shutil.copy(keypair[1], pub)
    return {"dir": d, "bundle": bundle, "sig": Path(str(bundle) + ".sig"), "suspect": suspect, "key": key, "pub": pub}


def check(cli, w, *extra, suspects=None):
    return cli("check", *(suspects or [w["suspect"]]), "--bundle", w["bundle"], "--pubkey", w["pub"], *extra)


# ------------------------------------------------------------------ 1. outputs never destroy inputs


@pytest.mark.parametrize("target", ["key", "bundle", "sig", "suspect", "pub"])
def test_check_o_onto_an_input_or_key_is_refused(cli, work, target):
    before = snapshot(work[target])
    r = check(cli, work, "-o", work[target])
    assert r.exit_code == 2, r.output
    assert one_line(r.stderr) and r.stdout == ""
    assert snapshot(work[target]) == before


def test_check_o_onto_a_hard_link_of_the_suspect_is_refused(cli, work):
    link = work["dir"] / "report.txt"
    os.link(work["suspect"], link)
    r = check(cli, work, "-o", link)
    assert r.exit_code == 2 and "input" in r.stderr
    assert link.read_bytes() == work["suspect"].read_bytes()


def test_check_o_onto_any_private_key_is_refused(cli, work, other_keypair):
    pem = work["dir"] / "notes.txt"  # a private key under an innocent name
    shutil.copy(other_keypair[0], pem)
    r = check(cli, work, "-o", pem)
    assert r.exit_code == 2 and "private key" in r.stderr
    assert b"PRIVATE KEY" in pem.read_bytes()


@pytest.mark.parametrize("kind", ["dir", "fifo", "symlink-devnull", "symlink-file"])
def test_check_o_onto_non_regular_files_is_refused_before_scoring(cli, work, kind):
    target = work["dir"] / "out"
    if kind == "dir":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink-devnull":
        target.symlink_to("/dev/null")
    else:
        (work["dir"] / "real.txt").write_text("keep")
        target.symlink_to(work["dir"] / "real.txt")
    # an endless suspect proves no scoring happens: scoring would take the whole --timeout
    loop = hm.endless_loop(work["dir"] / "loop.onnx", *f.weights(seed=0))
    start = time.monotonic()
    r = check(cli, work, "-o", target, "--timeout", "60", suspects=[loop])
    assert r.exit_code == 2, r.output
    assert time.monotonic() - start < 30 and one_line(r.stderr)
    if kind == "dir":
        assert target.is_dir() and list(target.iterdir()) == []
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(target).st_mode)
    if kind.startswith("symlink"):
        assert target.is_symlink()
    assert os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_check_o_onto_a_read_only_file_is_refused(cli, work):
    ro = work["dir"] / "report.json"
    ro.write_text("old")
    ro.chmod(0o444)
    r = check(cli, work, "-o", ro)
    assert r.exit_code == 2 and "read-only" in r.stderr
    assert ro.read_text() == "old" and stat.S_IMODE(ro.stat().st_mode) == 0o444


def test_existing_report_is_replaced_atomically(cli, work):
    out = work["dir"] / "report.json"
    out.write_text("old report")
    r = check(cli, work, "-o", out, "--format", "json")
    assert r.exit_code == 1, r.output
    assert json.loads(out.read_text())["suspects"][0]["verdict"] == "derived"
    assert not [p for p in work["dir"].iterdir() if p.name.startswith(".report.json.")]


def test_bundle_create_onto_the_signing_key_is_refused(cli, work, victim_onnx, pairs):
    x, xp = pairs
    np.save(work["dir"] / "x.npy", x)
    np.save(work["dir"] / "xp.npy", xp)
    before = snapshot(work["key"])
    r = cli(
        "bundle",
        "create",
        "--method",
        "ganfinger",
        "--x",
        work["dir"] / "x.npy",
        "--x-prime",
        work["dir"] / "xp.npy",
        "--victim",
        victim_onnx,
        "--key",
        work["key"],
        "-o",
        work["key"],
    )
    assert r.exit_code == 2 and one_line(r.stderr), r.output
    assert snapshot(work["key"]) == before
    r = cli(
        "bundle",
        "create",
        "--method",
        "ganfinger",
        "--x",
        work["dir"] / "x.npy",
        "--x-prime",
        work["dir"] / "xp.npy",
        "--victim",
        victim_onnx,
        "--key",
        work["key"],
        "-o",
        work["dir"] / "x.npy",
    )
    assert r.exit_code == 2 and "input" in r.stderr
    assert np.array_equal(np.load(work["dir"] / "x.npy"), x)


def test_evaluate_outputs_onto_inputs_are_refused(cli, work, library):
    lib_json = library / "library.json"
    before = lib_json.read_bytes()
    for flag in ("-o", "--plot"):
        r = cli("evaluate", "--library", library, "--bundle", work["bundle"], "--pubkey", work["pub"], flag, lib_json)
        assert r.exit_code == 2, r.output
        assert lib_json.read_bytes() == before
    r = cli(
        "evaluate",
        "--library",
        library,
        "--bundle",
        work["bundle"],
        "--pubkey",
        work["pub"],
        "-o",
        library / "copy.onnx",
    )
    assert r.exit_code == 2 and (library / "copy.onnx").read_bytes() == work["suspect"].read_bytes()


def test_keygen_out_onto_a_file_or_read_only_folder(cli, tmp_path):
    f_ = tmp_path / "afile"
    f_.write_text("x")
    r = cli("keygen", "--out", f_)
    assert r.exit_code == 2 and one_line(r.stderr) and f_.read_text() == "x"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = cli("keygen", "--out", ro)
        assert r.exit_code == 2 and "read-only" in r.stderr
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_export_onnx_onto_its_input_is_refused(cli, work):
    before = snapshot(work["suspect"])
    r = cli("export-onnx", work["suspect"], "-o", work["suspect"])
    assert r.exit_code == 2 and one_line(r.stderr)
    assert snapshot(work["suspect"]) == before


# ------------------------------------------------------------------ 2. bounded, regular-file-only reads


def test_sig_or_bundle_as_dev_zero_fails_fast(cli, work):
    sig_bytes = work["sig"].read_bytes()
    work["sig"].unlink()
    work["sig"].symlink_to("/dev/zero")
    r = check(cli, work)
    assert r.exit_code == 3 and "not a regular file" in r.stderr and one_line(r.stderr)
    zero = work["dir"] / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    Path(str(zero) + ".sig").write_bytes(sig_bytes)
    r = cli("check", work["suspect"], "--bundle", zero, "--pubkey", work["pub"])
    assert r.exit_code == 3 and "not a regular file" in r.stderr and one_line(r.stderr)
    r = cli("inspect", zero, "--unverified")  # the .sig is fine; only the manifest is shown
    assert r.exit_code == 0 and "UNVERIFIED" in r.stdout


def test_pubkey_dev_zero_is_a_usage_error(cli, work):
    r = cli("check", work["suspect"], "--bundle", work["bundle"], "--pubkey", "/dev/zero")
    assert r.exit_code == 2 and "not a regular file" in r.stderr


def test_fifo_sig_never_hangs(work, tmp_path):
    work["sig"].unlink()
    os.mkfifo(work["sig"])
    r = subprocess.run(
        [*GFAUDIT, "check", str(work["suspect"]), "--bundle", str(work["bundle"]), "--pubkey", str(work["pub"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 3 and "FIFO" in r.stderr and one_line(r.stderr)


def test_suspect_fifo_is_an_error_row(cli, work):
    fifo = work["dir"] / "fifo.onnx"
    os.mkfifo(fifo)
    r = check(cli, work, "--format", "json", suspects=[fifo, work["suspect"]])
    doc = json.loads(r.stdout)
    assert r.exit_code == 4
    assert [s["verdict"] for s in doc["suspects"]] == ["error", "derived"]


# ------------------------------------------------------------------ 3. library containment


@pytest.fixture()
def library(tmp_path, victim_onnx):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(victim_onnx, lib / "copy.onnx")
    f.build(lib / "other.onnx", *f.weights(seed=3))
    (lib / "library.json").write_text(
        json.dumps(
            {
                "models": [
                    {"path": "copy.onnx", "label": "pirated", "accuracy": 0.5},
                    {"path": "other.onnx", "label": "unrelated"},
                ]
            }
        )
    )
    return lib


def _library_with(lib: Path, entry: dict) -> None:
    doc = json.loads((lib / "library.json").read_text())
    doc["models"].append(entry)
    (lib / "library.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "entry",
    [
        "../../etc/passwd",
        "/etc/shadow",
        "../nope/missing.onnx",
        "/nope/missing.onnx",
        "sub/../../x.onnx",
        "escape.onnx",
    ],
)
def test_library_entries_must_stay_inside(cli, library, work, entry):
    if entry == "escape.onnx":
        (library / "escape.onnx").symlink_to(work["suspect"])  # a link that leads out of the folder
    _library_with(library, {"path": entry, "label": "unrelated"})
    r = cli("evaluate", "--library", library, "--bundle", work["bundle"], "--pubkey", work["pub"])
    assert r.exit_code == 2 and one_line(r.stderr), r.output
    assert "models[2]" in r.stderr and "outside the library folder" in r.stderr
    assert "[1/" not in r.stderr  # nothing scored


def test_library_errors_do_not_reveal_which_files_exist(cli, library, work):
    messages = []
    for entry in ("../../etc/passwd", "../../etc/no-such-file-here"):
        (library / "library.json").write_text(json.dumps({"models": [{"path": entry, "label": "pirated"}]}))
        r = cli("evaluate", "--library", library, "--bundle", work["bundle"], "--pubkey", work["pub"])
        messages.append(r.stderr.replace(entry, "ENTRY"))
    assert messages[0] == messages[1]


def test_library_non_numeric_accuracy_is_a_usage_error(cli, library, work):
    _library_with(library, {"path": "other.onnx", "label": "unrelated", "accuracy": "high"})
    r = cli("evaluate", "--library", library, "--bundle", work["bundle"], "--pubkey", work["pub"])
    assert r.exit_code == 2 and "accuracy" in r.stderr and one_line(r.stderr)


@pytest.mark.parametrize(
    "text", ['{"models": [], "models": []}', "[" * 100000 + "]" * 100000, '{"models": ' + "[" * 70 + "]" * 70 + "}"]
)
def test_library_json_strict(cli, library, work, text):
    (library / "library.json").write_text(text)
    r = cli("evaluate", "--library", library, "--bundle", work["bundle"], "--pubkey", work["pub"])
    assert r.exit_code == 2 and one_line(r.stderr), r.output


# ------------------------------------------------------------------ 4. per-suspect isolation


def test_bad_suspects_get_error_rows_and_good_ones_are_scored(cli, work):
    W, b = f.weights(seed=0)
    d = work["dir"]
    bad = [
        hm.string_outputs(d / "strings.onnx", W, b),
        hm.nan_outputs(d / "nan.onnx", W, b),
        hm.nan_outputs(d / "inf.onnx", W, b, float("inf")),
        f.build(d / "batch.onnx", W, b, batch=2**31),
        d / "garbage.onnx",
    ]
    bad[-1].write_bytes(b"not an onnx model at all")
    for fmt in ("json", "sarif", "text"):
        r = check(cli, work, "--format", fmt, suspects=[*bad, work["suspect"]])
        assert r.exit_code == 4, r.output
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr
        if fmt == "json":
            rows = json.loads(r.stdout)["suspects"]
            assert [s["verdict"] for s in rows] == ["error"] * 5 + ["derived"]
            assert "not numeric" in rows[0]["error"] and "NaN" in rows[1]["error"] and "NaN" in rows[2]["error"]
            assert "fixed batch" in rows[3]["error"]
        elif fmt == "sarif":
            results = json.loads(r.stdout)["runs"][0]["results"]
            assert [x["ruleId"] for x in results] == ["GFA002"] * 5 + ["GFA001"]
        else:
            assert r.stdout.count("ERROR") == 5 and "derived" in r.stdout


def test_endless_loop_hits_the_time_limit_and_the_others_are_scored(cli, work):
    loop = hm.endless_loop(work["dir"] / "loop.onnx", *f.weights(seed=0))
    start = time.monotonic()
    r = check(cli, work, "--format", "json", "--timeout", "2", suspects=[loop, work["suspect"]])
    assert time.monotonic() - start < 30
    rows = json.loads(r.stdout)["suspects"]
    assert r.exit_code == 4
    assert rows[0]["verdict"] == "error" and "time limit" in rows[0]["error"]
    assert rows[1]["verdict"] == "derived"


def test_evaluate_isolates_bad_models(cli, library, work):
    hm.nan_outputs(library / "nan.onnx", *f.weights(seed=0))
    _library_with(library, {"path": "nan.onnx", "label": "unrelated"})
    r = cli("evaluate", "--library", library, "--bundle", work["bundle"], "--pubkey", work["pub"], "--format", "json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 4 and doc["errors"] == 1
    assert [m["score"] is not None for m in doc["models"]] == [True, True, False]
    assert doc["models"][2]["verdict"] == "error" and "NaN" in doc["models"][2]["error"]


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_timeout_must_be_positive(cli, work, value):
    r = check(cli, work, "--timeout", value)
    assert r.exit_code == 2 and "--timeout" in r.stderr


# ------------------------------------------------------------------ 5. clean streams, Ctrl-C


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler for the stand-in CUDA library")
def test_stdout_stays_clean_when_a_cuda_library_prints(work, tmp_path):
    src = tmp_path / "standin.c"
    src.write_text(
        "#include <stdio.h>\n#include <unistd.h>\n__attribute__((constructor)) static void noise(void) {"
        ' printf("STANDIN stdio noise\\n"); fflush(stdout); write(1, "STANDIN fd1 noise\\n", 18); }\n'
    )
    libdir = tmp_path / "lib"
    libdir.mkdir()
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(libdir / "libcuda.so.1"), str(src)], check=True)
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir))
    base = [
        *GFAUDIT,
        "check",
        str(work["suspect"]),
        "--bundle",
        str(work["bundle"]),
        "--pubkey",
        str(work["pub"]),
        "--format",
        "json",
    ]
    import onnxruntime

    # doctor always probes the driver, so the stand-in loads whichever onnxruntime is installed.
    d = subprocess.run([*GFAUDIT, "doctor", "--format", "json"], capture_output=True, text=True, env=env, timeout=300)
    assert "STANDIN" in d.stderr and json.loads(d.stdout)["cuda_driver"] is True
    r = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300)
    # check loads the driver only when onnxruntime has a CUDA provider (onnxruntime-gpu).
    assert ("STANDIN" in r.stderr) == ("CUDAExecutionProvider" in onnxruntime.get_available_providers())
    assert json.loads(r.stdout)["suspects"][0]["verdict"] == "derived"
    assert r.returncode == 1 and "Traceback" not in r.stderr
    r = subprocess.run(base + ["--device", "cuda"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 4 and "STANDIN" not in r.stdout and "Traceback" not in r.stderr
    assert r.stdout == "" or json.loads(r.stdout)


@pytest.mark.parametrize("delay", [0.3, 0.8, 2.0])
def test_ctrl_c_at_any_moment_exits_130_quietly(work, delay):
    # Earlier than the interpreter's own start-up (tens of ms, more on a loaded machine) no Python
    # code of ours runs yet, so no handler can be in place: docs/design.md, "Hardening".
    loop = hm.endless_loop(work["dir"] / "loop.onnx", *f.weights(seed=0))
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
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    out, errs = p.communicate(timeout=60)
    assert p.returncode == 130, errs
    assert "Traceback" not in errs and errs.strip().splitlines()[-1] == "gfaudit: interrupted"
    assert out == ""


# ------------------------------------------------------------------ 6. strict parsing and exit codes


def _resign(w, payload: bytes, *, envelope_text=None):
    key = keys.load_private(w["key"])
    env = dsse.sign(payload, key)
    w["sig"].write_text(envelope_text(env) if envelope_text else json.dumps(env))


def _payload(w) -> dict:
    env = json.loads(w["sig"].read_text())
    return json.loads(base64.b64decode(env["payload"]))


def test_duplicate_key_in_signed_payload_is_refused(cli, work):
    stmt = _payload(work)
    body = json.dumps(stmt, sort_keys=True)
    # a second, different threshold: json would keep the last one; the signer may have meant the first
    body = body.replace('"threshold": "0.5"', '"threshold": "0.5", "threshold": "0.99"')
    assert body.count('"threshold"') == 2
    _resign(work, body.encode())
    r = check(cli, work)
    assert r.exit_code == 3 and "duplicate key" in r.stderr and r.stdout == ""


def test_deeply_nested_payload_and_envelope_are_integrity_errors(cli, work):
    stmt = _payload(work)
    stmt["predicate"]["provenance"]["deep"] = json.loads("[" * 80 + "]" * 80)
    _resign(work, json.dumps(stmt).encode())
    r = check(cli, work)
    assert r.exit_code == 3 and "nested too deeply" in r.stderr
    work["sig"].write_text("[" * 200000 + "]" * 200000)
    r = check(cli, work)
    assert r.exit_code == 3 and "nested too deeply" in r.stderr and one_line(r.stderr)


def test_duplicate_key_in_envelope_is_refused(cli, work):
    env = json.loads(work["sig"].read_text())
    text = json.dumps(env)[:-1] + ', "payloadType": "application/vnd.in-toto+json"}'
    work["sig"].write_text(text)
    r = check(cli, work)
    assert r.exit_code == 3 and "duplicate key" in r.stderr


def test_inspect_unverified_with_sig_a_folder(cli, work):
    work["sig"].unlink()
    work["sig"].mkdir()
    r = cli("inspect", work["bundle"], "--unverified")
    assert r.exit_code == 3 and "folder" in r.stderr and one_line(r.stderr)


def test_sign_unverified_on_junk_tensors(cli, work):
    work["bundle"].write_bytes(b'\x08\x00\x00\x00\x00\x00\x00\x00{"a":1}junk')
    before = work["sig"].read_bytes()
    r = cli("sign", work["bundle"], "--key", work["key"], "--unverified")
    assert r.exit_code == 3 and one_line(r.stderr), r.output
    assert work["sig"].read_bytes() == before


@pytest.mark.parametrize("value", ["inf", "-inf", "1e30", "nan", "1.5", "-0.1"])
def test_sign_threshold_must_be_finite_in_range(cli, work, value):
    before = work["sig"].read_bytes()
    r = cli("sign", work["bundle"], "--key", work["key"], "--pubkey", work["pub"], "--threshold", value)
    assert r.exit_code == 2 and "--threshold" in r.stderr and one_line(r.stderr)
    assert work["sig"].read_bytes() == before


def test_password_set_for_an_unencrypted_key_just_loads_it(cli, work):
    r = cli(
        "sign",
        work["bundle"],
        "--key",
        work["key"],
        "--pubkey",
        work["pub"],
        "--threshold",
        "0.6",
        env={"GFAUDIT_KEY_PASSWORD": "not-needed"},
    )
    assert r.exit_code == 0, r.output
    assert "encrypted" not in r.stderr
    r = cli("inspect", work["bundle"], "--pubkey", work["pub"], "--format", "json")
    assert json.loads(r.stdout)["manifest"]["scoring"]["threshold"] == "0.6"
