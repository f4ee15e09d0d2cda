"""E207: a shared per-channel encoding needs one channel axis and one channel count."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantspec.compiler import compile_profile
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.parse import parse


def _model() -> Graph:
    """x -> Conv(w1) -> Conv(w2) -> Flatten -> MatMul(w3): w1/w2 are (4,4,1,1), w3 is (4,6)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w1", (4, 4, 1, 1)), ("w2", (4, 4, 1, 1)), ("w3", (4, 6)))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
             helper.make_node("Conv", ["c1", "w2"], ["c2"], name="conv2"),
             helper.make_node("Flatten", ["c2"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "w3"], ["y"], name="mm")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [1, 4, 1, 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return Graph.from_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


PROFILE = 'defaults {\n  output { on }\n  weight { on  symmetric  per_channel }\n}\n'


def test_weights_with_the_same_channels_share_one_encoding() -> None:
    plan = compile_profile(parse(PROFILE + 'share "w1", "w2"\n'), _model())
    w1, w2 = plan.entry("w1"), plan.entry("w2")
    assert w1 is not None and w2 is not None
    assert w1.shared_with == ["w2"] and w1.get("axis") == w2.get("axis") == 0


def test_weights_with_different_axes_cannot_share() -> None:
    with pytest.raises(QuantspecError) as err:
        compile_profile(parse(PROFILE + 'share "w1", "w3"\n', "p.qspec"), _model())
    d = err.value.diagnostics[0]
    assert d.code == "E207"
    assert "axis 0 (4 channels) against axis 1 (6 channels)" in d.message
    assert d.span is not None and d.span.file == "p.qspec" and d.span.line == 3


def test_per_tensor_weights_may_share_across_ops() -> None:
    # the group takes the first tensor's settings: w1 per tensor makes w3 per tensor too
    text = PROFILE + 'tensor "w1" { per_tensor }\nshare "w1", "w3"\n'
    plan = compile_profile(parse(text), _model())
    w3 = plan.entry("w3")
    assert w3 is not None and w3.shared_with == ["w1"] and not w3.get("per_channel")
