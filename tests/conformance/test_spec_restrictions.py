"""The restrictions the `tflite/int8` and `tensorrt/int8` profiles state, on real encodings.

Neither runtime runs here, so these profiles are written from documentation (each file's
header names it): TFLite's 8-bit quantization specification (its table of int8 operator
specifications) and TensorRT's quantization guide. Each test compiles the stdlib profile
against a small model, calibrates it with quantspec's runtime on random data and checks one
stated restriction on the resulting scale and zero point.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantspec.compiler import compile_profile
from quantspec.graph import Graph
from quantspec.lang.load import loads
from quantspec.runtime.calibrate import calibrate
from quantspec.runtime.encoding import Encoding, offset_to_zero_point

C = 4


def _w(name: str, *shape: int, seed: int = 0) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _c(name: str, value: Any, dtype: Any = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int]], outputs: list[str],
           inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "spec",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def _calibrated(profile: str, model: onnx.ModelProto,
                low: float = -2.0) -> tuple[dict[str, dict[str, Any]], dict[str, Encoding]]:
    """Plan entries and encodings of `model` under the stdlib `profile`, on inputs uniform in
    [low, 3]."""
    plan = compile_profile(loads(f'profile "t" extends "{profile}"\n', "<t>.qspec"),
                           Graph.from_model(model, "spec.onnx"))
    rng = np.random.default_rng(3)
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}
    feeds = [{n: rng.uniform(low, 3.0, s).astype(np.float32) for n, s in shapes.items()}
             for _ in range(2)]
    res = calibrate(plan, model, feeds)
    return {t["name"]: t for t in plan.to_json()["tensors"]}, res.encodings


def _scale_zp(enc: Encoding) -> tuple[np.ndarray, np.ndarray]:
    return enc.scale, offset_to_zero_point(enc.offset, enc.bits, enc.signed, enc.strict)


def _amax(values: np.ndarray, axis: int | None) -> np.ndarray:
    if axis is None:
        return np.array([np.abs(values).max()])
    return np.abs(np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)).max(axis=1)


# ---------------------------------------------------------------------------------------------
# TFLite 8-bit quantization specification
# ---------------------------------------------------------------------------------------------

# (ONNX op, attributes, the spec's op, (scale, zero_point) of its output)
FIXED_OUTPUTS = [
    ("Sigmoid", {}, "LOGISTIC", (1 / 256, -128)),
    ("Softmax", {"axis": -1}, "SOFTMAX", (1 / 256, -128)),
    ("Tanh", {}, "TANH", (1 / 128, 0)),
    ("LogSoftmax", {"axis": -1}, "LOG_SOFTMAX", (16 / 256, 127)),
    ("LpNormalization", {"axis": -1}, "L2_NORMALIZATION", (1 / 128, 0)),
]


@pytest.mark.parametrize(("op", "attrs", "spec_op", "expected"), FIXED_OUTPUTS,
                         ids=[f[2] for f in FIXED_OUTPUTS])
def test_tflite_fixed_output_encoding(op: str, attrs: dict[str, Any], spec_op: str,
                                      expected: tuple[float, int]) -> None:
    """"restriction: (scale, zero_point) = ..." of the spec's op, whatever calibration saw."""
    model = _model([helper.make_node(op, ["x"], ["y"], name="op", **attrs)],
                   {"x": [1, 6]}, ["y"], [])
    _, enc = _calibrated("tflite/int8", model)
    scale, zp = _scale_zp(enc["y"])
    assert (float(scale[0]), int(zp[0])) == pytest.approx(expected), spec_op
    assert enc["y"].bits == 8 and enc["y"].signed


def test_tflite_lp_normalization_with_p1_is_not_l2_normalization() -> None:
    model = _model([helper.make_node("LpNormalization", ["x"], ["y"], name="op", p=1)],
                   {"x": [1, 6]}, ["y"], [])
    entries, _ = _calibrated("tflite/int8", model)
    assert entries["y"]["fixed_range"] is None


def test_tflite_conv_weights_per_axis_symmetric_narrow() -> None:
    """CONV_2D / DEPTHWISE_CONV_2D weights: int8 [-127, 127], zero point 0, per output
    channel; biases int32 with zero point 0, per output channel."""
    w, wd = _w("w", C, C, 1, 1), _w("wd", C, 1, 3, 3, seed=1)
    model = _model([helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
                    helper.make_node("Conv", ["c", "wd", "bd"], ["y"], name="dw", group=C,
                                     pads=[1, 1, 1, 1])],
                   {"x": [1, C, 4, 4]}, ["y"], [w, _w("b", C), wd, _w("bd", C, seed=2)])
    _, enc = _calibrated("tflite/int8", model)
    for name, init in (("w", w), ("wd", wd)):
        scale, zp = _scale_zp(enc[name])
        assert enc[name].axis == 0 and not zp.any()
        np.testing.assert_allclose(scale, _amax(numpy_helper.to_array(init), 0) / 127,
                                   rtol=1e-6)
    for name in ("b", "bd"):
        scale, zp = _scale_zp(enc[name])
        assert enc[name].bits == 32 and enc[name].axis == 0 and not zp.any()


def test_tflite_fully_connected_weights_per_tensor() -> None:
    """FULLY_CONNECTED weight and bias: per-tensor granularity, weight zero point 0."""
    fw = _w("fw", 6, 5)
    model = _model([helper.make_node("Gemm", ["x", "fw", "fb"], ["y"], name="fc")],
                   {"x": [2, 6]}, ["y"], [fw, _w("fb", 5)])
    _, enc = _calibrated("tflite/int8", model)
    scale, zp = _scale_zp(enc["fw"])
    assert enc["fw"].axis is None and not zp.any()
    np.testing.assert_allclose(scale, _amax(numpy_helper.to_array(fw), None) / 127, rtol=1e-6)
    assert enc["fb"].axis is None and enc["fb"].bits == 32


def test_tflite_activations_asymmetric_int8() -> None:
    """Activations: int8 with a zero point anywhere in [-128, 127] (here: inputs >= 0, so the
    zero point sits at the bottom of the grid)."""
    model = _model([helper.make_node("Add", ["x", "x"], ["y"], name="add")],
                   {"x": [1, 6]}, ["y"], [])
    _, enc = _calibrated("tflite/int8", model, low=0.0)
    _, zp = _scale_zp(enc["x"])
    assert enc["x"].signed and enc["x"].bits == 8 and int(zp[0]) == -128


# (ONNX op, extra inputs, attributes, initializers): ops whose input and output must have the
# same scale and zero point ("restriction: Input and outputs must all have same
# scale/zero_point")
SAME_SCALE = [
    ("MaxPool", [], {"kernel_shape": [2, 2]}, []),
    ("AveragePool", [], {"kernel_shape": [2, 2]}, []),
    ("Reshape", ["shape"], {}, [_c("shape", [1, -1], np.int64)]),
    ("Transpose", [], {"perm": [0, 1, 3, 2]}, []),
    ("Squeeze", ["axes"], {}, [_c("axes", [0], np.int64)]),
    ("Slice", ["starts", "ends", "axes"], {},
     [_c("starts", [0], np.int64), _c("ends", [2], np.int64), _c("axes", [1], np.int64)]),
    ("Gather", ["idx"], {"axis": 1}, [_c("idx", [0, 2], np.int64)]),
    ("Pad", ["pads"], {}, [_c("pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64)]),
    ("Resize", ["", "scales"], {"mode": "linear"}, [_c("scales", [1.0, 1.0, 2.0, 2.0])]),
    ("SpaceToDepth", [], {"blocksize": 2}, []),
    ("Max", ["x2"], {}, []),
    ("Min", ["x2"], {}, []),
]


@pytest.mark.parametrize(("op", "extra", "attrs", "inits"), SAME_SCALE,
                         ids=[s[0] for s in SAME_SCALE])
def test_tflite_same_scale_as_input(op: str, extra: list[str], attrs: dict[str, Any],
                                    inits: list[onnx.TensorProto]) -> None:
    inputs = {"x": [1, C, 4, 4], **({"x2": [1, C, 4, 4]} if "x2" in extra else {})}
    model = _model([helper.make_node(op, ["x", *extra], ["y"], name="op", **attrs)],
                   inputs, ["y"], inits)
    entries, enc = _calibrated("tflite/int8", model)
    assert entries["y"]["shared_with"] == ["x"]
    assert enc["x"] is enc["y"]


def test_tflite_concat_inputs_share_the_output_encoding() -> None:
    """CONCATENATION: inputs and output have one scale and zero point."""
    model = _model([helper.make_node("Conv", ["x", "w0"], ["a"], name="c0"),
                    helper.make_node("Conv", ["x", "w1"], ["b"], name="c1"),
                    helper.make_node("Concat", ["a", "b"], ["y"], name="cat", axis=1)],
                   {"x": [1, C, 4, 4]}, ["y"], [_w("w0", C, C, 1, 1), _w("w1", C, C, 1, 1, seed=1)])
    _, enc = _calibrated("tflite/int8", model)
    assert enc["a"] is enc["y"] and enc["b"] is enc["y"]


# ---------------------------------------------------------------------------------------------
# TensorRT
# ---------------------------------------------------------------------------------------------


def test_tensorrt_weighted_op_inputs_and_weights() -> None:
    """Inputs of weighted ops: int8 symmetric per tensor (zero point 0, scale = amax / 127 on
    [-128, 127]); weights: per output channel, zero point 0, scale = amax / 127; outputs of
    weighted ops and biases: not quantized."""
    w, fw = _w("w", C, C, 3, 3), _w("fw", 5, C * 16)
    model = _model([helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv",
                                     pads=[1, 1, 1, 1]),
                    helper.make_node("Relu", ["c"], ["r"], name="relu"),
                    helper.make_node("Flatten", ["r"], ["f"], name="flat"),
                    helper.make_node("Gemm", ["f", "fw"], ["y"], name="fc", transB=1)],
                   {"x": [1, C, 4, 4]}, ["y"], [w, _w("b", C), fw])
    entries, enc = _calibrated("tensorrt/int8", model)
    for name in ("x", "f"):
        scale, zp = _scale_zp(enc[name])
        assert enc[name].signed and enc[name].axis is None and int(zp[0]) == 0
        assert float(enc[name].min[0]) == pytest.approx(-128 * float(scale[0]))
        assert float(enc[name].max[0]) == pytest.approx(127 * float(scale[0]))
    for name, init in (("w", w), ("fw", fw)):
        scale, zp = _scale_zp(enc[name])
        assert enc[name].axis == 0 and not zp.any()
        np.testing.assert_allclose(scale, _amax(numpy_helper.to_array(init), 0) / 127,
                                   rtol=1e-6)
    assert not any(entries[n]["quantized"] for n in ("b", "c", "r", "y"))
