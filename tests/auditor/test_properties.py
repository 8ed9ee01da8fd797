"""Property-based tests of the exit-code contract (issue 10): mutate bundle bytes, envelopes and
ONNX graphs at random and check that gfaudit answers with a documented code and never a traceback.

- intact inputs: 0 or 1 only;
- any change to the bundle's bytes or to the signed content: 3, and nothing scored;
- a broken suspect: 4 with an ``error`` row, or a normal verdict when the mutation happens to leave
  a runnable model; the report stays parseable either way.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

SETTINGS = dict(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _no_traceback(r) -> None:
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr


@pytest.fixture()
def case(tmp_path, copy_bundle, victim_onnx, keypair):
    bundle = copy_bundle()
    return {
        "bundle": bundle,
        "sig": Path(str(bundle) + ".sig"),
        "data": bundle.read_bytes(),
        "envelope": Path(str(bundle) + ".sig").read_bytes(),
        "suspect": victim_onnx,
        "pub": keypair[1],
        "dir": tmp_path,
    }


def _check(cli, c, suspect=None):
    return cli("check", suspect or c["suspect"], "--bundle", c["bundle"], "--pubkey", c["pub"], "--format", "json")


def test_intact_inputs_give_0_or_1(cli, case):
    r = _check(cli, case)
    assert r.exit_code in (0, 1) and json.loads(r.stdout)["exit_code"] == r.exit_code


@settings(**SETTINGS)
@given(data=st.data())
def test_any_change_to_the_bundle_bytes_is_exit_3(cli, case, data):
    raw = bytearray(case["data"])
    kind = data.draw(st.sampled_from(["flip", "truncate", "append", "splice"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "append":
        raw += data.draw(st.binary(min_size=1, max_size=64))
    else:
        i = data.draw(st.integers(0, len(raw) - 1))
        junk = data.draw(st.binary(min_size=1, max_size=32))
        raw[i : i + len(junk)] = junk
        if bytes(raw) == case["data"]:
            raw.append(0)
    case["bundle"].write_bytes(bytes(raw))
    r = _check(cli, case)
    assert r.exit_code == 3, r.output
    assert r.stdout == ""
    _no_traceback(r)


@settings(**SETTINGS)
@given(data=st.data())
def test_envelope_byte_mutations_are_3_unless_only_formatting_changed(cli, case, data):
    raw = bytearray(case["envelope"])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    case["sig"].write_bytes(bytes(raw))
    r = _check(cli, case)
    _no_traceback(r)
    if r.exit_code != 3:  # e.g. a space turned into a tab: same JSON, same signed bytes
        assert r.exit_code == 1
        assert json.loads(bytes(raw)) == json.loads(case["envelope"])


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(**SETTINGS)
@given(data=st.data())
def test_envelope_and_payload_edits_are_exit_3(cli, case, data):
    env = json.loads(case["envelope"])
    payload = json.loads(base64.b64decode(env["payload"]))
    where = data.draw(st.sampled_from(["envelope", "payload", "predicate", "signature"]))
    if where == "envelope":
        key = data.draw(st.sampled_from(["payload", "payloadType", "signatures"]))
        env[key] = data.draw(_json_values.filter(lambda v, k=key: v != env[k]))
    elif where == "signature":
        sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
        sig[data.draw(st.integers(0, len(sig) - 1))] ^= data.draw(st.integers(1, 255))
        env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    else:
        target = payload if where == "payload" else payload["predicate"]
        key = data.draw(st.sampled_from(sorted(target)))
        target[key] = data.draw(_json_values.filter(lambda v, k=key: v != target[k]))
        env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()  # unsigned edit
    case["sig"].write_text(json.dumps(env))
    r = _check(cli, case)
    assert r.exit_code == 3, r.output
    assert r.stdout == ""
    _no_traceback(r)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_onnx_suspects_get_a_verdict_or_an_error_row(cli, case, data):
    raw = bytearray(case["suspect"].read_bytes())
    kind = data.draw(st.sampled_from(["flip", "truncate", "header"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:  # the graph structure lives in the first bytes; the weights follow
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, min(400, len(raw) - 1)))] = data.draw(st.integers(0, 255))
    broken = case["dir"] / "broken.onnx"
    broken.write_bytes(bytes(raw))
    good = case["dir"] / "good.onnx"
    shutil.copy(case["suspect"], good)
    r = cli(
        "check",
        broken,
        good,
        "--bundle",
        case["bundle"],
        "--pubkey",
        case["pub"],
        "--format",
        "json",
        "--timeout",
        "60",
    )
    _no_traceback(r)
    doc = json.loads(r.stdout)
    rows = doc["suspects"]
    assert len(rows) == 2 and rows[1]["verdict"] == "derived"
    assert rows[0]["verdict"] in ("derived", "not-derived", "error")
    assert r.exit_code == (4 if rows[0]["verdict"] == "error" else 1)
    if rows[0]["verdict"] == "error":
        assert rows[0]["error"]
