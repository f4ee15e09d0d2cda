"""Graph passes on graphs they must leave alone."""

from __future__ import annotations

from onnx import TensorProto, helper

from quantspec.compiler import compile_profile
from quantspec.graph import Graph
from quantspec.lang.parse import parse


def test_matmul_add_skips_an_omitted_weight_input() -> None:
    nodes = [helper.make_node("MatMul", ["x", ""], ["m"], name="mm"),
             helper.make_node("Relu", ["m"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    plan = compile_profile(parse("passes matmul_add\ndefaults { output { on } }\n"),
                           Graph.from_model(model))
    assert plan.fused == [] and plan.entry("y").get("quantized")
