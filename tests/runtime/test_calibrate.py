"""The calibration pipeline and the ``quantspec calibrate`` command."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from models import conv_relu_add, model
from onnx import helper, numpy_helper

from quantspec.cli import main
from quantspec.compiler import compile_profile
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import loads
from quantspec.runtime import PercentileCalibrator, TfEnhancedCalibrator
from quantspec.runtime import fake_quantize as fq
from quantspec.runtime.calibrate import calibrate, semantics_for_profile
from quantspec.runtime.schemes import encoding_from_range

BASE = """profile "t"
defaults {
  output { on  int8  asymmetric }
  graph_input { on }
  weight { on  int8  symmetric  per_channel }
  bias { off }
}
"""


def plan_for(m: onnx.ModelProto, extra: str = "", base: str = BASE) -> Any:
    return compile_profile(loads(base + extra, "t.qspec"), Graph.from_model(m))


def samples(n: int = 4, shape: tuple[int, ...] = (1, 4, 8, 8), seed: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]


def reference_run(m: onnx.ModelProto, names: list[str], feeds: list[dict]) -> dict[str, list]:
    """Tensors computed by onnx's reference evaluator, independently of the pipeline."""
    from onnx.reference import ReferenceEvaluator

    ev = ReferenceEvaluator(m)
    out: dict[str, list] = {n: [] for n in names}
    for f in feeds:
        for n, v in zip(names, ev.run(names, f), strict=True):
            out[n].append(np.asarray(v))
    return out


def minmax_encoding(arrays: list[np.ndarray], **grid: Any) -> Any:
    lo = min(float(a.min()) for a in arrays)
    hi = max(float(a.max()) for a in arrays)
    return encoding_from_range(np.float32(lo), np.float32(hi), **grid)


def init(m: onnx.ModelProto, name: str) -> np.ndarray:
    return numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == name))


def with_weights(m: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(m)
    for t in out.graph.initializer:
        if t.name in values:
            t.CopyFrom(numpy_helper.from_array(values[t.name].astype(np.float32), t.name))
    return out


# -- min-max, ties, parameters -----------------------------------------------------------------


def test_generic_minmax_matches_an_independent_forward_pass() -> None:
    m = conv_relu_add()
    data = samples()
    res = calibrate(plan_for(m), m, data, backend="reference")
    ref = reference_run(m, ["x", "c1", "r1", "c2", "a", "y"], data)
    for name in ("x", "c2", "a", "y"):
        assert res.encodings[name] == minmax_encoding(ref[name], bits=8), name
    w1 = init(m, "w1")
    want = encoding_from_range(w1.min(axis=(1, 2, 3)), w1.max(axis=(1, 2, 3)), 8,
                               symmetric=True, axis=0)
    assert res.encodings["w1"] == want
    assert res.batches == 4 and res.backend == "reference" and res.semantics == "generic"
    assert res.kinds["w1"] == "param" and res.kinds["c1"] == "activation"
    assert res.stats["a"]["updates"] == 4 and res.stats["a"]["method"] == "minmax"


def test_tied_tensors_share_one_encoding_from_the_union_of_their_statistics() -> None:
    m = conv_relu_add()
    data = samples()
    res = calibrate(plan_for(m, "tie output_to_input: Relu\n"), m, data, backend="reference")
    assert res.encodings["c1"] is res.encodings["r1"]
    ref = reference_run(m, ["c1", "r1"], data)
    assert res.encodings["c1"] == minmax_encoding(ref["c1"] + ref["r1"], bits=8)
    assert res.stats["r1"]["tensors"] == ["c1", "r1"] and res.stats["r1"]["updates"] == 8
    assert res.report()["quantizers"] == len(res.encodings) - 1


def test_aimet_runs_the_forward_pass_with_quantized_parameters() -> None:
    m = conv_relu_add()
    data = samples()
    plan = plan_for(m)
    aimet = calibrate(plan, m, data, semantics="aimet", backend="reference")
    generic = calibrate(plan, m, data, backend="reference")
    # the reference: weights quantize-dequantized with their own (pre-float32) encodings
    qdq = {w: fq(init(m, w), generic.encodings[w], semantics="aimet") for w in ("w1", "w2")}
    ref = reference_run(with_weights(m, qdq), ["c1", "a"], data)
    for name in ("c1", "a"):
        assert aimet.encodings[name] == minmax_encoding(ref[name], bits=8)
    assert aimet.encodings["a"] != generic.encodings["a"]
    # AIMET re-loads matmul-like weight scales as float32 (input quantizer enabled) ...
    s = aimet.encodings["w1"].scale
    assert np.array_equal(s, s.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(s, generic.encodings["w1"].scale.astype(np.float32))
    mn = aimet.encodings["w1"].min
    assert np.array_equal(mn, (s.astype(np.float32) * np.float32(-128)).astype(np.float64))
    # ... which the generic semantics do not
    g = generic.encodings["w1"].scale
    assert not np.array_equal(g, g.astype(np.float32).astype(np.float64))


def test_aimet_enlarges_weight_scales_against_int32_bias_overflow() -> None:
    rng = np.random.default_rng(0)
    w = (rng.standard_normal([2, 1, 1, 1]) * 1e-3).astype(np.float32)
    b = np.array([3e5, -1e6], dtype=np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")]
    m = model(nodes, {"x": [1, 1, 4, 4]}, {"y": [1, 2, 4, 4]},
              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    plan = plan_for(m, "tensor \"y\" { off }\n",
                    base=BASE.replace("per_channel", "per_tensor"))
    data = [{"x": (np.random.default_rng(i).standard_normal([1, 1, 4, 4]) * 1e-3)
             .astype(np.float32)} for i in range(2)]
    res = calibrate(plan, m, data, semantics="aimet", backend="reference")
    before = calibrate(plan, m, data, backend="reference").encodings["w"].scale[0]
    s_in = np.float32(res.encodings["x"].scale[0])
    want = np.float32(1e6 / ((2**31 - 2**15) * np.float64(s_in)))
    got = res.encodings["w"].scale[0]
    assert got == float(want) and got > 10 * before
    assert res.encodings["w"].offset[0] == -128


def test_parameters_use_their_stored_value_once() -> None:
    m = conv_relu_add()
    res = calibrate(plan_for(m), m, samples(2))
    assert res.stats["w1"]["updates"] == 1 and res.stats["x"]["updates"] == 2


# -- methods, fixed ranges, overrides ------------------------------------------------------------


def test_aimet_fixed_ranges_follow_the_python_path() -> None:
    m = conv_relu_add()
    data = samples()
    extra = ('op Sigmoid { output { range: [0.0, 1.0] } }\n'
             'op Relu { output { range: [0.0, null] } }\n')
    res = calibrate(plan_for(m, extra), m, data, semantics="aimet", backend="reference")
    y = res.encodings["y"]
    assert y.scale[0] == 1 / 255 and y.offset[0] == 0
    stats_max = res.stats["r1"]["observed_max"][0]
    assert res.encodings["r1"] == encoding_from_range(0.0, encoding_from_range(
        0.0, stats_max, 8).max[0], 8, scheme="aimet_fixed")
    generic = calibrate(plan_for(m, extra), m, data, backend="reference")
    assert generic.encodings["y"] == encoding_from_range(0.0, 1.0, 8)


def test_quant_scheme_overrides_activations_and_aimet_parameters() -> None:
    m = conv_relu_add()
    data = samples(3)
    plan = plan_for(m)
    res = calibrate(plan, m, data, quant_scheme="tf_enhanced", backend="reference")
    ref = reference_run(m, ["a"], data)
    cal = TfEnhancedCalibrator()
    for arr in ref["a"]:
        cal.update(arr)
    assert res.encodings["a"] == cal.encoding(8)
    assert res.stats["w1"]["method"] == "minmax"  # generic: parameters keep their method
    aimet = calibrate(plan, m, data, quant_scheme="tf_enhanced", semantics="aimet",
                      backend="reference")
    assert aimet.stats["w1"]["method"] == "tf_enhanced"
    wcal = TfEnhancedCalibrator(axis=0).update(init(m, "w1"))
    want = wcal.encoding(8, symmetric=True)
    np.testing.assert_array_equal(aimet.encodings["w1"].scale,
                                  want.scale.astype(np.float32).astype(np.float64))


def test_plan_methods_and_profile_defaults() -> None:
    m = conv_relu_add()
    data = samples(3)
    res = calibrate(plan_for(m, 'tensor "a" { calibration: percentile(percentile=99.0) }\n'),
                    m, data, backend="reference")
    cal = PercentileCalibrator(percentile=99.0, version="2.x")
    for arr in reference_run(m, ["a"], data)["a"]:
        cal.update(arr)
    assert res.encodings["a"] == cal.encoding(8)
    assert res.stats["a"]["method"] == "percentile" and res.stats["c2"]["method"] == "minmax"
    dflt = calibrate(plan_for(m, "calibrate { method: tf_enhanced  batches: 2 }\n"), m, data)
    assert dflt.stats["c2"]["method"] == "tf_enhanced" and dflt.batches == 2
    assert dflt.stats["c2"]["updates"] == 2
    assert dflt.stats["w1"]["method"] == "minmax"  # the profile default is for activations


def test_histogram_methods_fall_back_per_channel_with_a_note() -> None:
    m = conv_relu_add()
    res = calibrate(plan_for(m, 'tensor "w1" { calibration: entropy }\n'), m, samples(1))
    assert any("w1" in n and "entropy" in n for n in res.notes)
    assert res.stats["w1"]["method"] == "entropy (as minmax)"
    assert res.encodings["w1"].axis == 0
    wide = calibrate(plan_for(m, 'tensor "b1" { on  bits: 32  calibration: entropy }\n'), m,
                     samples(1))
    assert wide.stats["b1"]["method"] == "entropy (as minmax)" and wide.encodings["b1"].bits == 32


def test_float_dtype_and_scheme_from_the_profile() -> None:
    m = conv_relu_add()
    res = calibrate(plan_for(m, 'tensor "y" { float16 }\ncalibrate { scheme: qnn_tf }\n'), m,
                    samples(2), backend="reference")
    assert res.encodings["y"].dtype == "float" and res.encodings["y"].bits == 16
    ref = reference_run(m, ["a"], samples(2))
    assert res.encodings["a"] == minmax_encoding(ref["a"], bits=8, scheme="qnn_tf")


def test_batch_size_joins_samples_on_a_dynamic_axis(tmp_path: Path) -> None:
    w = numpy_helper.from_array(
        np.random.default_rng(1).standard_normal([4, 3]).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    m = model(nodes, {"x": ["n", 4]}, {"y": ["n", 3]}, [w])
    np.savez(tmp_path / "d.npz",
             x=np.random.default_rng(2).standard_normal([5, 1, 4]).astype(np.float32))
    plan = plan_for(m)
    one = calibrate(plan, m, tmp_path / "d.npz")
    two = calibrate(plan, m, str(tmp_path / "d.npz"), batch_size=2)
    assert (one.batches, two.batches) == (5, 3)
    assert all(one.encodings[n] == two.encodings[n] for n in ("x", "h", "y", "w"))


def test_overlapped_updates_give_the_same_result() -> None:
    m = conv_relu_add()
    plan = plan_for(m, "tie output_to_input: Relu\n")
    serial = calibrate(plan, m, samples(3), quant_scheme="tf_enhanced", workers=1)
    threaded = calibrate(plan, m, samples(3), quant_scheme="tf_enhanced", workers=3)
    assert set(serial.encodings) == set(threaded.encodings)
    assert all(serial.encodings[n] == threaded.encodings[n] for n in serial.encodings)
    assert threaded.stats["r1"]["updates"] == 6


@pytest.mark.parametrize(("scheme", "workers", "spinning"), [
    ("min_max", 2, True), ("tf_enhanced", 2, False), ("percentile", 2, False),
    ("tf_enhanced", 1, True)])
def test_onnxruntime_threads_sleep_while_histograms_update(
        scheme: str, workers: int, spinning: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle onnxruntime threads spin unless calibrator updates run beside the forward pass;
    the setting never changes a result."""
    from quantspec.runtime import execute

    made: list[Any] = []
    real = execute.Executor

    def executor(*args: Any, **kwargs: Any) -> Any:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(execute, "Executor", executor)
    m = conv_relu_add()
    plan = plan_for(m)
    got = calibrate(plan, m, samples(3), quant_scheme=scheme, workers=workers)
    assert [ex.spinning for ex in made] == [spinning]
    other = calibrate(plan, m, samples(3), quant_scheme=scheme, workers=3 - workers)
    assert got.encodings == other.encodings


def test_no_data_leaves_activations_uncalibrated() -> None:
    m = conv_relu_add()
    res = calibrate(plan_for(m), m, [])
    assert "w1" in res.encodings and "a" not in res.encodings
    assert set(res.uncalibrated) == {"x", "c1", "r1", "c2", "a", "y"}
    assert res.batches == 0


def test_progress_bar_does_not_change_results(capsys: pytest.CaptureFixture[str]) -> None:
    m = conv_relu_add()
    a = calibrate(plan_for(m), m, samples(2), progress=True)
    b = calibrate(plan_for(m), m, samples(2), progress=False)
    assert all(a.encodings[n] == b.encodings[n] for n in a.encodings)


# -- errors ----------------------------------------------------------------------------------


def test_errors() -> None:
    m = conv_relu_add()
    other = conv_relu_add()
    other.graph.node[1].output[0] = "r1_renamed"
    other.graph.node[2].input[0] = "r1_renamed"
    other.graph.node[3].input[1] = "r1_renamed"
    cases = [
        (lambda: calibrate(plan_for(m), other, samples(1)), "E440", "'r1'"),
        (lambda: calibrate(plan_for(m, 'tensor "w2" { int4 signed block_size: 2 }\n'), m,
                           samples(1)), "E441", "block"),
        (lambda: calibrate(plan_for(m), m, samples(1), quant_scheme="tf_enhancd"), "E442",
         "tf_enhanced"),
        (lambda: calibrate(plan_for(m), m, samples(1), semantics="amet"), "E442", "aimet"),
        (lambda: calibrate(plan_for(m, 'tensor "a" { calibration: percentile(pct=9) }\n'), m,
                           samples(1)), "E442", "percentile"),
        (lambda: calibrate(plan_for(m, 'tensor "w1" { encodings: [[-1, 1], [-2, 2]] }\n'), m,
                           []), "E443", "'w1'"),
    ]
    for fn, code, needle in cases:
        with pytest.raises(QuantspecError) as e:
            fn()
        assert e.value.code == code
        assert needle in str(e.value) or needle in e.value.diagnostic.hint


def test_semantics_follow_the_profile_origin() -> None:
    aimet_cfg = json.dumps({"defaults": {"ops": {"is_output_quantized": "True"},
                                         "params": {"is_quantized": "True"}},
                            "params": {}, "op_type": {}, "supergroups": [],
                            "model_input": {"is_input_quantized": "True"}, "model_output": {}})
    from quantspec.lang.load import read_profile

    assert semantics_for_profile(read_profile(aimet_cfg, "cfg.json", "aimet")) == "aimet"
    assert semantics_for_profile(loads('profile "a" extends "aimet/default"\n', "a.qspec")) \
        == "aimet"
    assert semantics_for_profile(loads(BASE, "t.qspec")) == "generic"
    assert semantics_for_profile(loads(BASE + "calibrate { semantics: qnn }\n", "t.qspec")) \
        == "qnn"


# -- export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.6.1", "1.0.0", "2.0.0"])
def test_export_round_trips_through_the_encodings_reader(version: str) -> None:
    from quantspec.dialects.encodings_read import read_file

    m = conv_relu_add()
    res = calibrate(plan_for(m, "tie output_to_input: Relu\n"), m, samples(2))
    ef = read_file(res.encodings_text(version), "x.encodings")
    got = ef.by_name()
    assert set(got) == set(res.encodings)
    for name, enc in res.encodings.items():
        np.testing.assert_array_equal(got[name].scale, enc.scale)
        np.testing.assert_array_equal(got[name].offset, enc.offset)
    assert got["w1"].per_channel and len(got["w1"].scale) == 4
    if version != "2.0.0":
        assert got["w1"].kind == "param" and got["a"].kind == "activation"


# -- the command ------------------------------------------------------------------------------


def write_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    m = conv_relu_add()
    mpath = tmp_path / "net.onnx"
    onnx.save(m, mpath)
    prof = tmp_path / "p.qspec"
    prof.write_text(BASE)
    data = tmp_path / "d.npz"
    np.savez(data, x=np.stack([s["x"] for s in samples(3)]))
    return mpath, prof, data


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_writes_plan_encodings_and_report(tmp_path: Path) -> None:
    mpath, prof, data = write_inputs(tmp_path)
    outdir = tmp_path / "out"
    code, _, err = run_cli("calibrate", str(prof), "--model", str(mpath), "--data", str(data),
                           "-o", str(outdir), "--encodings-version", "2.0.0", "--no-progress")
    assert code == 0, err
    assert sorted(p.name for p in outdir.iterdir()) == \
        ["net.calibration.json", "net.encodings", "plan.json"]
    report = json.loads((outdir / "net.calibration.json").read_text())
    assert report["samples"] == 3 and report["batches"] == 3
    assert report["tensors_calibrated"] == 8 and report["backend"] == "onnxruntime"
    assert report["semantics"] == "generic"
    enc = json.loads((outdir / "net.encodings").read_text())
    assert enc["version"] == "2.0.0" and len(enc["encodings"]) == 8
    plan = json.loads((outdir / "plan.json").read_text())
    assert plan["format"] == "quantspec-plan/1"
    assert "calibrated 8 tensors" in err and "3 samples" in err


def test_cli_errors_are_diagnostics(tmp_path: Path) -> None:
    mpath, prof, data = write_inputs(tmp_path)
    code, _, err = run_cli("calibrate", str(prof), "--model", str(mpath), "--data",
                           str(tmp_path / "nope.npz"), "-o", str(tmp_path / "o"))
    assert code == 1 and "E430" in err and "Traceback" not in err
    code, _, err = run_cli("calibrate", str(prof), "--model", str(mpath), "--data", str(data),
                           "-o", str(tmp_path / "o"), "--batch-size", "2")
    assert code == 1 and "E437" in err
    (tmp_path / "same").mkdir()
    clash = tmp_path / "same" / "plan.json"
    clash.write_text("{}")
    code, _, err = run_cli("calibrate", str(prof), "--model", str(mpath), "--data", str(clash),
                           "-o", str(tmp_path / "same"))
    assert code == 1 and "E445" in err and clash.read_text() == "{}"
