"""One run writes every report a pipeline needs, failed runs included, and every SARIF log gfaudit can
write validates against the official SARIF 2.1.0 schema with levels that follow the gate."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import onnx_factory as f

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text())
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)


def valid_sarif(path: Path) -> dict:
    doc = json.loads(path.read_text())
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    run = doc["runs"][0]
    for rule in run["tool"]["driver"]["rules"]:  # what GitHub code scanning shows on an alert
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        assert 0 < float(rule["properties"]["security-severity"]) <= 10
        assert "security" in rule["properties"]["tags"]
    return doc


@pytest.fixture(scope="module")
def suspects(tmp_path_factory, victim_onnx):
    d = tmp_path_factory.mktemp("suspects")
    copy = d / "copy.onnx"
    copy.write_bytes(victim_onnx.read_bytes())
    other = f.build(d / "other.onnx", *f.weights(seed=5))
    junk = d / "junk.onnx"
    junk.write_bytes(b"not an onnx model")
    return {"derived": copy, "not-derived": other, "error": junk}


def _run(cli, tmp_path, suspect_paths, bundle, pub, *extra):
    js, sarif = tmp_path / "r.json", tmp_path / "r.sarif"
    r = cli(
        "check",
        *suspect_paths,
        "--bundle",
        bundle,
        "--pubkey",
        pub,
        "--json-file-output",
        js,
        "--sarif-file-output",
        sarif,
        *extra,
    )
    return r, js, sarif


@pytest.mark.parametrize("expect", [None, "derived", "not-derived"])
def test_one_run_writes_text_json_and_sarif_and_levels_follow_the_gate(
    cli, tmp_path, suspects, signed_bundle, keypair, expect
):
    extra = ["--expect", expect] if expect else []
    r, js, sarif = _run(
        cli, tmp_path, [suspects["derived"], suspects["not-derived"]], signed_bundle, keypair[1], *extra
    )
    assert r.exit_code == 1, r.output  # one of the two always fails the gate
    assert "P_conf" in r.stdout  # the terminal view, in the same run
    report = json.loads(js.read_text())
    assert report["error"] is None and report["exit_code"] == 1
    by_path = {s["path"]: s for s in report["suspects"]}
    assert by_path[str(suspects["derived"])]["verdict"] == "derived"
    assert by_path[str(suspects["not-derived"])]["verdict"] == "not-derived"
    doc = valid_sarif(sarif)
    run = doc["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is True and run["invocations"][0]["exitCode"] == 1
    results = {
        Path(res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]).name: res for res in run["results"]
    }
    for name, verdict in (("copy.onnx", "derived"), ("other.onnx", "not-derived")):
        fails_gate = verdict != expect if expect else verdict == "derived"
        res = results[name]
        if fails_gate:
            assert (res["level"], res["kind"]) == ("error", "fail"), res
        else:
            assert (res["level"], res["kind"]) == ("none", "pass"), res
        assert res["ruleId"] == ("GFA003" if expect == "derived" else "GFA001")
        assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_partial_fingerprints_are_stable_and_distinct(cli, tmp_path, suspects, signed_bundle, keypair):
    paths = [suspects["derived"], suspects["not-derived"]]
    prints = []
    for _ in range(2):
        r, _, sarif = _run(cli, tmp_path, paths, signed_bundle, keypair[1])
        prints.append([res["partialFingerprints"] for res in json.loads(sarif.read_text())["runs"][0]["results"]])
    assert prints[0] == prints[1]
    assert prints[0][0] != prints[0][1]


def test_unreadable_suspect_is_an_error_result_and_an_unsuccessful_run(cli, tmp_path, suspects, signed_bundle, keypair):
    r, js, sarif = _run(cli, tmp_path, [suspects["error"], suspects["not-derived"]], signed_bundle, keypair[1])
    assert r.exit_code == 4
    report = json.loads(js.read_text())
    assert report["error"]["code"] == 4 and "junk.onnx" in report["error"]["message"]
    run = valid_sarif(sarif)["runs"][0]
    inv = run["invocations"][0]
    assert (
        inv["executionSuccessful"] is False and "junk.onnx" in inv["toolExecutionNotifications"][0]["message"]["text"]
    )
    levels = {res["ruleId"]: res["level"] for res in run["results"]}
    assert levels == {"GFA002": "error", "GFA001": "none"}


def _tampered(copy_bundle):
    path = copy_bundle()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "case,code", [("tampered", 3), ("missing-sig", 3), ("no-pubkey", 2), ("wrong-key-type", 2), ("empty-folder", 2)]
)
def test_failed_run_still_writes_its_report_files(cli, tmp_path, suspects, copy_bundle, keypair, case, code):
    bundle, pub, suspect = copy_bundle(), keypair[1], suspects["derived"]
    env = None
    if case == "tampered":
        bundle = _tampered(copy_bundle)
    elif case == "missing-sig":
        Path(str(bundle) + ".sig").unlink()
    elif case == "wrong-key-type":
        pub = keypair[0]
    elif case == "empty-folder":
        suspect = tmp_path / "empty"
        suspect.mkdir()
    out = tmp_path / "out"
    args = [
        "check",
        suspect,
        "--bundle",
        bundle,
        "--json-file-output",
        out / "r.json",
        "--sarif-file-output",
        out / "r.sarif",
        "--format",
        "sarif",
        "-o",
        out / "main.sarif",
    ]
    if case == "no-pubkey":
        env = {"GFAUDIT_PUBKEY": "", "XDG_CONFIG_HOME": str(tmp_path / "no-config")}
    else:
        args += ["--pubkey", pub]
    r = cli(*args, env=env)
    assert r.exit_code == code, r.output
    assert r.stdout == "" and "Traceback" not in r.output
    report = json.loads((out / "r.json").read_text())
    assert report["exit_code"] == code and report["error"]["code"] == code and report["error"]["message"]
    assert report["error"]["message"] in r.stderr
    for name in ("r.sarif", "main.sarif"):
        run = valid_sarif(out / name)["runs"][0]
        inv = run["invocations"][0]
        assert inv["executionSuccessful"] is False and inv["exitCode"] == code
        assert inv["toolExecutionNotifications"][0]["message"]["text"] == report["error"]["message"]
        assert run["results"] == []
    assert sorted(p.name for p in out.iterdir()) == ["main.sarif", "r.json", "r.sarif"]  # no temporary left


def test_missing_cuda_is_exit_4_with_reports(cli, tmp_path, suspects, signed_bundle, keypair):
    from gfaudit.audit.onnx_model import cuda_driver_present

    if cuda_driver_present():
        pytest.skip("this machine has an NVIDIA driver; the missing-CUDA path cannot be shown here")
    r, js, sarif = _run(cli, tmp_path, [suspects["derived"]], signed_bundle, keypair[1], "--device", "cuda")
    assert r.exit_code == 4
    assert json.loads(js.read_text())["error"]["kind"] == "runtime"
    assert valid_sarif(sarif)["runs"][0]["invocations"][0]["executionSuccessful"] is False


def test_same_file_twice_is_a_usage_error(cli, tmp_path, suspects, signed_bundle, keypair):
    r = cli(
        "check",
        suspects["derived"],
        "--bundle",
        signed_bundle,
        "--pubkey",
        keypair[1],
        "--format",
        "json",
        "-o",
        tmp_path / "r.json",
        "--json-file-output",
        tmp_path / "r.json",
    )
    assert r.exit_code == 2 and not (tmp_path / "r.json").exists()


def test_evaluate_writes_json_file_beside_text_and_on_failure(
    cli, tmp_path, suspects, signed_bundle, keypair, copy_bundle
):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("derived", "not-derived"):  # library entries are relative paths inside the library folder
        (lib / f"{name}.onnx").write_bytes(suspects[name].read_bytes())
    (lib / "library.json").write_text(
        json.dumps(
            {
                "models": [
                    {"path": "derived.onnx", "label": "pirated"},
                    {"path": "not-derived.onnx", "label": "unrelated"},
                ]
            }
        )
    )
    r = cli(
        "evaluate",
        "--library",
        lib,
        "--bundle",
        signed_bundle,
        "--pubkey",
        keypair[1],
        "--json-file-output",
        tmp_path / "e.json",
    )
    assert r.exit_code == 0, r.output
    assert "| ARUC |" in r.stdout
    doc = json.loads((tmp_path / "e.json").read_text())
    assert doc["error"] is None and doc["aruc"] == 1.0
    r = cli(
        "evaluate",
        "--library",
        lib,
        "--bundle",
        _tampered(copy_bundle),
        "--pubkey",
        keypair[1],
        "--json-file-output",
        tmp_path / "e.json",
    )
    assert r.exit_code == 3
    assert json.loads((tmp_path / "e.json").read_text())["error"]["code"] == 3


def test_evaluate_and_inspect_offer_only_their_formats(cli, signed_bundle, keypair):
    assert cli("evaluate", "--library", ".", "--bundle", signed_bundle, "--sarif-file-output", "x.sarif").exit_code == 2
    for cmd in (["inspect", signed_bundle], ["verify", signed_bundle], ["doctor"]):
        r = (
            cli(*cmd, "--pubkey", keypair[1], "--format", "sarif")
            if cmd[0] != "doctor"
            else cli(*cmd, "--format", "sarif")
        )
        assert r.exit_code == 2 and "sarif" in r.stderr
