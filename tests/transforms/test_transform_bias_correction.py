"""Empirical bias correction on calibration data."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper
from transform_models import Builder, init, run

from quantspec.compiler import compile_profile
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import loads
from quantspec.runtime import encoding_from_data, fake_quantize
from quantspec.transforms import apply_transforms

BC = {"bias_correction": True}


def _model(fixed_batch: int | str = "n"):
    b = Builder(seed=21)
    c1 = b.conv("x", "conv1", 3, 8)
    r1 = b.node("Relu", [c1], "r1")
    c2 = b.conv(r1, "conv2", 8, 6)
    return b.model({"x": [fixed_batch, 3, 6, 6]}, {c1: None, c2: None})


def _data(n: int = 24, seed: int = 0) -> dict[str, np.ndarray]:
    # a non-zero input mean: weight rounding errors then shift the output means
    return {"x": np.random.default_rng(seed).uniform(0, 1, (n, 3, 6, 6)).astype(np.float32)}


def _quantized(model, bits: int, per_channel: bool):
    """The model with its Conv weights fake-quantized (symmetric, min-max)."""
    q = model.__class__()
    q.CopyFrom(model)
    for t in q.graph.initializer:
        if t.name.endswith(".w"):
            w = numpy_helper.to_array(t)
            enc = encoding_from_data(w, bits, symmetric=True, axis=0 if per_channel else None)
            t.CopyFrom(numpy_helper.from_array(fake_quantize(w, enc), t.name))
    return q


def _channel_means(y):
    return y.mean(axis=(0, 2, 3))


def _plan_json(bits: int, per_channel: bool) -> dict:
    """A plan JSON (the shape Plan.to_json writes) with weights only."""
    return {"format": "quantspec-plan/1", "transforms": {"bias_correction": True}, "tensors": [
        {"name": n, "quantized": True, "dtype": "int", "bits": bits, "symmetric": True,
         "per_channel": per_channel, "axis": 0 if per_channel else None}
        for n in ("conv1.w", "conv2.w")]}


@pytest.mark.parametrize("bits,per_channel", [(4, False), (8, True)])
def test_corrected_means_move_toward_float(bits, per_channel):
    m, data = _model(), _data()
    plan = _plan_json(bits, per_channel)
    out, report = apply_transforms(m, None, data=data, plan=plan)  # spec taken from the plan
    assert report.ran == ["bias_correction"]
    assert [c["layer"] for c in report.corrected] == ["conv1", "conv2"]
    assert all(c["samples"] == 24 and c["shift_norm"] > 0 for c in report.corrected)
    ref = run(m, data)
    before = run(_quantized(m, bits, per_channel), data)
    after = run(_quantized(out, bits, per_channel), data)
    # conv1 reads the float input in both: its corrected mean is the float mean
    np.testing.assert_allclose(_channel_means(after[0]), _channel_means(ref[0]), atol=1e-4)
    for r, b0, a in zip(ref, before, after, strict=True):
        gap_before = np.linalg.norm(_channel_means(b0) - _channel_means(r))
        gap_after = np.linalg.norm(_channel_means(a) - _channel_means(r))
        assert gap_after < 0.5 * gap_before


def test_default_encoding_is_int8_symmetric_per_channel():
    m, data = _model(), _data()
    out, report = apply_transforms(m, BC, data=data)
    assert {c["weight_encoding"] for c in report.corrected} == {"int8 symmetric per-channel"}
    after = run(_quantized(out, 8, True), data)
    np.testing.assert_allclose(_channel_means(after[0]), _channel_means(run(m, data)[0]),
                               atol=1e-5)
    # weights untouched: only biases move
    np.testing.assert_array_equal(init(out, "conv1.w"), init(m, "conv1.w"))


def test_plan_object_from_a_profile():
    m, data = _model(), _data()
    prof = loads('profile "t"\ndefaults { weight { on int4 symmetric per_tensor } }\n'
                 "transform { bias_correction: on }\n")
    plan = compile_profile(prof, Graph.from_model(m), "m")
    _, report = apply_transforms(m, plan.transforms, data=data, plan=plan)
    assert {c["weight_encoding"] for c in report.corrected} == {"int4 symmetric per-tensor"}


def test_gemm_bias_is_corrected():
    b = Builder(seed=22)
    y = b.node("Gemm", ["x", b.randn("fc.w", 6, 5), b.randn("fc.b", 6)], "y", "fc", transB=1,
               beta=0.5)
    m = b.model({"x": ["n", 5]}, {y: None})
    data = {"x": np.random.default_rng(1).uniform(0, 2, (40, 5)).astype(np.float32)}
    out, report = apply_transforms(m, BC, data=data, plan=None)
    assert [c["layer"] for c in report.corrected] == ["fc"]
    q = out.__class__()
    q.CopyFrom(out)
    w = init(out, "fc.w")
    enc = encoding_from_data(w, 8, symmetric=True, axis=0)
    for t in q.graph.initializer:
        if t.name == "fc.w":
            t.CopyFrom(numpy_helper.from_array(fake_quantize(w, enc), "fc.w"))
    np.testing.assert_allclose(run(q, data)[0].mean(axis=0), run(m, data)[0].mean(axis=0),
                               atol=1e-5)


def test_feeds_iterable_equals_arrays():
    m, data = _model(), _data()
    feeds = [{"x": data["x"][i:i + 5]} for i in range(0, 24, 5)]
    a, _ = apply_transforms(m, BC, data=data)
    b, _ = apply_transforms(m, BC, data=feeds)
    np.testing.assert_allclose(init(a, "conv2.b"), init(b, "conv2.b"), atol=1e-5)


def test_fixed_batch_drops_the_remainder():
    _, report = apply_transforms(_model(fixed_batch=4), BC, data=_data(10))
    assert report.corrected[0]["samples"] == 8
    assert any("2 sample(s) dropped" in n for n in report.notes)


@pytest.mark.parametrize("data,message", [
    ({"y": np.zeros((2, 3, 6, 6), np.float32)}, "not a model input"),
    ({}, "lacks model input 'x'"),
    ({"x": np.zeros((2, 3, 6, 6), np.int64)}, "dtype int64"),
    ({"x": np.zeros((0, 3, 6, 6), np.float32)}, "no samples"),
    (42, "cannot read calibration data"),
])
def test_bad_data_is_an_error(data, message):
    with pytest.raises(QuantspecError, match=message) as exc:
        apply_transforms(_model(), BC, data=data)
    assert exc.value.code == "E603"


def test_too_few_samples_for_a_fixed_batch():
    with pytest.raises(QuantspecError, match="exactly 4 samples"):
        apply_transforms(_model(fixed_batch=4), BC, data=_data(3))


def test_without_data_it_is_skipped_with_a_warning():
    out, report = apply_transforms(_model(), BC)
    assert report.ran == [] and [r.code for r in report.refused] == ["W620"]


def test_float_weights_and_missing_bias_are_reported():
    b = Builder(seed=23)
    y = b.conv(b.conv("x", "conv1", 3, 4), "conv2", 4, 4, bias=False)
    m = b.model({"x": ["n", 3, 5, 5]}, {y: None})
    plan = {"format": "quantspec-plan/1", "tensors": [
        {"name": "conv1.w", "quantized": False}, {"name": "conv2.w", "quantized": True}]}
    data = {"x": np.ones((2, 3, 5, 5), np.float32)}
    _, report = apply_transforms(m, BC, data=data, plan=plan)
    assert report.corrected == []
    assert [(r.code, r.nodes) for r in report.refused] == [("W621", ["conv2"]),
                                                           ("W621", ["conv1"])]


def test_weight_quantizer_callback_replaces_the_plan():
    m, data = _model(), _data()
    seen = []

    def quantizer(name, w):
        seen.append(name)
        if name == "conv2.w":
            return None  # keep float
        return fake_quantize(w, encoding_from_data(w, 4, symmetric=True))

    out, report = apply_transforms(m, BC, data=data, weight_quantizer=quantizer,
                                   plan=_plan_json(8, True))
    assert seen == ["conv1.w", "conv2.w"]
    assert [(c["layer"], c["weight_encoding"]) for c in report.corrected] == [
        ("conv1", "weight_quantizer")]
    ref, _ = apply_transforms(m, BC, data=data, plan=_plan_json(4, False))
    np.testing.assert_allclose(init(out, "conv1.b"), init(ref, "conv1.b"), atol=1e-6)
    np.testing.assert_array_equal(init(out, "conv2.b"), init(m, "conv2.b"))


def test_plan_power_of_two_and_narrow_range():
    m, data = _model(), _data()
    plan = _plan_json(8, False)
    for t in plan["tensors"]:
        t.update(scale_type="power_of_two", narrow_range=True)
    _, report = apply_transforms(m, BC, data=data, plan=plan)
    assert {c["weight_encoding"] for c in report.corrected} == {
        "int8 symmetric per-tensor power-of-two"}
