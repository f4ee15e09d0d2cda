"""``calibration: input_x_weight``: int32 bias encodings derived from input and weight scales.

Checked against onnxruntime's ``quantize_static`` (its bias scale is ``input_scale *
weight_scale`` in float32, zero point 0) and against onnxruntime's QDQ fusion: with derived bias
scales a QDQ Conv becomes an integer kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantspec.compiler import compile_profile
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import loads
from quantspec.runtime.calibrate import calibrate
from quantspec.runtime.encoding import offset_to_zero_point
from quantspec.runtime.qdq import build_qdq_model

PROFILE = """profile "t"
defaults {
  graph_input { on  uint8  asymmetric }
  output { on  uint8  asymmetric }
  weight { on  int8  symmetric  narrow_range  per_channel }
  bias { on  int32  symmetric  calibration: input_x_weight }
}
calibrate { semantics: ort }
tensor "mb" { on  int32  symmetric  calibration: input_x_weight }
"""


def conv_gemm_model(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b"),
        numpy_helper.from_array(rng.standard_normal((5, 8)).astype(np.float32), "fw"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "fb"),
        numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "mw"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "mb"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
        helper.make_node("MatMul", ["y", "mw"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "mb"], ["z"], name="mm_bias"),
    ]
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def feeds(n: int = 4, seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(n)]


def run(m: onnx.ModelProto, text: str = PROFILE) -> Any:
    plan = compile_profile(loads(text, "t.qspec"), Graph.from_model(m))
    return plan, calibrate(plan, m, feeds())


def test_bias_scale_is_input_scale_times_weight_scale() -> None:
    m = conv_gemm_model()
    _, res = run(m)
    enc = res.encodings
    for bias, x, w in (("b", "x", "w"), ("fb", "f", "fw"), ("mb", "y", "mw")):
        x_scale = enc[x].scale
        assert x_scale.size == 1
        want = (np.float32(x_scale[0]) * enc[w].scale.astype(np.float32)).astype(np.float64)
        got = enc[bias]
        np.testing.assert_array_equal(got.scale, want)
        assert got.bits == 32 and got.symmetric and got.signed
        np.testing.assert_array_equal(got.offset, -(2.0**31))
        assert got.axis == (0 if want.size > 1 else None)
        assert res.stats[bias]["method"] == "input_x_weight"
    assert "f" in enc


def test_ort_scheme() -> None:
    from quantspec.runtime import encoding_from_range

    # compute_scale_zp: float64 scale stored as float32, numpy half-to-even zero point
    e = encoding_from_range(-1.0, 2.0, 8, scheme="ort")
    assert float(e.scale[0]) == float(np.float32(3.0 / 255)) and e.offset[0] == -85
    w = encoding_from_range([-0.5, -2.0], [1.0, 0.25], 8, scheme="ort", symmetric=True,
                            strict=True, axis=0)
    np.testing.assert_array_equal(w.scale, np.float32([2.0 / 254, 4.0 / 254]))
    np.testing.assert_array_equal(w.offset, [-127, -127])
    z = encoding_from_range(0.0, 0.0, 8, scheme="onnxruntime")
    assert (float(z.scale[0]), float(z.offset[0])) == (1.0, 0.0)


def test_matches_onnxruntime_quantize_static(tmp_path: Any) -> None:
    quantization = pytest.importorskip("onnxruntime.quantization")
    m = conv_gemm_model()
    _, res = run(m)
    src, dst = tmp_path / "m.onnx", tmp_path / "q.onnx"
    onnx.save(m, src)

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds())

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    quantization.quantize_static(
        str(src), str(dst), Reader(), quant_format=quantization.QuantFormat.QDQ,
        per_channel=True, activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8, op_types_to_quantize=["Conv", "Gemm"])
    q = onnx.load(dst)
    inits = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    ort_scale: dict[str, np.ndarray] = {}
    ort_zp: dict[str, np.ndarray] = {}
    for n in q.graph.node:
        if n.op_type == "DequantizeLinear":
            name = n.output[0].removesuffix("_DequantizeLinear_Output")
            ort_scale[name] = inits[n.input[1]]
            ort_zp[name] = inits[n.input[2]] if len(n.input) > 2 else np.zeros(1)
    # every tensor onnxruntime quantized, quantspec calibrated to the same float32 scale
    assert sorted(ort_scale) == ["b", "c", "f", "fb", "fw", "w", "x", "y"]
    for key in ort_scale:
        name = key
        got = res.encodings[name]
        np.testing.assert_array_equal(got.scale.astype(np.float32),
                                      ort_scale[key].reshape(-1), err_msg=name)
        zp = offset_to_zero_point(got.offset, got.bits, got.signed, got.strict)
        np.testing.assert_array_equal(zp, np.asarray(ort_zp[key]).reshape(-1), err_msg=name)


def test_qdq_conv_fuses_into_an_integer_kernel(tmp_path: Any) -> None:
    ort = pytest.importorskip("onnxruntime")
    m = conv_gemm_model()
    plan, res = run(m)
    qdq = build_qdq_model(m, plan, res.encodings)
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(qdq.SerializeToString(), opts,
                         providers=["CPUExecutionProvider"])
    ops = {n.op_type for n in onnx.load(tmp_path / "opt.onnx").graph.node}
    assert "QLinearConv" in ops, sorted(ops)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (PROFILE.replace("graph_input { on  uint8  asymmetric }", "graph_input { off }"),
         "input 'x'"),
        (PROFILE.replace("weight { on  int8  symmetric  narrow_range  per_channel }",
                         "weight { off }"), "weight 'w'"),
        (PROFILE.replace("bias { on  int32  symmetric", "bias { on  int32  asymmetric"),
         "symmetric"),
        (PROFILE + 'tensor "c" { calibration: input_x_weight }\n', "not to activations"),
    ],
)
def test_errors(text: str, needle: str) -> None:
    with pytest.raises(QuantspecError) as err:
        run(conv_gemm_model(), text)
    assert err.value.code == "E444" and needle in str(err.value)
    assert err.value.diagnostic.hint
    # the position is the rule that asked for input_x_weight
    span = err.value.span
    assert span is not None and span.file == "t.qspec" and span.line
    line = text.splitlines()[span.line - 1]
    assert "input_x_weight" in line or "bias" in line, line


@pytest.mark.parametrize("command", ["calibrate", "simulate"])
def test_every_semantics_is_a_cli_choice(command: str) -> None:
    import argparse
    import importlib

    from quantspec.runtime.calibrate import SEMANTICS

    parser = argparse.ArgumentParser()
    importlib.import_module(f"quantspec.commands.{command}").add_arguments(parser)
    action = next(a for a in parser._actions if a.dest == "semantics")
    assert set(action.choices) == {"auto", *SEMANTICS}
