"""Small hand-built ONNX models for the transform tests, and an onnxruntime runner."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


class Builder:
    """Collects nodes and initializers; ``model()`` wraps them in a checked ModelProto."""

    def __init__(self, seed: int = 0, opset: int = 17) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.opset = opset

    def param(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def randn(self, name: str, *shape: int, scale: float = 1.0) -> str:
        return self.param(name, self.rng.standard_normal(shape) * scale)

    def node(self, op: str, inputs: Sequence[str], output: str, name: str = "",
             **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=name or output,
                                           **attrs))
        return output

    def conv(self, x: str, name: str, cin: int, cout: int, k: int = 3, group: int = 1,
             bias: bool = True, pads: int | None = None, scale: float = 0.5,
             **attrs: object) -> str:
        w = self.randn(f"{name}.w", cout, cin // group, k, k, scale=scale)
        ins = [x, w] + ([self.randn(f"{name}.b", cout, scale=0.1)] if bias else [])
        p = k // 2 if pads is None else pads
        return self.node("Conv", ins, f"{name}.out", name, group=group,
                         pads=[p, p, p, p], **attrs)

    def bn(self, x: str, name: str, c: int, beta_scale: float = 0.5) -> str:
        gamma = self.param(f"{name}.gamma", self.rng.uniform(0.5, 1.5, c))
        beta = self.param(f"{name}.beta", self.rng.standard_normal(c) * beta_scale)
        mean = self.param(f"{name}.mean", self.rng.standard_normal(c) * 0.3)
        var = self.param(f"{name}.var", self.rng.uniform(0.5, 2.0, c))
        return self.node("BatchNormalization", [x, gamma, beta, mean, var], f"{name}.out",
                         name, epsilon=1e-3)

    def model(self, inputs: dict[str, list[int | str]],
              outputs: dict[str, list[int | str] | None]) -> onnx.ModelProto:
        g = helper.make_graph(
            self.nodes, "t",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
             for n, s in outputs.items()],
            self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 8
        if all(s is not None for s in outputs.values()):  # the checker wants output shapes
            onnx.checker.check_model(m)
        return m


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def assert_equivalent(a: onnx.ModelProto, b: onnx.ModelProto, feeds: dict[str, np.ndarray],
                      rtol: float = 1e-4) -> None:
    """Same outputs within ``rtol`` relative to each output's largest magnitude."""
    for ya, yb in zip(run(a, feeds), run(b, feeds), strict=True):
        scale = float(np.max(np.abs(ya))) or 1.0
        np.testing.assert_allclose(yb, ya, rtol=rtol, atol=rtol * scale)


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def init(model: onnx.ModelProto, name: str) -> np.ndarray:
    for t in model.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    raise KeyError(name)


def randx(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
