"""Cross-layer equalization: equivalence, equalized ranges, high-bias absorption, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from transform_models import Builder, assert_equivalent, init, ops, randx, run

from quantspec.runtime import encoding_from_data, fake_quantize
from quantspec.transforms import apply_transforms

NO_HBA = {"cle": {"high_bias_absorption": False}}


def _codes(report):
    return [r.code for r in report.refused]


def _out_ranges(w):
    return np.abs(w).reshape(w.shape[0], -1).max(axis=1)


def _in_ranges(w):
    return np.abs(np.moveaxis(w, 1, 0)).reshape(w.shape[1], -1).max(axis=1)


def _pair(bn: bool = False, act: str | None = "Relu", seed: int = 0):
    b = Builder(seed=seed)
    x = b.conv("x", "conv1", 3, 8)
    if bn:
        x = b.bn(x, "bn1", 8)
    if act == "Relu":
        x = b.node("Relu", [x], "act")
    elif act == "Clip":
        x = b.node("Clip", [x, b.param("lo", np.float32(0)), b.param("hi", np.float32(6))],
                   "act")
    elif act:
        x = b.node(act, [x], "act")
    y = b.conv(x, "conv2", 8, 5)
    return b.model({"x": [2, 3, 7, 7]}, {y: None})


@pytest.mark.parametrize("act", ["Relu", None])
def test_pair_is_equivalent_and_equalized(act):
    m = _pair(act=act)
    out, report = apply_transforms(m, {"cle": True})
    assert_equivalent(m, out, {"x": randx(2, 3, 7, 7)})
    [eq] = report.equalized
    assert eq["layers"] == ["conv1", "conv2"] and eq["kind"] == "pair"
    # both layers end with the same range per channel: sqrt(r1 * r2)
    r1, r2 = _out_ranges(init(out, "conv1.w")), _in_ranges(init(out, "conv2.w"))
    np.testing.assert_allclose(r1, r2, rtol=1e-5)
    r1_0, r2_0 = _out_ranges(init(m, "conv1.w")), _in_ranges(init(m, "conv2.w"))
    np.testing.assert_allclose(r1, np.sqrt(r1_0 * r2_0), rtol=1e-5)
    np.testing.assert_allclose(np.sort([eq["scales"]["min"], eq["scales"]["max"]]),
                               [np.min(np.sqrt(r1_0 / r2_0)), np.max(np.sqrt(r1_0 / r2_0))],
                               rtol=1e-5)


def test_bn_pattern_is_folded_and_equivalent():
    m = _pair(bn=True)
    out, report = apply_transforms(m, {"fold_batchnorm": True, **NO_HBA})
    assert ops(out) == ["Conv", "Relu", "Conv"]
    assert report.folded[0]["by"] == "fold_batchnorm" and len(report.equalized) == 1
    assert_equivalent(m, out, {"x": randx(2, 3, 7, 7)})


def test_cle_folds_the_pattern_bn_itself():
    m = _pair(bn=True)
    out, report = apply_transforms(m, NO_HBA)
    assert [f["by"] for f in report.folded] == ["cle"] and "BatchNormalization" not in ops(out)
    assert_equivalent(m, out, {"x": randx(2, 3, 7, 7)})


def _triplet(seed: int = 1):
    b = Builder(seed=seed)
    x = b.node("Relu", [b.bn(b.conv("x", "conv1", 3, 6, k=1), "bn1", 6)], "r1")
    x = b.node("Relu", [b.bn(b.conv(x, "dw", 6, 6, group=6), "bn2", 6)], "r2")
    y = b.bn(b.conv(x, "conv3", 6, 4, k=1), "bn3", 4)
    return b.model({"x": [2, 3, 6, 6]}, {y: None})


def test_depthwise_triplet():
    m = _triplet()
    out, report = apply_transforms(m, {"fold_batchnorm": True, **NO_HBA})
    [eq] = report.equalized
    assert eq["layers"] == ["conv1", "dw", "conv3"] and eq["kind"] == "triplet"
    assert len(eq["links"]) == 2
    assert_equivalent(m, out, {"x": randx(2, 3, 6, 6)})
    r1 = _out_ranges(init(out, "conv1.w"))
    r2 = _out_ranges(init(out, "dw.w"))
    r3 = _in_ranges(init(out, "conv3.w"))
    np.testing.assert_allclose(r1, r2, rtol=1e-5)
    np.testing.assert_allclose(r2, r3, rtol=1e-5)


def test_long_chain_is_cut_into_pairs():
    b = Builder(seed=2)
    x = b.node("Relu", [b.conv("x", "c1", 3, 4)], "r1")
    x = b.node("Relu", [b.conv(x, "c2", 4, 4)], "r2")
    y = b.conv(x, "c3", 4, 2)
    m = b.model({"x": [1, 3, 5, 5]}, {y: None})
    out, report = apply_transforms(m, {"cle": True})
    assert [e["layers"] for e in report.equalized] == [["c1", "c2"], ["c2", "c3"]]
    assert_equivalent(m, out, {"x": randx(1, 3, 5, 5)})


def _hba_model():
    """conv1 (1x1 from 2 channels) -> BN -> Relu -> conv2 (no padding), on data in [0, 1).

    The BN statistics are the data's own, so the BN output is gamma * z + beta with
    z >= -sqrt(6) > -3: the bias part c = beta - 3 gamma never reaches the ReLU's zero, and
    absorbing it is exact on this data.
    """
    rng = np.random.default_rng(5)
    data = rng.uniform(0, 1, (16, 2, 6, 6)).astype(np.float32)
    b = Builder(seed=5)
    w1 = rng.standard_normal((4, 2, 1, 1))
    b1 = rng.standard_normal(4) * 0.1
    pre = np.einsum("oi,nihw->nohw", w1[:, :, 0, 0], data) + b1[None, :, None, None]
    x = b.node("Conv", ["x", b.param("conv1.w", w1), b.param("conv1.b", b1)], "c1", "conv1")
    ins = [x] + [b.param(f"bn1.{k}", v) for k, v in (
        ("gamma", rng.uniform(0.5, 1.0, 4)), ("beta", rng.uniform(4.0, 6.0, 4)),
        ("mean", pre.mean(axis=(0, 2, 3))), ("var", pre.var(axis=(0, 2, 3))))]
    x = b.node("BatchNormalization", ins, "bn1.out", "bn1")
    x = b.node("Relu", [x], "r1")
    y = b.conv(x, "conv2", 4, 3, pads=0)
    return b.model({"x": [16, 2, 6, 6]}, {y: None}), {"x": data}


def test_high_bias_absorption_is_exact_where_relu_never_clips():
    m, feeds = _hba_model()
    out, report = apply_transforms(m, {"fold_batchnorm": True, "cle": True})
    [eq] = report.equalized
    [absorbed] = eq["absorbed"]
    assert absorbed["from"] == "conv1" and absorbed["into"] == "conv2"
    assert absorbed["channels"] == 4 and absorbed["norm"] > 1.0
    assert_equivalent(m, out, feeds)
    # conv1 lost the always-positive bias part c that conv2 took over
    no_hba, _ = apply_transforms(m, {"fold_batchnorm": True, **NO_HBA})
    assert np.all(init(out, "conv1.b") < init(no_hba, "conv1.b"))
    assert not np.allclose(init(out, "conv2.b"), init(no_hba, "conv2.b"))


def test_missing_bn_skips_absorption_with_a_warning():
    m = _pair(bn=False)
    out, report = apply_transforms(m, {"cle": True})
    assert len(report.equalized) == 1 and "absorbed" not in report.equalized[0]
    assert _codes(report) == ["W612"] and "HBA" in report.refused[0].message
    assert_equivalent(m, out, {"x": randx(2, 3, 7, 7)})


def test_branched_pattern_is_refused():
    b = Builder(seed=3)
    x = b.node("Relu", [b.conv("x", "conv1", 3, 4)], "r1")
    y = b.conv(x, "conv2", 4, 4)
    z = b.node("Add", [y, x], "z")
    m = b.model({"x": [1, 3, 5, 5]}, {z: None})
    out, report = apply_transforms(m, {"cle": True})
    assert report.equalized == [] and _codes(report) == ["W610"]
    assert "single branch" in report.refused[0].message
    np.testing.assert_array_equal(init(out, "conv1.w"), init(m, "conv1.w"))


def test_relu6_is_refused_unless_converted():
    m = _pair(act="Clip")
    _, report = apply_transforms(m, {"cle": True})
    assert report.equalized == [] and _codes(report) == ["W611"]
    assert "relu6_to_relu" in report.refused[0].hint
    out, report = apply_transforms(m, {"cle": True, "relu6_to_relu": True})
    assert len(report.converted) == 1 and len(report.equalized) == 1
    x = {"x": randx(2, 3, 7, 7)}
    relu = _pair(act="Relu")  # same seed: the same weights with Relu in place of ReLU6
    assert_equivalent(relu, out, x)


def test_unsupported_activation_is_refused():
    _, report = apply_transforms(_pair(act="Sigmoid"), {"cle": True})
    assert report.equalized == [] and _codes(report) == ["W611"]
    assert "Sigmoid" in report.refused[0].message


def test_grouped_conv_is_refused():
    b = Builder(seed=4)
    x = b.node("Relu", [b.conv("x", "conv1", 4, 4)], "r1")
    y = b.conv(x, "conv2", 4, 4, group=2)
    m = b.model({"x": [1, 4, 5, 5]}, {y: None})
    _, report = apply_transforms(m, {"cle": True})
    assert report.equalized == [] and _codes(report) == ["W613"]
    assert "group=2" in report.refused[0].message


def test_skip_list():
    _, report = apply_transforms(_pair(), {"cle": {"skip": ["conv2"]}})
    assert report.equalized == [] and any("left alone" in n for n in report.notes)


def test_badly_scaled_channels_quantize_better_after_cle():
    # conv1 output channels scaled 1e-3..1e3, undone by conv2's inputs: same function, and a
    # per-tensor int8 grid that crushes the small channels before CLE
    b = Builder(seed=6)
    s = np.logspace(-3, 3, 8)
    w1 = b.rng.standard_normal((8, 3, 3, 3)) * s[:, None, None, None]
    w2 = b.rng.standard_normal((4, 8, 3, 3)) / s[None, :, None, None]
    x = b.node("Conv", ["x", b.param("w1", w1), b.param("b1", 0.1 * s)], "c1", "conv1",
               pads=[1, 1, 1, 1])
    x = b.node("Relu", [x], "r1")
    y = b.node("Conv", [x, b.param("w2", w2)], "y", "conv2", pads=[1, 1, 1, 1])
    m = b.model({"x": [4, 3, 8, 8]}, {y: None})
    out, _ = apply_transforms(m, {"cle": True})
    feeds = {"x": randx(4, 3, 8, 8)}
    ref = run(m, feeds)[0]

    def sqnr(model):
        q = _quantize_weights(model, ("w1", "w2"))
        err = run(q, feeds)[0] - ref
        return 10 * np.log10(np.sum(ref ** 2) / np.sum(err ** 2))

    assert sqnr(out) > sqnr(m) + 20


def _quantize_weights(model, names):
    from onnx import numpy_helper

    q = model.__class__()
    q.CopyFrom(model)
    for t in q.graph.initializer:
        if t.name in names:
            w = numpy_helper.to_array(t)
            enc = encoding_from_data(w, 8, symmetric=True)
            t.CopyFrom(numpy_helper.from_array(fake_quantize(w, enc), t.name))
    return q


def _mobilenet_block(act: str):
    """Inverted residual: 1x1 expand -> BN -> act -> depthwise -> BN -> act -> 1x1 -> BN, + x."""
    b = Builder(seed=7)

    def activation(x, name):
        if act == "Relu":
            return b.node("Relu", [x], name)
        return b.node("Clip", [x, b.param(f"{name}.lo", 0.0), b.param(f"{name}.hi", 6.0)], name)

    x = activation(b.bn(b.conv("x", "expand", 4, 12, k=1), "bn1", 12), "act1")
    x = activation(b.bn(b.conv(x, "dw", 12, 12, group=12), "bn2", 12), "act2")
    x = b.bn(b.conv(x, "project", 12, 4, k=1), "bn3", 4)
    y = b.node("Add", [x, "x"], "y")
    return b.model({"x": [2, 4, 6, 6]}, {y: None})


def test_full_pipeline_on_an_inverted_residual_block():
    m = _mobilenet_block("Clip")
    spec = {"fold_batchnorm": True, "relu6_to_relu": True, **NO_HBA}
    out, report = apply_transforms(m, spec)
    assert ops(out) == ["Conv", "Relu", "Conv", "Relu", "Conv", "Add"]
    assert [e["layers"] for e in report.equalized] == [["expand", "dw", "project"]]
    assert report.refused == []
    # equal to the same block with Relu in place of ReLU6, before any transform
    assert_equivalent(_mobilenet_block("Relu"), out, {"x": randx(2, 4, 6, 6)})
    _, report = apply_transforms(m, {**spec, "cle": True})
    assert len(report.equalized) == 1


def test_graph_output_between_layers_is_refused():
    b = Builder(seed=8)
    x = b.node("Relu", [b.conv("x", "conv1", 3, 4)], "r1")
    y = b.conv(x, "conv2", 4, 4)
    m = b.model({"x": [1, 3, 5, 5]}, {x: None, y: None})
    _, report = apply_transforms(m, {"cle": True})
    assert report.equalized == [] and _codes(report) == ["W610"]
    assert "graph output" in report.refused[0].message
