"""BatchNormalization folding: equivalence against onnxruntime, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from transform_models import Builder, assert_equivalent, init, ops, randx

from quantspec.transforms import apply_transforms

FOLD = {"fold_batchnorm": True}


def _codes(report):
    return [r.code for r in report.refused]


def _fold_ok(model, feeds, into: str, position: str = "preceding"):
    out, report = apply_transforms(model, FOLD)
    assert "BatchNormalization" not in ops(out)
    assert [(f["into"], f["position"]) for f in report.folded] == [(into, position)]
    assert report.refused == []
    assert_equivalent(model, out, feeds)
    return out, report


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("group", [1, 2])
def test_conv_then_bn(bias, group):
    b = Builder(seed=group)
    x = b.conv("x", "conv", 4, 6, group=group, bias=bias, strides=[2, 2])
    y = b.bn(x, "bn", 6)
    m = b.model({"x": [2, 4, 9, 9]}, {y: [2, 6, 5, 5]})
    out, _ = _fold_ok(m, {"x": randx(2, 4, 9, 9)}, "conv")
    # the graph output keeps its name; the BN parameters are gone
    assert [o.name for o in out.graph.output] == ["bn.out"]
    assert not any(t.name.startswith("bn.") for t in out.graph.initializer)


@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose_then_bn(group):
    b = Builder(seed=3)
    w = b.randn("ct.w", 4, 6 // group, 3, 3, scale=0.5)  # [Cin, Cout/group, k, k]
    x = b.node("ConvTranspose", ["x", w, b.randn("ct.b", 6)], "ct.out", "ct", group=group,
               strides=[2, 2], pads=[1, 1, 1, 1])
    y = b.bn(x, "bn", 6)
    m = b.model({"x": [1, 4, 5, 5]}, {y: None})
    _fold_ok(m, {"x": randx(1, 4, 5, 5)}, "ct")


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("bias_shape", [None, (), (5,), (1, 5)])
def test_gemm_then_bn(trans_b, bias_shape):
    b = Builder(seed=4)
    w = b.randn("fc.w", *((5, 3) if trans_b else (3, 5)))
    ins = ["x", w] + ([b.randn("fc.b", *bias_shape)] if bias_shape is not None else [])
    x = b.node("Gemm", ins, "fc.out", "fc", transB=trans_b, alpha=0.7, beta=1.3)
    y = b.bn(x, "bn", 5)
    m = b.model({"x": [4, 3]}, {y: [4, 5]})
    _fold_ok(m, {"x": randx(4, 3)}, "fc")


def test_bn_then_unpadded_conv_folds_forward():
    b = Builder(seed=5)
    x = b.bn("x", "bn", 4)
    y = b.conv(x, "conv", 4, 6, group=2, pads=0, dilations=[2, 2])
    m = b.model({"x": [2, 4, 9, 9]}, {y: None})
    _fold_ok(m, {"x": randx(2, 4, 9, 9)}, "conv", "following")


def test_bn_then_gemm_folds_forward():
    b = Builder(seed=6)
    x = b.bn("x", "bn", 3)
    y = b.node("Gemm", [x, b.randn("fc.w", 5, 3)], "y", "fc", transB=1, alpha=0.5)
    m = b.model({"x": [4, 3]}, {y: [4, 5]})
    out, _ = _fold_ok(m, {"x": randx(4, 3)}, "fc", "following")
    assert helper.get_attribute_value(
        next(a for a in out.graph.node[0].attribute if a.name == "beta")) == 1.0


def test_bn_then_padded_conv_is_refused():
    # padding zeros would stand for BN outputs beta - mean * a, which are not zero
    b = Builder(seed=7)
    x = b.bn("x", "bn", 4)
    y = b.conv(x, "conv", 4, 4, pads=1)
    m = b.model({"x": [1, 4, 6, 6]}, {y: None})
    out, report = apply_transforms(m, FOLD)
    assert ops(out) == ["BatchNormalization", "Conv"] and report.folded == []
    assert _codes(report) == ["W601"]
    assert report.refused[0].nodes == ["bn"]


def test_bn_with_zero_shift_folds_into_padded_conv():
    # a pure scale (beta == mean * a) keeps the padding zeros zero: folding forward is exact
    b = Builder(seed=8)
    gamma, mean, var = np.array([1.5, 0.5]), np.array([0.2, -0.4]), np.array([1.0, 4.0])
    a = gamma / np.sqrt(var + 1e-5)
    ins = ["x"] + [b.param(f"bn.{k}", v) for k, v in
                   (("g", gamma), ("b", mean * a), ("m", mean), ("v", var))]
    x = b.node("BatchNormalization", ins, "bn.out", "bn")
    y = b.conv(x, "conv", 2, 3, pads=1)
    m = b.model({"x": [1, 2, 5, 5]}, {y: None})
    _fold_ok(m, {"x": randx(1, 2, 5, 5)}, "conv", "following")


def test_branched_conv_output_is_refused():
    b = Builder(seed=9)
    x = b.conv("x", "conv", 3, 4)
    y = b.bn(x, "bn", 4)
    z = b.node("Add", [y, x], "z")  # the conv output has a second reader
    m = b.model({"x": [1, 3, 5, 5]}, {z: None})
    out, report = apply_transforms(m, FOLD)
    assert "BatchNormalization" in ops(out)
    assert _codes(report) == ["W600"] and "also read elsewhere" in report.refused[0].message
    assert report.refused[0].nodes == ["bn", "conv"]


def test_dynamic_bn_params_are_refused():
    b = Builder(seed=10)
    x = b.conv("x", "conv", 3, 4)
    ins = [x, "gamma"] + [b.param(f"bn.{k}", np.ones(4)) for k in ("b", "m", "v")]
    y = b.node("BatchNormalization", ins, "y", "bn")
    m = b.model({"x": [1, 3, 5, 5], "gamma": [4]}, {y: None})
    _, report = apply_transforms(m, FOLD)
    assert _codes(report) == ["W600"] and "not static" in report.refused[0].message


def test_bn_with_nothing_to_fold_into_is_refused():
    b = Builder(seed=11)
    x = b.node("Relu", ["x"], "r")
    y = b.bn(x, "bn", 3)
    m = b.model({"x": [1, 3, 4, 4]}, {y: None})
    _, report = apply_transforms(m, FOLD)
    assert _codes(report) == ["W600"] and "reads a Relu" in report.refused[0].message


def test_shared_weights_are_copied_not_changed_twice():
    b = Builder(seed=12)
    w = b.randn("w", 4, 3, 3, 3)
    x1 = b.node("Conv", ["x", w], "c1", "conv1", pads=[1, 1, 1, 1])
    x2 = b.node("Conv", ["x", w], "c2", "conv2", pads=[1, 1, 1, 1])
    y = b.node("Add", [b.bn(x1, "bn1", 4), b.bn(x2, "bn2", 4)], "y")
    m = b.model({"x": [1, 3, 6, 6]}, {y: None})
    out, report = apply_transforms(m, FOLD)
    assert len(report.folded) == 2 and "BatchNormalization" not in ops(out)
    assert_equivalent(m, out, {"x": randx(1, 3, 6, 6)})


def _two_bns():
    b = Builder(seed=13)
    x = b.bn(b.conv("x", "conv1", 3, 4), "bn1", 4)
    y = b.bn(b.conv(x, "conv2", 4, 4), "bn2", 4)
    return b.model({"x": [1, 3, 6, 6]}, {y: None})


def test_skip_list_by_layer_name_amct_form():
    # AMCT do_fusion + skip_fusion_layers arrive as pairs (docs/dialects_vitis_amct.md)
    spec = {"fold_batchnorm": [["enabled", True], ["skip", ["conv1"]]]}
    out, report = apply_transforms(_two_bns(), spec)
    assert [f["batchnorm"] for f in report.folded] == ["bn2"]
    assert ops(out).count("BatchNormalization") == 1
    assert any("bn1 left alone" in n for n in report.notes)


def test_skip_glob_and_unknown_name():
    spec = {"fold_batchnorm": {"skip": ["bn*", "nonexistent"]}}
    _, report = apply_transforms(_two_bns(), spec)
    assert report.folded == []
    assert _codes(report) == ["W602"] and "nonexistent" in report.refused[0].message


def test_disabled_fold_does_nothing():
    m = _two_bns()
    out, report = apply_transforms(m, {"fold_batchnorm": [["enabled", False], ["skip", []]]})
    assert ops(out) == ops(m) and report.ran == []


def test_training_mode_bn_is_refused():
    b = Builder(seed=14)
    x = b.conv("x", "conv", 3, 4)
    ins = [x] + [b.param(f"bn.{k}", np.ones(4)) for k in ("g", "b", "m", "v")]
    b.nodes.append(helper.make_node("BatchNormalization", ins, ["y", "rm", "rv"], name="bn",
                                    training_mode=1))
    m = b.model({"x": [1, 3, 5, 5]}, {"y": None})
    _, report = apply_transforms(m, FOLD)
    assert _codes(report) == ["W600"] and "training mode" in report.refused[0].message


def test_input_model_is_not_modified():
    m = _two_bns()
    before = m.SerializeToString()
    apply_transforms(m, FOLD)
    assert m.SerializeToString() == before


def test_conv_weights_scaled_per_output_channel():
    b = Builder(seed=15)
    x = b.conv("x", "conv", 2, 3, bias=False)
    y = b.bn(x, "bn", 3)
    m = b.model({"x": [1, 2, 4, 4]}, {y: None})
    out, _ = apply_transforms(m, FOLD)
    a = init(m, "bn.gamma") / np.sqrt(init(m, "bn.var") + 1e-3)
    np.testing.assert_allclose(init(out, "conv.w"), init(m, "conv.w") * a[:, None, None, None],
                               rtol=1e-6)
    np.testing.assert_allclose(init(out, "conv.bias"),
                               init(m, "bn.beta") - init(m, "bn.mean") * a, rtol=1e-5)


def test_conv1d_and_bn_on_both_sides():
    # BN -> Conv1d (unpadded) -> BN: the second BN folds back, the first forward
    b = Builder(seed=16)
    x = b.bn("x", "bn0", 4)
    w = b.randn("conv.w", 6, 4, 3)
    x = b.node("Conv", [x, w, b.randn("conv.b", 6)], "c", "conv", pads=[0, 0])
    y = b.bn(x, "bn1", 6)
    m = b.model({"x": [2, 4, 10]}, {y: None})
    out, report = apply_transforms(m, FOLD)
    assert ops(out) == ["Conv"]
    assert [(f["batchnorm"], f["position"]) for f in report.folded] == [
        ("bn0", "following"), ("bn1", "preceding")]
    assert_equivalent(m, out, {"x": randx(2, 4, 10)})


def test_initializers_listed_as_inputs_are_weights():
    # IR < 4 exports list every initializer as a graph input; the folded BN's go with it
    b = Builder(seed=17)
    y = b.bn(b.conv("x", "conv", 3, 4), "bn", 4)
    m = b.model({"x": [1, 3, 5, 5]}, {y: None})
    m.ir_version = 3
    m.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                         for t in m.graph.initializer)
    out, report = apply_transforms(m, FOLD)
    assert len(report.folded) == 1
    assert sorted(i.name for i in out.graph.input) == sorted(
        ["x", "conv.w", "conv.b"])
    assert_equivalent(m, out, {"x": randx(1, 3, 5, 5)})


def test_a_subgraph_reading_the_conv_output_blocks_the_fold():
    b = Builder(seed=18)
    x = b.conv("x", "conv", 3, 4)
    y = b.bn(x, "bn", 4)
    then = helper.make_graph([helper.make_node("Identity", [x], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", 1, None)])
    other = helper.make_graph([helper.make_node("Identity", [y], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", 1, None)])
    b.nodes.append(helper.make_node("If", ["cond"], ["z"], name="if", then_branch=then,
                                    else_branch=other))
    g = helper.make_graph(b.nodes, "t", [helper.make_tensor_value_info("x", 1, [1, 3, 5, 5]),
                                         helper.make_tensor_value_info("cond", 9, [])],
                          [helper.make_tensor_value_info("z", 1, None)], b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    _, report = apply_transforms(m, FOLD)
    assert report.folded == [] and "also read elsewhere" in report.refused[0].message
