"""End to end per vendor semantics: a vendor config read by its dialect, compiled and calibrated,
gives the encodings that vendor's calibrators give when driven by hand with the settings the
config states (float forward pass, one update per batch, parameters from their stored values).

The unit tests of ``runtime/calibrators`` check each calibrator against the vendor's formulas;
these check the wiring from a config to them, for the semantics other than AIMET 2.x (whose
conformance corpus covers it).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from quantspec.compiler import compile_profile
from quantspec.dialects import aimet, amct, vitis
from quantspec.graph import Graph
from quantspec.runtime import encoding_from_range
from quantspec.runtime.calibrate import calibrate, semantics_for_profile
from quantspec.runtime.calibrators import MinMaxCalibrator
from quantspec.runtime.calibrators.amct import IfmrCalibrator
from quantspec.runtime.calibrators.vitis import VitisCalibrator
from quantspec.runtime.encoding import Encoding


def conv_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32) * 0.1, "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Sigmoid", ["r"], ["y"], name="sig")]
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def batches(n: int = 3) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    return [{"x": (rng.standard_normal((1, 3, 6, 6)) * (i + 1)).astype(np.float32)}
            for i in range(n)]


def reference(m: onnx.ModelProto, name: str) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    ev = ReferenceEvaluator(m)
    return [np.asarray(ev.run([name], b)[0]) for b in batches()]


def run(profile: Any, m: onnx.ModelProto) -> dict[str, Encoding]:
    plan = compile_profile(profile, Graph.from_model(m))
    res = calibrate(plan, m, batches(), semantics=semantics_for_profile(profile))
    return res.encodings


def same(a: Encoding, b: Encoding) -> None:
    for field in ("scale", "offset", "min", "max"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert (a.bits, a.axis, a.scale_type) == (b.bits, b.axis, b.scale_type)


def weight(m: onnx.ModelProto, name: str) -> np.ndarray:
    return next(numpy_helper.to_array(t) for t in m.graph.initializer if t.name == name)


def test_vitis_gpu_percentile_config() -> None:
    text = json.dumps({
        "target_device": "GPU",
        "overall_quantize_config": {"method": "percentile", "percentage": 99.9,
                                    "scale_type": "float", "calib_statistic_method": "median"},
        "tensor_quantize_config": {"weights": {"method": "maxmin", "per_channel": True}},
    })
    m = conv_model()
    prof = vitis.read(text, "gpu.json")
    assert semantics_for_profile(prof) == "vitis"
    enc = run(prof, m)
    # activations: percentile 99.9 per batch, the batches' results reduced by their median
    act = VitisCalibrator(method="percentile", calib_statistic_method="median",
                          scale_type="float", percentage=99.9, bits=8, symmetric=True)
    for r in reference(m, "y"):
        act.update(r)
    same(enc["y"], act.encoding())
    # weights: maxmin per output channel, float scales, from the stored values
    w = VitisCalibrator(method="maxmin", scale_type="float", axis=0, bits=8, symmetric=True)
    same(enc["w"], w.update(weight(m, "w")).encoding())


def test_vitis_dpu_defaults_are_power_of_two() -> None:
    m = conv_model()
    enc = run(vitis.read('{"target_device": "DPU"}', "dpu.json"), m)
    assert enc, "the DPU defaults quantize something"
    for name, e in enc.items():
        k = np.log2(e.scale)
        np.testing.assert_array_equal(k, np.round(k), err_msg=name)
        assert e.scale_type == "power_of_two", name
    act = VitisCalibrator(method="diffs", calib_statistic_method="modal",
                          scale_type="power_of_two", bits=8, symmetric=True)
    for r in reference(m, "y"):
        act.update(r)
    same(enc["y"], act.encoding())


def test_amct_ifmr_activations_and_arq_weights() -> None:
    text = """
common_config : {
    arq_quantize : { channel_wise : true }
    ifmr_quantize : {
        search_range_start : 0.8
        search_range_end : 1.2
        search_step : 0.02
        max_percentile : 0.99999
        min_percentile : 0.99999
        asymmetric : true
    }
}
"""
    m = conv_model()
    prof = amct.read(text, "ptq.cfg")
    assert semantics_for_profile(prof) == "amct"
    enc = run(prof, m)
    # AMCT quantizes the inputs of quantizable layers: the Conv's data input
    ifmr = IfmrCalibrator(max_percentile=0.99999, min_percentile=0.99999,
                          search_range_start=0.8, search_range_end=1.2, search_step=0.02,
                          bits=8, symmetric=False)
    for b in batches():
        ifmr.update(b["x"])
    same(enc["x"], ifmr.encoding())
    # ARQ weights: per-channel min-max on AMCT's symmetric grid (vitis_amct.md 2.5)
    w = MinMaxCalibrator(axis=0, scheme="amct", bits=8, symmetric=True)
    same(enc["w"], w.update(weight(m, "w")).encoding())


def test_aimet1_min_max_arithmetic() -> None:
    config = {
        "defaults": {"ops": {"is_output_quantized": "True"},
                     "params": {"is_quantized": "True", "is_symmetric": "True"}},
        "params": {}, "op_type": {}, "supergroups": [],
        "model_input": {"is_input_quantized": "True"}, "model_output": {},
    }
    m = conv_model()
    prof = aimet.read(json.dumps(config), "cfg.json", version="1")
    assert semantics_for_profile(prof) == "aimet1"
    enc = run(prof, m)
    # the graph input does not depend on the quantized parameters of the forward pass
    xs = [b["x"] for b in batches()]
    lo = np.float32(min(float(x.min()) for x in xs))
    hi = np.float32(max(float(x.max()) for x in xs))
    same(enc["x"], encoding_from_range(lo, hi, 8, scheme="aimet1"))
    w = weight(m, "w")
    same(enc["w"], encoding_from_range(np.float32(w.min()), np.float32(w.max()), 8,
                                       scheme="aimet1", symmetric=True))
