"""QDQ models: structure, onnx.checker, onnxruntime, and equality with numpy fake-quant.

The reference (:func:`reference`) runs the float model one node at a time in onnxruntime and
fake-quantizes every quantized tensor with the numpy kernel; the QDQ model must give the same
numbers, so zero points, axes, storage types, clips and casts are all checked by value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import pytest
from models import conv_relu_add, model
from onnx import TensorProto, helper, numpy_helper

from quantspec.compiler import compile_profile
from quantspec.compiler.plan import Entry, Plan
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import loads
from quantspec.runtime import Encoding, encoding_from_data, encoding_from_range, fake_quantize
from quantspec.runtime import qdq as qdq_mod
from quantspec.runtime.execute import Executor
from quantspec.runtime.qdq import build_qdq, build_qdq_model, storage_for
from quantspec.runtime.simulate import simulate, simulation_executor

INT8 = """profile "t"
defaults {
  output { on uint8 asymmetric }
  graph_input { on uint8 asymmetric }
  weight { on int8 symmetric per_channel }
  bias { off }
}
"""

# Every storage path in one profile: int16 input, int4 weights, int32 biases, 20-bit Conv
# outputs (emulated), strict int8 Relu output (Clip), 12-bit Add output (int16 + float clamp),
# float16 Sigmoid output (Cast).
MIXED = """profile "t"
defaults {
  output { on  bits: 6  asymmetric }
  graph_input { on  int16  symmetric }
  weight { on  int4  symmetric  per_channel }
  bias { on  int32  symmetric }
}
op Conv { output { bits: 20 } }
op Relu { output { int8  symmetric  strict } }
op Add { output { bits: 12 } }
op Sigmoid { output { float16 } }
"""


# -- helpers (also used by test_simulate.py) -----------------------------------------------------
def plan_for(m: onnx.ModelProto, text: str) -> Plan:
    return compile_profile(loads(text, "t.qspec"), Graph.from_model(m), "m.onnx")


def gemm_matmul() -> onnx.ModelProto:
    """x -> MatMul(w1) -> Add(b1) -> Relu -> Gemm(w2, b2, transB=1) -> y"""
    rng = np.random.default_rng(3)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "b1"], ["ad"], name="add"),
        helper.make_node("Relu", ["ad"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="gemm", transB=1),
    ]
    return model(nodes, {"x": [2, 8]}, {"y": [2, 5]},
                 [init("w1", 8, 6), init("b1", 6), init("w2", 5, 6), init("b2", 5)])


def feeds(m: onnx.ModelProto, n: int = 3, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        feed = {}
        for vi in m.graph.input:
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            feed[vi.name] = rng.standard_normal(shape).astype(np.float32)
        out.append(feed)
    return out


def encodings_for(m: onnx.ModelProto, plan: Plan, data: list[dict[str, np.ndarray]]
                  ) -> dict[str, Encoding]:
    """Min-max encodings of every quantized plan tensor, computed with numpy from float runs.

    Tensors tied in the plan get one Encoding object (their values pooled), as calibration does.
    """
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    outputs = {o.name for o in m.graph.output}
    quantized = [e for e in plan.entries if e.get("quantized") and not e.reason]
    acts = [e.name for e in quantized if e.name not in inits]
    ex = Executor(m, outputs=[n for n in acts if n not in outputs])
    seen: dict[str, list[np.ndarray]] = {n: [] for n in acts}
    for feed in data:
        res = ex.run(feed)
        for n in acts:
            seen[n].append(res[n])
    out: dict[str, Encoding] = {}
    for e in quantized:
        if e.name in out:
            continue
        group = [e.name, *e.shared_with]
        if e.get("dtype") == "float":
            enc = Encoding.float_cast(int(e.get("bits")))
        else:
            axis = e.get("axis") if e.get("per_channel") else None
            if axis is None:
                vals = np.concatenate([np.concatenate([a.reshape(-1) for a in seen[n]])
                                       if n in seen else inits[n].reshape(-1) for n in group])
            else:
                vals = inits[e.name]
            enc = encoding_from_data(
                vals, int(e.get("bits")), axis=axis, symmetric=bool(e.get("symmetric")),
                strict=bool(e.get("strict_symmetric")), signed=e.to_json()["signed"],
                unsigned=bool(e.get("unsigned_symmetric")))
        for n in group:
            out[n] = enc
    return out


def reference(m: onnx.ModelProto, plan: Plan, encs: Mapping[str, Encoding],
              feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The float model node by node (onnxruntime, one op at a time) with every quantized
    tensor fake-quantized by numpy."""
    entries = {e.name: e for e in plan.entries}

    def fq(name: str, v: np.ndarray) -> np.ndarray:
        e = entries.get(name)
        if name in encs and e is not None and e.get("quantized"):
            return fake_quantize(v, encs[name], rounding=str(e.get("rounding"))).astype(v.dtype)
        return v

    vals = {k: fq(k, np.asarray(v)) for k, v in feed.items()}
    for t in m.graph.initializer:
        vals[t.name] = fq(t.name, numpy_helper.to_array(t))
    for node in m.graph.node:
        names = [i for i in node.input if i]
        ins = [helper.make_tensor_value_info(i, TensorProto.FLOAT, list(vals[i].shape))
               for i in dict.fromkeys(names)]
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in node.output]
        one = helper.make_model(helper.make_graph([node], "one", ins, outs),
                                opset_imports=m.opset_import)
        res = Executor(one, prepacking=False).run({i: vals[i] for i in dict.fromkeys(names)})
        for o in node.output:
            vals[o] = fq(o, res[o])
    return vals


def assert_matches_reference(m: onnx.ModelProto, plan: Plan, encs: Mapping[str, Encoding],
                             q: onnx.ModelProto, data: list[dict[str, np.ndarray]]) -> None:
    # optimizations off: onnxruntime's QDQ transformers would rewrite float arithmetic; and the
    # session simulate() uses (optimizations on, QDQ transformers off)
    runners = [Executor(q, prepacking=False, optimization="disable"), simulation_executor(q)]
    for feed in data:
        ref = reference(m, plan, encs, feed)
        for ex in runners:
            assert ex.backend == "onnxruntime"
            got = ex.run(feed)
            for o in m.graph.output:
                np.testing.assert_allclose(got[o.name], ref[o.name], rtol=0, atol=1e-6,
                                           err_msg=o.name)


def attr(node: onnx.NodeProto, name: str) -> Any:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)


def nodes_of(q: onnx.ModelProto, op: str) -> list[onnx.NodeProto]:
    return [n for n in q.graph.node if n.op_type == op]


def inits_of(q: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}


# -- tests ---------------------------------------------------------------------------------------
def test_conv_model_checks_runs_and_equals_numpy() -> None:
    m = conv_relu_add()
    plan = plan_for(m, INT8)
    data = feeds(m)
    encs = encodings_for(m, plan, data)
    r = build_qdq(m, plan, encs)
    onnx.checker.check_model(r.model, full_check=True)
    assert r.opset == 17 and not r.skipped
    # graph outputs keep their names; the DequantizeLinear writes them
    assert [o.name for o in r.model.graph.output] == ["y"]
    producer = {o: n for n in r.model.graph.node for o in n.output}
    assert producer["y"].op_type == "DequantizeLinear"
    assert r.source["y"] == "y_float"
    # weights are int8 initializers read through DequantizeLinear, on the output-channel axis
    assert "w1" not in inits_of(r.model)
    dq_w1 = producer[r.dequantized["w1"]]
    assert dq_w1.op_type == "DequantizeLinear"
    assert inits_of(r.model)[dq_w1.input[0]].dtype == np.int8
    assert attr(dq_w1, "axis") == 0
    assert inits_of(r.model)[dq_w1.input[1]].shape == (4,)
    # every consumer reads the dequantized tensors
    conv2 = next(n for n in r.model.graph.node if n.name == "conv2")
    assert list(conv2.input[:2]) == [r.dequantized["r1"], r.dequantized["w2"]]
    assert_matches_reference(m, plan, encs, r.model, data)
    assert m.graph.node[0].input[0] == "x"  # the input model is untouched


def test_gemm_matmul_per_channel() -> None:
    m = gemm_matmul()
    plan = plan_for(m, INT8)
    data = feeds(m)
    encs = encodings_for(m, plan, data)
    r = build_qdq(m, plan, encs)
    producer = {o: n for n in r.model.graph.node for o in n.output}
    axes = {}
    for w, channels in (("w1", 6), ("w2", 5)):
        dq = producer[r.dequantized[w]]
        axes[w] = attr(dq, "axis")
        assert inits_of(r.model)[dq.input[1]].shape == (channels,)
    assert axes == {"w1": 1, "w2": 0}  # MatMul: columns; Gemm transB=1: rows (aimet.md B.6)
    assert_matches_reference(m, plan, encs, r.model, data)


def test_every_storage_path() -> None:
    m = conv_relu_add()
    plan = plan_for(m, MIXED)
    data = feeds(m)
    encs = encodings_for(m, plan, data)
    r = build_qdq(m, plan, encs)
    onnx.checker.check_model(r.model, full_check=True)
    assert r.opset == 21 and not r.contrib  # int16 input: the model was upgraded
    kinds = {n: s.type_name for n, s in r.storage.items()}
    assert kinds == {
        "x": "int16", "w1": "int4", "b1": "int32", "c1": "emulated uint20", "r1": "int8",
        "w2": "int4", "b2": "int32", "c2": "emulated uint20", "a": "uint16[12-bit]",
        "y": "float16",
    }
    stored = inits_of(r.model)
    producer = {o: n for n in r.model.graph.node for o in n.output}
    w1q = next(t for t in r.model.graph.initializer
               if t.name == producer[r.dequantized["w1"]].input[0])
    assert w1q.data_type == TensorProto.INT4
    assert stored[w1q.name].min() >= -8 and stored[w1q.name].max() <= 7
    assert [n.input[1:] for n in nodes_of(r.model, "Clip")] == [["r1_qmin", "r1_qmax"],
                                                                 ["a_min", "a_max"]]
    assert (int(stored["r1_qmin"]), int(stored["r1_qmax"])) == (-127, 127)  # strict grid
    assert [attr(n, "to") for n in nodes_of(r.model, "Cast")] == \
        [TensorProto.FLOAT16, TensorProto.FLOAT]
    assert len(nodes_of(r.model, "Round")) == 2  # the two emulated Conv outputs
    assert_matches_reference(m, plan, encs, r.model, data)


def test_four_bit_on_opset_17_uses_int8_and_clip() -> None:
    m = conv_relu_add()
    plan = plan_for(m, INT8.replace("uint8", "uint4").replace("int8", "int4"))
    data = feeds(m)
    encs = encodings_for(m, plan, data)
    r = build_qdq(m, plan, encs)
    assert r.opset == 17  # 4-bit never forces an upgrade
    assert r.storage["w1"].type_name == "int8[4-bit]"
    assert r.storage["c1"].type_name == "uint8[4-bit]" and r.storage["c1"].clip == "int"
    stored = inits_of(r.model)
    clip = next(n for n in nodes_of(r.model, "Clip") if n.input[0] == "c1_quantized")
    assert (int(stored[clip.input[1]]), int(stored[clip.input[2]])) == (0, 15)
    assert_matches_reference(m, plan, encs, r.model, data)


@pytest.mark.parametrize("bits", [8, 6, 12])
def test_per_channel_activation(bits: int) -> None:
    m = conv_relu_add()
    plan = plan_for(m, INT8)
    data = feeds(m)
    encs = encodings_for(m, plan, data)
    c1 = Executor(m, outputs=["c1"]).run(data[0])["c1"]
    encs["c1"] = encoding_from_data(c1, bits, axis=1)
    r = build_qdq(m, plan, encs)
    q = next(n for n in nodes_of(r.model, "QuantizeLinear") if n.input[0] == "c1")
    assert attr(q, "axis") == 1
    assert r.storage["c1"].clip == {8: "", 6: "int", 12: "float"}[bits]
    assert_matches_reference(m, plan, encs, r.model, data)


def test_tied_tensors_share_one_scale() -> None:
    m = conv_relu_add()
    plan = plan_for(m, INT8 + 'share "c2", "a"\n')
    assert plan.entry("a").shared_with == ["c2"]
    encs = encodings_for(m, plan, feeds(m))
    assert encs["a"] is encs["c2"]
    r = build_qdq(m, plan, encs)
    qs = {n.input[0]: n for n in nodes_of(r.model, "QuantizeLinear")}
    assert list(qs["c2"].input[1:]) == list(qs["a"].input[1:])
    assert list(qs["c2"].input[1:]) != list(qs["r1"].input[1:])
    scales = [t for t in r.model.graph.initializer if t.name.endswith("_scale")]
    assert len(scales) == len({id(e) for e in encs.values()})
    # tied tensors given different encodings: refused
    encs["a"] = encoding_from_range(-1.0, 1.0, 8)
    with pytest.raises(QuantspecError) as exc:
        build_qdq(m, plan, encs)
    assert exc.value.code == "E450"


def test_unsigned_symmetric_is_stored_unsigned() -> None:
    m = conv_relu_add()
    plan = plan_for(m, INT8)
    data = feeds(m)
    encs = encodings_for(m, plan, data)
    encs["r1"] = encoding_from_range(0.0, 4.0, 8, symmetric=True, unsigned=True)
    assert encs["r1"].signed and encs["r1"].offset[0] == 0
    r = build_qdq(m, plan, encs)
    zp = inits_of(r.model)["r1_zero_point"]
    assert zp.dtype == np.uint8 and int(zp) == 0
    sym = encoding_from_range(-2.0, 2.0, 8, symmetric=True)
    assert storage_for(sym, 17).encoding.zero_point.tolist() == [0]  # int8, zero point 0
    assert_matches_reference(m, plan, encs, r.model, data)


def test_output_read_by_another_node_keeps_its_name() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Neg", ["r"], ["y"], name="neg")]
    m = model(nodes, {"x": [6]}, {"r": [6], "y": [6]}, [])
    plan = plan_for(m, 'profile "t"\nop Relu { output { on uint8 } }\n')
    enc = encoding_from_range(0.0, 1.0, 8)
    q = build_qdq_model(m, plan, {"r": enc})
    assert [o.name for o in q.graph.output] == ["r", "y"]
    x = np.linspace(-1, 2, 6, dtype=np.float32)
    got = Executor(q).run({"x": x})
    expect = fake_quantize(np.maximum(x, 0), enc)
    np.testing.assert_array_equal(got["r"], expect)
    np.testing.assert_array_equal(got["y"], -expect)  # Neg reads the dequantized r


def test_subgraph_reads_the_dequantized_tensor() -> None:
    then = helper.make_graph([helper.make_node("Neg", ["r"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, [6])])
    other = helper.make_graph([helper.make_node("Identity", ["r"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [6])])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("If", ["c"], ["y"], name="if", then_branch=then,
                              else_branch=other)]
    m = model(nodes, {"x": [6]}, {"y": [6]}, [])
    m.graph.input.append(helper.make_tensor_value_info("c", TensorProto.BOOL, []))
    # The compiler does not look into subgraphs (it calls 'r' unused): a hand-made plan.
    entry = Entry("r", "activation", "", "relu", ["if"], False, False, [6], {"quantized": True})
    plan = Plan([entry], "p", "m", [], [], {}, {}, ["x", "c"], ["y"])
    enc = encoding_from_range(0.0, 1.0, 4)
    q = build_qdq_model(m, plan, {"r": enc})
    x = np.linspace(-1, 2, 6, dtype=np.float32)
    got = Executor(q).run({"x": x, "c": np.array(True)})
    np.testing.assert_array_equal(got["y"], -fake_quantize(np.maximum(x, 0), enc))


def test_contrib_ops_when_the_opset_cannot_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qdq_mod, "_upgrade", lambda model, target: None)
    m = conv_relu_add()
    plan = plan_for(m, INT8.replace("output { on uint8", "output { on uint16"))
    data = feeds(m)
    encs = encodings_for(m, plan, data)
    r = build_qdq(m, plan, encs)
    assert r.opset == 17 and r.contrib
    domains = {n.domain for n in r.model.graph.node if "QuantizeLinear" in n.op_type}
    assert domains == {"", "com.microsoft"}
    assert_matches_reference(m, plan, encs, r.model, data)
    with pytest.raises(QuantspecError) as exc:
        build_qdq(m, plan, encs, opset=21)
    assert exc.value.code == "E452"


def test_param_storage_float() -> None:
    m = conv_relu_add()
    plan = plan_for(m, INT8)
    data = feeds(m)
    encs = encodings_for(m, plan, data)
    r = build_qdq(m, plan, encs, param_storage="float")
    assert "w1" in inits_of(r.model) and inits_of(r.model)["w1"].dtype == np.float32
    assert any(n.input[0] == "w1" for n in nodes_of(r.model, "QuantizeLinear"))
    assert_matches_reference(m, plan, encs, r.model, data)


def test_bad_inputs() -> None:
    m = conv_relu_add()
    plan = plan_for(m, INT8)
    encs = encodings_for(m, plan, feeds(m, 1))
    with pytest.raises(QuantspecError) as exc:
        build_qdq(m, plan, encs, opset=13)  # below the model's 17
    assert exc.value.code == "E452"
    bad = dict(encs, w1=encoding_from_data(np.ones((3, 2), np.float32), 8, axis=0))
    with pytest.raises(QuantspecError) as exc:
        build_qdq(m, plan, bad)
    assert exc.value.code == "E451" and "'w1'" in str(exc.value)
    missing = {k: v for k, v in encs.items() if k != "c2"}
    r = build_qdq(m, plan, missing)
    assert r.skipped == {"c2": "no encoding"} and "c2" not in r.dequantized


def _tensor_type(q: onnx.ModelProto, name: str) -> Any:
    return next(t.data_type for t in q.graph.initializer if t.name == name)


def test_sixteen_bit_weights_and_activations() -> None:
    m = gemm_matmul()
    plan = plan_for(m, INT8.replace("uint8", "uint16").replace("int8", "int16"))
    data = feeds(m)
    encs = encodings_for(m, plan, data)
    r = build_qdq(m, plan, encs)
    assert r.opset == 21
    assert _tensor_type(r.model, "w1_quantized") == TensorProto.INT16
    assert _tensor_type(r.model, "x_zero_point") == TensorProto.UINT16
    assert_matches_reference(m, plan, encs, r.model, data)


def test_float16_model() -> None:
    w = numpy_helper.from_array(np.linspace(-1, 1, 12).reshape(3, 4).astype(np.float16), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2, 4])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    plan = plan_for(m, INT8.replace("per_channel", "per_tensor"))
    encs = {"x": encoding_from_range(-2, 2, 8), "w": encoding_from_range(-1, 1, 8, symmetric=True),
            "m": encoding_from_range(-3, 3, 8), "y": encoding_from_range(0, 3, 8)}
    r = build_qdq(m, plan, {k: v for k, v in encs.items() if plan.entry(k).get("quantized")})
    assert r.opset == 19  # float16 inputs of QuantizeLinear
    scale = inits_of(r.model)["x_scale"]
    assert scale.dtype == np.float16
    # the grid is the float16 scale's
    assert r.storage["x"].encoding.scale[0] == float(np.float16(encs["x"].scale[0]))
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float16)
    got = simulation_executor(r.model).run({"x": x})["y"]
    assert got.dtype == np.float16
    rep = simulate(m, plan, None, [{"x": x}], qdq=r)
    assert rep.ok and {t.check for t in rep.tensors if t.storage} == {"ok"}
