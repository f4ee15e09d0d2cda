"""Executor: intermediate tensors, feed checks, backend fallback."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from models import conv_relu_add
from onnx import TensorProto, helper, numpy_helper

from quantspec.errors import QuantspecError
from quantspec.runtime.execute import Executor, input_specs


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal([1, 4, 8, 8]).astype(np.float32)


def _reference(model: onnx.ModelProto, names: list[str], x: np.ndarray) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(names, {"x": x})


def test_intermediate_tensors_match_the_reference_evaluator() -> None:
    m = conv_relu_add()
    ex = Executor(m, ["c1", "r1", "a"])
    assert ex.backend == "onnxruntime"
    assert ex.input_names == ["x"]
    x = _x()
    out = ex.run({"x": x})
    assert set(out) == {"y", "c1", "r1", "a"}
    ref = _reference(m, ["c1", "r1", "a", "y"], x)
    for name, want in zip(["c1", "r1", "a", "y"], ref, strict=True):
        np.testing.assert_allclose(out[name], want, rtol=1e-5, atol=1e-5)
    assert np.all(out["r1"] >= 0)


def test_requested_inputs_and_initializers_are_returned_as_given() -> None:
    m = conv_relu_add()
    x = _x(1)
    out = Executor(m, ["x", "w1"]).run({"x": x})
    np.testing.assert_array_equal(out["x"], x)
    w1 = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "w1"))
    np.testing.assert_array_equal(out["w1"], w1)


def test_the_callers_model_is_not_modified() -> None:
    m = conv_relu_add()
    before = m.SerializeToString()
    Executor(m, ["c1", "r1"])
    assert m.SerializeToString() == before


def test_reference_backend_agrees_with_onnxruntime() -> None:
    m = conv_relu_add()
    x = _x(2)
    ort_out = Executor(m, ["a"]).run({"x": x})
    ref = Executor(m, ["a"], backend="reference")
    assert ref.backend == "reference"
    ref_out = ref.run({"x": x})
    np.testing.assert_allclose(ref_out["a"], ort_out["a"], rtol=1e-5, atol=1e-5)


def test_falls_back_to_the_reference_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Executor, data: bytes) -> None:
        raise RuntimeError("NOT_IMPLEMENTED : Could not find an implementation for Foo")

    monkeypatch.setattr(Executor, "_ort_session", refuse)
    ex = Executor(conv_relu_add(), ["r1"])
    assert ex.backend == "reference"
    assert "NOT_IMPLEMENTED" in ex.fallback_reason
    assert np.all(ex.run({"x": _x()})["r1"] >= 0)
    with pytest.raises(QuantspecError) as e:
        Executor(conv_relu_add(), backend="onnxruntime")
    assert e.value.code == "E420"


def test_unknown_tensor_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(QuantspecError) as e:
        Executor(conv_relu_add(), ["c1x"])
    assert e.value.code == "E421"
    assert "'c1x'" in str(e.value)
    assert "c1" in e.value.diagnostic.hint


@pytest.mark.parametrize(("feeds", "code", "needle"), [
    ({}, "E422", "'x'"),
    ({"x": np.zeros([1, 4, 8, 8], np.float32), "z": np.zeros(1)}, "E423", "'z'"),
    ({"x": np.zeros([1, 4, 8, 8], np.float64)}, "E424", "float32"),
    ({"x": np.zeros([1, 4, 8, 7], np.float32)}, "E425", "[1x4x8x8]"),
])
def test_bad_feeds(feeds: dict[str, np.ndarray], code: str, needle: str) -> None:
    ex = Executor(conv_relu_add())
    with pytest.raises(QuantspecError) as e:
        ex.run(feeds)
    assert e.value.code == code
    assert needle in str(e.value)
    assert e.value.diagnostic.hint


def test_runtime_failure_names_the_node() -> None:
    shape = numpy_helper.from_array(np.array([3], dtype=np.int64), "shape")
    g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape_1")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [shape])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    ex = Executor(m)
    np.testing.assert_array_equal(ex.run({"x": np.ones(3, np.float32)})["y"], np.ones(3))
    with pytest.raises(QuantspecError) as e:
        ex.run({"x": np.ones(4, np.float32)})
    assert e.value.code == "E426"
    assert "reshape_1" in str(e.value)


def test_symbolic_dims_accept_any_size_and_specs_describe_inputs() -> None:
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    (spec,) = input_specs(m)
    assert spec.shape == [None, 3] and spec.dtype == np.float32
    ex = Executor(m, optimization="disable", prepacking=False)
    assert ex.run({"x": -np.ones([5, 3], np.float32)})["y"].shape == (5, 3)
    with pytest.raises(QuantspecError) as e:
        Executor(m, optimization="turbo")
    assert e.value.code == "E420"
