"""The kept generator and `gfaudit refresh` at the tiny preset: real GAN training, real refreshes, real
signatures; two refreshed bundles share no pair with each other or with train's, and both flag the victim."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from gfaudit.bundle import container as bundle_io, keys
from gfaudit.bundle.provenance import file_sha256
from gfaudit.cli.app import app

from conftest import SHARED, needs_shared, needs_torch

pytestmark = [needs_torch(), needs_shared()]

VICTIM = SHARED / "models" / "resnet20-cifar10-jpeg" / "resnet20.pt"
DATA = SHARED / "data" / "cifar10-jpeg"


def _run(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r


@pytest.fixture(scope="module")
def trained(tiny_train, keypair):
    d, summary, common = tiny_train.folder, tiny_train.summary, tiny_train.common_args(keypair)
    refreshed = []
    for i in (1, 2):
        out = d / f"r{i}.safetensors"
        r = _run("refresh", "--generator", d / "fp.generator.json", "--candidates", 60, "-o", out, *common)
        assert r.exit_code == 0, r.output
        refreshed.append(out)
    return d, summary, refreshed


def _manifest(path, pub):
    return bundle_io.load(path, keys.load_public(pub))


def test_train_keeps_the_generator_private_and_signs_its_hashes(trained, keypair):
    d, summary, _ = trained
    weights, config, ledger = d / "fp.generator.safetensors", d / "fp.generator.json", d / "fp.generator.ledger.json"
    for p in (weights, config, ledger):
        assert oct(os.stat(p).st_mode & 0o777) == "0o600", p
    b = _manifest(d / "fp.safetensors", keypair[1])
    prov = b.manifest.raw["provenance"]
    assert prov["generator"]["weights_sha256"] == file_sha256(weights)
    assert prov["generator"]["config_sha256"] == file_sha256(config)
    assert prov["generator"]["role"] == "trained" and summary["generator"] == str(config)
    # The bundle a suspect's operator may see holds the pairs and labels only, never the generator.
    assert set(b.manifest.raw["tensors"]) == {"x", "x_prime", "y", "y_prime"}
    assert b"generator" not in (d / "fp.safetensors").read_bytes()[:4096].lower()
    kept = prov["seed_draw"]["kept"]
    assert len(kept) == len(set(kept)) >= b.k and set(kept) <= set(prov["seed_draw"]["drawn"])


def test_two_refreshed_bundles_share_no_pair_and_both_flag_the_victim(trained, keypair):
    d, summary, refreshed = trained
    parent = _manifest(d / "fp.safetensors", keypair[1])
    bundles = [parent] + [_manifest(p, keypair[1]) for p in refreshed]
    draws = [b.manifest.raw["provenance"]["seed_draw"] for b in bundles]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not set(draws[i]["kept"]) & set(draws[j]["kept"])  # no seed kept twice
            rows_i = {bytes(x.tobytes()) for x in bundles[i].x}
            assert not rows_i & {bytes(x.tobytes()) for x in bundles[j].x}  # no image shared
    # The first refresh drew only seeds train never drew; each records its parent generator.
    # (60 candidates, or more in chunks of half as many again when 60 gave fewer than K pairs.)
    assert not set(draws[1]["drawn"]) & set(draws[0]["drawn"])
    assert draws[1]["fresh"] == len(draws[1]["drawn"]) and draws[1]["fresh"] in (60, 90, 135, 203)
    for b in bundles[1:]:
        prov = b.manifest.raw["provenance"]
        assert prov["tool"] == "gfaudit refresh" and prov["generator"]["role"] == "reused"
        assert prov["generator"]["weights_sha256"] == parent.manifest.raw["provenance"]["generator"]["weights_sha256"]
        assert "gan_training" not in prov["timings_s"] and prov["calibration"]
    ledger = json.loads((d / "fp.generator.ledger.json").read_text())
    assert [e["bundle"] for e in ledger["bundles"]] == ["fp.safetensors", "r1.safetensors", "r2.safetensors"]
    assert [e["bundle_sha256"] for e in ledger["bundles"]] == [b.sha256 for b in bundles]
    # Both refreshed bundles flag the victim itself (a copy), in one check.
    args = ["check", summary["victim_onnx"], "--bundle", refreshed[0], "--bundle", refreshed[1]]
    r = _run(*args, "--pubkey", keypair[1], "--format", "json")
    assert r.exit_code == 1, r.output
    rows = json.loads(r.stdout)["suspects"]
    assert [row["verdict"] for row in rows] == ["derived", "derived"]
    assert [row["bundle_sha256"] for row in rows] == [b.sha256 for b in bundles[1:]]


def test_refresh_refuses_changed_weights_and_a_bundle_dir_skips_the_generator(trained, keypair, tmp_path):
    d, summary, _ = trained
    for name in ("fp.generator.safetensors", "fp.generator.json", "fp.generator.ledger.json"):
        (tmp_path / name).write_bytes((d / name).read_bytes())
    data = bytearray((tmp_path / "fp.generator.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "fp.generator.safetensors").write_bytes(bytes(data))
    r = _run(
        "refresh",
        "--generator",
        tmp_path / "fp.generator.json",
        "--victim",
        VICTIM,
        "--key",
        keypair[0],
        "-o",
        tmp_path / "r.safetensors",
        "--device",
        "cpu",
    )
    assert r.exit_code == 3 and "sha256" in r.stderr, r.output
    r = _run("check", summary["victim_onnx"], "--bundle-dir", d, "--pubkey", keypair[1], "--format", "json")
    assert r.exit_code == 1, r.output
    assert len(json.loads(r.stdout)["bundles"]) == 3  # fp, r1, r2; the generator files are not bundles


def test_pool_vote_on_live_candidates_selects_the_same_pairs(trained):
    import torch

    from gfaudit_trainer import presets
    from gfaudit_trainer.generation import gan, generator as gen, pipeline, selection
    from gfaudit_trainer.models.context import runner_up_of, seed_order

    d, _, _ = trained
    preset = presets.get("tiny")
    ctx = pipeline.load_context(VICTIM, "resnet20", "imagenet", str(DATA), preset, "cpu", d / "cache", 0)
    pools, _, _ = pipeline.build_pools(ctx, preset)
    seeds = ctx.test.subset(seed_order(ctx)[:120])
    G = gen.load(d / "fp.generator.json").generator
    xp = gan.generate(G, seeds.images, runner_up_of(ctx, seeds.images), "cpu")
    picks = []
    for labels in (None, seeds.labels):
        votes = selection.vote(ctx.victim, pools, seeds.images, xp, ctx.device, labels)
        picks.append(selection.choose(votes, seeds.images, xp, seeds.labels, preset.k, preset.pos_agree, False, 1.0))
    assert torch.equal(picks[0].index, picks[1].index) and picks[0].stats == picks[1].stats
    assert np.array_equal(picks[0].x_prime.numpy(), picks[1].x_prime.numpy())


def test_ledger_lock_lets_one_refresh_at_a_time(tmp_path):
    """Two refreshes of one generator never interleave their ledger read, draw and record."""
    from gfaudit.errors import UsageError
    from gfaudit_trainer.generation import generator as gen

    ledger = tmp_path / "fp.generator.ledger.json"
    with gen.ledger_lock(ledger):
        with pytest.raises(UsageError, match="another refresh of this generator holds the ledger"):
            with gen.ledger_lock(ledger, timeout=0.3):
                pass
    with gen.ledger_lock(ledger, timeout=0.3):  # released when the first refresh ended
        pass
    assert oct(os.stat(tmp_path / "fp.generator.ledger.lock").st_mode & 0o777) == "0o600"
