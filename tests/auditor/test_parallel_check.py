"""`check --jobs N` and `evaluate --jobs N`: the same report as one at a time, in input order, with
the per-suspect timeout and error rows intact."""

from __future__ import annotations

import json
import time

import pytest

import hostile_models
from conftest import onnx_factory, report


@pytest.fixture()
def suspects(tmp_path, weights):
    """Five suspects: the victim's twin, two unrelated models, an unreadable file, another twin."""
    W, b = weights
    other = onnx_factory.weights(seed=5)
    paths = [
        onnx_factory.build(tmp_path / "a-twin.onnx", W, b),
        onnx_factory.build(tmp_path / "b-other.onnx", *other),
        onnx_factory.build(tmp_path / "c-other.onnx", *onnx_factory.weights(seed=9)),
        tmp_path / "d-broken.onnx",
        onnx_factory.build(tmp_path / "e-twin.onnx", W, b),
    ]
    paths[3].write_bytes(b"not an onnx model")
    return paths


def test_check_jobs_gives_the_sequential_report_in_input_order(cli, signed_bundle, keypair, suspects):
    runs = {}
    for jobs in ("1", "3"):
        r = cli(
            "check", *suspects, "--bundle", signed_bundle, "--pubkey", keypair[1], "--format", "json", "--jobs", jobs
        )
        assert r.exit_code == 4, r.output  # the broken file is an error row; the others are still scored
        runs[jobs] = report(r)
    assert [s["path"] for s in runs["3"]["suspects"]] == [str(p) for p in suspects]
    assert runs["3"]["suspects"] == runs["1"]["suspects"]
    verdicts = [s["verdict"] for s in runs["3"]["suspects"]]
    assert verdicts[0] == verdicts[4] == "derived" and verdicts[3] == "error"


def test_a_timed_out_suspect_under_jobs_costs_the_others_nothing(
    cli, tmp_path, signed_bundle, keypair, weights, suspects
):
    loop = hostile_models.endless_loop(tmp_path / "loop.onnx", *weights)
    started = time.perf_counter()
    r = cli(
        "check",
        loop,
        suspects[0],
        suspects[1],
        "--bundle",
        signed_bundle,
        "--pubkey",
        keypair[1],
        "--format",
        "json",
        "--jobs",
        "2",
        "--timeout",
        "3",
    )
    rows = report(r)["suspects"]
    assert r.exit_code == 4
    assert rows[0]["verdict"] == "error" and "time limit of 3 s" in rows[0]["error"]
    assert [row["verdict"] for row in rows[1:]] == ["derived", "not-derived"]
    assert time.perf_counter() - started < 30


def test_jobs_must_be_positive(cli, signed_bundle, keypair, suspects):
    r = cli("check", suspects[0], "--bundle", signed_bundle, "--pubkey", keypair[1], "--jobs", "0")
    assert r.exit_code == 2 and "--jobs 0" in r.output


def test_evaluate_jobs_keeps_the_library_order(cli, tmp_path, signed_bundle, keypair, suspects):
    lib = {
        "models": [
            {"path": p.name, "label": "pirated" if "twin" in p.name else "unrelated", "attack": p.stem}
            for p in suspects
            if "broken" not in p.name
        ]
    }
    (tmp_path / "library.json").write_text(json.dumps(lib))
    docs = []
    for jobs in ("1", "2"):
        r = cli(
            "evaluate",
            "--library",
            tmp_path,
            "--bundle",
            signed_bundle,
            "--pubkey",
            keypair[1],
            "--format",
            "json",
            "--jobs",
            jobs,
        )
        assert r.exit_code == 0, r.output
        docs.append(json.loads(r.stdout))
    assert [m["attack"] for m in docs[1]["models"]] == [m["attack"] for m in lib["models"]]
    assert docs[0]["models"] == docs[1]["models"] and docs[0]["aruc"] == docs[1]["aruc"]


@pytest.fixture()
def local_ray():
    """A local Ray with 2 CPUs, stopped afterwards (skipped where gfaudit[ray] is not installed)."""
    ray = pytest.importorskip("ray", reason="--executor ray needs gfaudit[ray]")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_check_and_evaluate_on_ray_give_the_local_reports(cli, tmp_path, signed_bundle, keypair, suspects, local_ray):
    args = ["--bundle", signed_bundle, "--pubkey", keypair[1], "--format", "json"]
    local = cli("check", *suspects, *args)
    on_ray = cli("check", *suspects, *args, "--executor", "ray")
    assert on_ray.exit_code == local.exit_code == 4, on_ray.output  # the broken file is an error row there too
    assert report(on_ray)["suspects"] == report(local)["suspects"]
    lib = {"models": [{"path": p.name, "label": "pirated" if "twin" in p.name else "unrelated"} for p in suspects[:3]]}
    (tmp_path / "library.json").write_text(json.dumps(lib))
    docs = [cli("evaluate", "--library", tmp_path, *args, *extra) for extra in ([], ["--executor", "ray"])]
    assert all(d.exit_code == 0 for d in docs), docs[1].output
    assert json.loads(docs[0].stdout)["models"] == json.loads(docs[1].stdout)["models"]
