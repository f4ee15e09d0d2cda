"""Simulation reports (SQNR, numpy/ONNX checks), encodings export and the simulate/export CLI."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from models import conv_relu_add
from onnx import numpy_helper
from test_qdq import INT8, MIXED, encodings_for, feeds, gemm_matmul, plan_for

from quantspec.cli import main
from quantspec.dialects.encodings import read_file
from quantspec.runtime import encoding_from_data, encoding_from_range
from quantspec.runtime.export import encodings_from_file, encodings_text
from quantspec.runtime.qdq import build_qdq
from quantspec.runtime.simulate import simulate
from quantspec.runtime.sqnr import Sqnr, sqnr_db


def _report(m: onnx.ModelProto, text: str, n: int = 3):  # type: ignore[no-untyped-def]
    plan = plan_for(m, text)
    data = feeds(m, n)
    return simulate(m, plan, encodings_for(m, plan, data), data)


def test_sqnr_accumulates_and_merges() -> None:
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((4, 100))
    test = ref + rng.standard_normal((4, 100)) * 0.01
    whole = Sqnr()
    whole.update(ref, test)
    parts, other = Sqnr(), Sqnr()
    parts.update(ref[:2], test[:2])
    other.update(ref[2:], test[2:])
    parts.merge(other)
    expect = 10 * np.log10(np.sum(ref**2) / np.sum((ref - test) ** 2))
    assert whole.db == pytest.approx(expect) and parts.db == pytest.approx(expect)
    assert parts.count == 400
    exact = Sqnr()
    exact.update(ref, ref)
    assert exact.db == math.inf and sqnr_db(0.0, 1.0) == -math.inf


def test_eight_bit_report_is_sane() -> None:
    m = conv_relu_add()
    rep = _report(m, INT8)
    assert rep.ok and rep.backends == {"float": "onnxruntime", "qdq": "onnxruntime"}
    assert rep.samples == 3 and rep.batches == 3
    rows = {t.name: t for t in rep.tensors}
    # quantized tensors and graph outputs, in graph order (biases are off in this profile)
    assert list(rows) == ["x", "w1", "c1", "r1", "w2", "c2", "a", "y"]
    for name in ("x", "w1", "c1", "r1", "w2", "c2", "a", "y"):
        row = rows[name]
        assert row.check == "ok", name
        # one 8-bit quantizer on data it was calibrated on: ~6 dB per bit
        assert 25.0 < row.quantizer_sqnr_db < 60.0, (name, row.quantizer_sqnr_db)
        # errors accumulate downstream: never better than the tensor's own quantizer
        assert row.sqnr_db <= row.quantizer_sqnr_db + 1e-9
    assert rows["y"].is_output and 15.0 < rows["y"].sqnr_db < 60.0
    doc = json.loads(rep.dumps())
    assert doc["summary"]["check_mismatches"] == 0
    assert doc["summary"]["outputs_sqnr_db"]["y"] == pytest.approx(rows["y"].sqnr_db, abs=1e-5)
    text = rep.to_text()
    assert text.splitlines()[0].split()[:3] == ["tensor", "kind", "storage"]
    assert "y (output)" in text and "9/9 agree" not in text and "8/8 agree" in text


def test_every_storage_path_checks_out() -> None:
    m = conv_relu_add()
    rep = _report(m, MIXED, 2)
    checks = {t.name: t.check for t in rep.tensors if t.storage}
    assert set(checks) == {"x", "w1", "b1", "c1", "r1", "w2", "b2", "c2", "a", "y"}
    assert set(checks.values()) == {"ok"} and rep.opset == 21
    rows = {t.name: t for t in rep.tensors}
    assert rows["c1"].quantizer_sqnr_db > rows["a"].quantizer_sqnr_db  # 20 bits vs 12 bits


def test_more_bits_more_sqnr() -> None:
    m = gemm_matmul()
    reports = {}
    for bits in (4, 8, 16):
        prof = INT8.replace("uint8", f"bits: {bits}").replace("int8", f"bits: {bits}")
        reports[bits] = {t.name: t for t in _report(m, prof).tensors}
    for name, row in reports[8].items():
        if not row.storage:
            continue
        own = [reports[b][name].quantizer_sqnr_db for b in (4, 8, 16)]
        assert own[0] < own[1] < own[2], (name, own)
        assert own[2] - own[1] > 30.0, (name, own)  # 8 more bits: ~48 dB
        e2e = [reports[b][name].sqnr_db for b in (4, 8, 16)]
        assert e2e[0] < e2e[1] < e2e[2], (name, e2e)


def test_check_catches_a_wrong_zero_point() -> None:
    m = conv_relu_add()
    plan = plan_for(m, INT8)
    data = feeds(m, 2)
    qdq = build_qdq(m, plan, encodings_for(m, plan, data))
    for t in qdq.model.graph.initializer:
        if t.name in ("c2_zero_point", "w2_zero_point"):
            arr = numpy_helper.to_array(t) + np.array(3, dtype=numpy_helper.to_array(t).dtype)
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    rep = simulate(m, plan, None, data, qdq=qdq)
    bad = {t.name for t in rep.tensors if t.check == "mismatch"}
    assert bad == {"c2", "w2"} and not rep.ok
    assert "MISMATCH" in rep.to_text()


@pytest.mark.parametrize("version", ["0.6.1", "1.0.0", "2.0.0"])
def test_encodings_round_trip(version: str) -> None:
    m = conv_relu_add()
    plan = plan_for(m, INT8)
    encs = encodings_for(m, plan, feeds(m, 1))
    encs["r1"] = encoding_from_range(-1.0, 1.0, 8, symmetric=True, strict=True)
    encs["c2"] = encoding_from_range(-2.0, 3.0, 16)
    text = encodings_text(encs, plan, version)
    ef = read_file(text)
    if not version.startswith("2."):  # 2.x files do not say which tensors are parameters
        assert {e.name for e in ef.params()} == {"w1", "w2"}
    back, skipped = encodings_from_file(text, plan)
    assert not skipped and set(back) == set(encs)
    for name, enc in encs.items():
        got = back[name]
        assert got.bits == enc.bits and got.axis == enc.axis, name
        np.testing.assert_array_equal(got.scale, enc.scale, err_msg=name)
        np.testing.assert_array_equal(got.offset, enc.offset, err_msg=name)
        if not version.startswith("2."):  # 2.x stores no symmetric flag (docs/encodings.md)
            assert (got.symmetric, got.strict) == (enc.symmetric, enc.strict), name
    # the QDQ models built from both sides are the same graph
    a = build_qdq(m, plan, encs).model
    b = build_qdq(m, plan, back).model
    assert a.graph.SerializeToString() == b.graph.SerializeToString()


def _save(tmp_path: Path, m: onnx.ModelProto) -> tuple[str, str]:
    model_path = tmp_path / "net.onnx"
    onnx.save(m, str(model_path))
    data = feeds(m, 4)
    data_path = tmp_path / "calib.npz"
    np.savez(data_path, **{k: np.concatenate([f[k] for f in data]) for k in data[0]})
    return str(model_path), str(data_path)


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_cli_simulate_calibrates_and_writes(tmp_path: Path) -> None:
    m = conv_relu_add()
    model_path, data_path = _save(tmp_path, m)
    prof = tmp_path / "p.qspec"
    prof.write_text(INT8)
    code, out, err = _cli("simulate", str(prof), "--model", model_path, "--data", data_path,
                          "-o", str(tmp_path / "out"), "--report", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["samples"] == 4 and doc["summary"]["check_mismatches"] == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["net.encodings", "net.qdq.onnx", "net.sqnr.json"]
    onnx.checker.check_model(str(tmp_path / "out" / "net.qdq.onnx"), full_check=True)
    ef = read_file((tmp_path / "out" / "net.encodings").read_text())
    assert ef.version == "1.0.0" and len(ef.entries) == 8
    assert json.loads((tmp_path / "out" / "net.sqnr.json").read_text()) == doc


def test_cli_export_and_simulate_with_encodings(tmp_path: Path) -> None:
    m = conv_relu_add()
    model_path, data_path = _save(tmp_path, m)
    plan = plan_for(m, INT8)
    encs = encodings_for(m, plan, feeds(m, 2))
    enc_path = tmp_path / "net.encodings"
    enc_path.write_text(encodings_text(encs, plan, "0.6.1"))
    # the encodings file is the profile: export converts it to 2.0.0 and builds the QDQ model
    code, out, err = _cli("export", str(enc_path), "--model", model_path, "-o",
                          str(tmp_path / "x"), "--version", "2.0.0")
    assert code == 0, err
    assert "8 tensor(s) quantized" in out
    ef = read_file((tmp_path / "x" / "net.encodings").read_text())
    assert ef.version == "2.0.0" and {e.name for e in ef.entries} == set(encs)
    qdq = onnx.load(str(tmp_path / "x" / "net.qdq.onnx"))
    assert [o.name for o in qdq.graph.output] == ["y"]
    # simulate with the file: text report, nothing calibrated, nothing written without -o
    code, out, err = _cli("simulate", str(enc_path), "--model", model_path, "--data", data_path,
                          "--encodings", str(enc_path))
    assert code == 0, err
    assert out.startswith("tensor") and "8/8 agree" in out
    # refusing to overwrite an input
    code, out, err = _cli("export", str(enc_path), "--model", model_path, "-o", str(tmp_path))
    assert code == 1 and "E463" in err
    assert enc_path.read_text() == encodings_text(encs, plan, "0.6.1")


def test_cli_export_needs_encodings(tmp_path: Path) -> None:
    m = conv_relu_add()
    model_path, _ = _save(tmp_path, m)
    prof = tmp_path / "p.qspec"
    prof.write_text(INT8)
    code, _, err = _cli("export", str(prof), "--model", model_path, "-o", str(tmp_path / "o"))
    assert code == 1 and "E465" in err


def test_per_channel_file_without_axis_takes_the_plans() -> None:
    m = gemm_matmul()
    plan = plan_for(m, INT8)
    w1 = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "w1"))
    encs = {"w1": encoding_from_data(w1, 8, axis=1, symmetric=True)}
    back, _ = encodings_from_file(encodings_text(encs, plan, "1.0.0"), plan)
    assert back["w1"].axis == 1  # 1.0.0 stores no axis; MatMul weights are per column
