"""quantspec.diff and ``quantspec diff``: per tensor, what differs between two profiles' plans."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from models import _init, conv_relu_add, model
from onnx import helper

from quantspec.cli import main
from quantspec.compiler import Plan, compile_profile
from quantspec.diff import BUILTIN, DIFF_FIELDS, diff_plans
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import load, loads

BASE = ("defaults { output { on int8 asymmetric } weight { on int8 symmetric per_channel } "
        "bias { off } }\n")
AIMET = {
    "defaults": {"ops": {"is_output_quantized": "True", "is_symmetric": "False"},
                 "params": {"is_quantized": "True", "is_symmetric": "True"},
                 "per_channel_quantization": "True"},
    "params": {"bias": {"is_quantized": "False"}},
    "op_type": {},
    "supergroups": [],
    "model_input": {"is_input_quantized": "True"},
    "model_output": {},
}


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph.from_model(conv_relu_add(), "m.onnx")


def plan(text: str, graph: Graph, file: str = "p.qspec", **opts: object) -> Plan:
    return compile_profile(loads(text, file, **opts), graph, "m.onnx")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out, err), out.getvalue(), err.getvalue()


def test_identical_plans(graph: Graph) -> None:
    assert diff_plans(plan(BASE, graph), plan(BASE, graph, "q.qspec")) == []


def test_fields_and_rules_on_each_side(graph: Graph) -> None:
    b = BASE + 'op Conv { output { int16 } }\nlayer "conv2" { weight { per_tensor } }\n'
    diffs = diff_plans(plan(BASE, graph, "a.qspec"), plan(b, graph, "b.qspec"))
    got = {d.name: [(f.field, f.a, f.b) for f in d.fields] for d in diffs}
    assert got == {"c1": [("bits", 8, 16)], "c2": [("bits", 8, 16)],
                   "w2": [("per_channel", True, False)]}
    (bits,) = next(d for d in diffs if d.name == "c1").fields
    assert bits.why_a == "a.qspec:1:12 (defaults output)"
    assert bits.why_b == "b.qspec:2:11 (op Conv output)"
    w2 = next(d for d in diffs if d.name == "w2")
    assert w2.kind == "weight" and w2.fields[0].why_b == 'b.qspec:3:17 (layer "conv2" weight)'


def test_effective_comparison(graph: Graph) -> None:
    # y off on one side: only 'quantized' differs there, not bits
    b = BASE + "op Sigmoid { output { off int16 } }\n"
    (d,) = diff_plans(plan(BASE, graph), plan(b, graph))
    assert d.name == "y" and [f.field for f in d.fields] == ["quantized"]
    # biases are off on both sides: their other fields take no effect
    b2 = BASE + "defaults { bias { int32 } }\n"
    assert diff_plans(plan(BASE, graph), plan(b2, graph)) == []
    raw = diff_plans(plan(BASE, graph), plan(b2, graph), effective=False)
    assert {d.name for d in raw} == {"b1", "b2"}
    assert diff_plans(plan(BASE, graph), plan(b, graph), fields=["bits"]) == []


def test_builtin_default_and_unknown_field(graph: Graph) -> None:
    a = "defaults { output { on int8 } }\n"
    b = a + "op Relu { output { symmetric } }\n"
    (d,) = diff_plans(plan(a, graph), plan(b, graph), fields=["symmetric"])
    assert (d.name, d.fields[0].why_a) == ("r1", BUILTIN)
    with pytest.raises(QuantspecError) as info:
        diff_plans(plan(a, graph), plan(b, graph), fields=["symetric"])
    assert info.value.code == "E241" and "symmetric" in info.value.diagnostic.hint
    assert "shared_with" in DIFF_FIELDS


def test_different_models_are_refused(graph: Graph) -> None:
    other = compile_profile(loads(BASE, "p.qspec"), graph, "other.onnx")
    with pytest.raises(QuantspecError) as info:
        diff_plans(plan(BASE, graph), other)
    assert info.value.code == "E240"


def test_graph_passes_differ() -> None:
    import onnx.numpy_helper as nh

    bias = nh.from_array(np.zeros(4, np.float32), "bias")
    m = model([helper.make_node("MatMul", ["x", "w"], ["mm"], name="mm"),
               helper.make_node("Add", ["mm", "bias"], ["y"], name="add")],
              {"x": [1, 4]}, {"y": [1, 4]}, [_init("w", 4, 4), bias])
    g = Graph.from_model(m, "m.onnx")
    a = "defaults { output { on int8 } }\n"
    diffs = diff_plans(plan(a, g), plan("passes matmul_add\n" + a, g))
    assert [(d.name, d.only_in) for d in diffs] == [("mm", "a")]


def test_qspec_against_aimet(tmp_path: Path) -> None:
    model_path = tmp_path / "m.onnx"
    onnx.save(conv_relu_add(), str(model_path))
    q = tmp_path / "a.qspec"
    q.write_text(BASE + "model input { on }\n")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(AIMET, indent=1))
    g = Graph.load(str(model_path))
    pa = compile_profile(load(str(q)), g, "m.onnx")
    pb = compile_profile(load(str(cfg), param_bw=4), g, "m.onnx")
    diffs = {d.name: {f.field: f for f in d.fields} for d in diff_plans(pa, pb)}
    # AIMET ties Relu's output to its input (aimet.md B.8) and takes bit widths from options
    assert diffs["w1"]["bits"].b == 4
    assert "default_param_bw" in diffs["w1"]["bits"].why_b
    assert "shared_with" in diffs["r1"]

    rc, out, err = cli("diff", str(q), str(cfg), "--model", str(model_path), "--param-bw", "4")
    assert rc == 1 and err == ""
    assert "w1 (weight)\n  bits  8 -> 4\n" in out
    assert out.splitlines()[-1].startswith(f"{len(diffs)} of ")
    rc, out, _ = cli("diff", str(q), str(cfg), "--model", str(model_path), "--param-bw", "4",
                     "--format", "json", "--fields", "bits")
    doc = json.loads(out)
    assert rc == 1 and doc["summary"]["fields"] == {"bits": 2}
    assert [t["tensor"] for t in doc["tensors"]] == ["w1", "w2"]
    assert doc["tensors"][0]["fields"][0]["why_a"].startswith(f"{q}:1:")
    assert cli("diff", str(q), str(q), "--model", str(model_path)) == (
        0, "0 of 10 tensors differ\n", "")
    rc, _, err = cli("diff", str(q), str(cfg), "--model", str(model_path), "--fields", "bitz")
    assert rc == 2 and "E241" in err and "did you mean 'bits'?" in err
    rc, _, err = cli("diff", str(q), str(tmp_path / "none.qspec"), "--model", str(model_path))
    assert rc == 2 and "E101" in err
