"""`quantspec calibrate` runs the transforms the profile asks for, then calibrates the new
model; `--qdq` adds the QDQ model."""

from __future__ import annotations

import io
import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from quantspec.cli import main


def _conv_bn(path) -> None:
    rng = np.random.default_rng(0)

    def a(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    var = numpy_helper.from_array(np.abs(rng.standard_normal(4)).astype(np.float32) + 0.5, "v")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"], name="bn"),
             helper.make_node("Relu", ["bn"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
                          [a("w", 4, 3, 3, 3), a("g", 4), a("b", 4), a("m", 4), var])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def test_calibrate_folds_then_calibrates(tmp_path) -> None:
    model = tmp_path / "bn.onnx"
    _conv_bn(model)
    data = tmp_path / "d.npz"
    np.savez(data, x=np.random.default_rng(1).standard_normal((4, 1, 3, 8, 8))
             .astype(np.float32))
    prof = tmp_path / "p.qspec"
    prof.write_text('profile "t" extends "ort/qdq"\ntransform { fold_batchnorm: on }\n')
    out, err = io.StringIO(), io.StringIO()
    argv = ["calibrate", str(prof), "--model", str(model), "--data", str(data),
            "-o", str(tmp_path / "o"), "--qdq", "--no-progress"]
    assert main(argv, out, err) == 0, err.getvalue()
    assert "transformed: folded 1" in err.getvalue()
    plan = json.loads((tmp_path / "o" / "plan.json").read_text())
    assert not any(t["name"] in ("g", "m", "v") for t in plan["tensors"])  # BN is gone
    folded = onnx.load(tmp_path / "o" / "bn.transformed.onnx")
    assert [n.op_type for n in folded.graph.node] == ["Conv", "Relu"]
    qdq = onnx.load(tmp_path / "o" / "bn.qdq.onnx")
    onnx.checker.check_model(qdq)
    assert any(n.op_type == "QuantizeLinear" for n in qdq.graph.node)
    # --no-transforms keeps the model as it is
    assert main([*argv[:-4], "-o", str(tmp_path / "o2"), "--no-transforms", "--no-progress"],
                io.StringIO(), io.StringIO()) == 0
    plan2 = json.loads((tmp_path / "o2" / "plan.json").read_text())
    assert any(t["name"] == "v" for t in plan2["tensors"])
