"""ReLU6 -> ReLU across the Clip opsets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper
from transform_models import Builder, assert_equivalent, ops, run

from quantspec.transforms import apply_transforms

SPEC = {"relu6_to_relu": True}


def _clip_model(opset: int, lo: float = 0.0, hi: float = 6.0, const_nodes: bool = False):
    b = Builder(opset=opset)
    if opset < 11:
        b.node("Clip", ["x"], "y", "clip", min=lo, max=hi)
    elif const_nodes:
        for n, v in (("lo", lo), ("hi", hi)):
            b.nodes.append(helper.make_node("Constant", [], [n], name=f"c_{n}",
                                            value=numpy_helper.from_array(np.float32(v))))
        b.node("Clip", ["x", "lo", "hi"], "y", "clip")
    else:
        b.node("Clip", ["x", b.param("lo", np.float32(lo)), b.param("hi", np.float32(hi))],
               "y", "clip")
    return b.model({"x": [2, 8]}, {"y": [2, 8]})


@pytest.mark.parametrize("opset,const_nodes", [(10, False), (11, False), (13, True), (17, False)])
def test_clip_0_6_becomes_relu(opset, const_nodes):
    m = _clip_model(opset, const_nodes=const_nodes)
    out, report = apply_transforms(m, SPEC)
    assert ops(out) == ["Relu"] and report.converted == [
        {"node": "clip", "from": "Clip(0, 6)", "to": "Relu"}]
    assert [t.name for t in out.graph.initializer] == []  # bounds pruned
    below = {"x": np.linspace(-5, 5.9, 16, dtype=np.float32).reshape(2, 8)}
    assert_equivalent(m, out, below)
    above = {"x": np.full((2, 8), 9.0, np.float32)}
    assert float(run(out, above)[0].max()) == 9.0  # no longer clipped: the point of the change


@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (-6.0, 6.0), (0.0, 6.5)])
def test_other_clips_are_left_alone(lo, hi):
    out, report = apply_transforms(_clip_model(17, lo, hi), SPEC)
    assert ops(out) == ["Clip"] and report.converted == [] and report.refused == []


def test_dynamic_bounds_are_reported():
    b = Builder()
    b.node("Clip", ["x", b.param("lo", np.float32(0)), "hi"], "y", "clip")
    m = b.model({"x": [2, 8], "hi": []}, {"y": [2, 8]})
    out, report = apply_transforms(m, SPEC)
    assert ops(out) == ["Clip"] and [r.code for r in report.refused] == ["W603"]


def test_skip_list():
    out, report = apply_transforms(_clip_model(17), {"relu6_to_relu": {"skip": ["clip"]}})
    assert ops(out) == ["Clip"] and report.converted == []


def test_off_by_default_for_vitis_defaults():
    # Vitis convert_relu6_to_relu defaults to false (vitis_amct.md 1.2)
    out, report = apply_transforms(_clip_model(17), {"relu6_to_relu": False})
    assert ops(out) == ["Clip"] and report.ran == []
