"""Golden plans: small hand-built models x .qspec profiles, compiled and compared field by
field (with provenance) against checked-in plans; and the precedence cases of
``tests/fixtures/precedence/``.

Golden files: ``tests/fixtures/plans/<case>.qspec`` is compiled against every model named in
``GOLDEN[case]`` and compared with ``tests/fixtures/plans/<case>__<model>.json`` (the whole
``Plan.to_json()`` document). After an intended change to the compiler, regenerate them and
review the diff::

    QS_UPDATE_GOLDEN=1 python -m pytest tests/test_plans.py
    git diff tests/fixtures/plans/

Precedence cases: each ``tests/fixtures/precedence/*.qspec`` is a profile whose ``#|``
comments describe a small model and the expected values (see ``_parse_case``)::

    #| input x 1,4,8,8
    #| node conv1 Conv x w1:8,4,3,3 b1:8 -> c1 pads=1,1,1,1    (name:dims = an initializer)
    #| output c1
    #| expect w1 bits 4 from 9     (value as JSON; optional "from LINE": the deciding rule)
    #| expect c1 shared_with ["r1"]
    #| error E201 12               (compiling fails with this code at this line)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from models import conv_relu_add, model
from onnx import TensorProto, helper, numpy_helper
from qs_paths import FIXTURES

from quantspec.compiler import compile_profile
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.parse import parse

PLANS = FIXTURES / "plans"
PRECEDENCE = FIXTURES / "precedence"
UPDATE = os.environ.get("QS_UPDATE_GOLDEN") == "1"


# ---------------------------------------------------------------------------------------------
# Hand-built models (also used by test_plan_schema.py and test_translate_matrix.py)
# ---------------------------------------------------------------------------------------------


def _init(name: str, *shape: int, seed: int = 0) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def mixed() -> onnx.ModelProto:
    """Every per-channel axis rule: Conv (0), depthwise Conv, ConvTranspose (1), Gemm with
    transB=1 (0), MatMul (last); a branch into a Concat, an AveragePool, a Flatten."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["d1"], name="dwconv", group=8,
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["d1"], ["r2"], name="relu2"),
        helper.make_node("AveragePool", ["r1"], ["p1"], name="pool", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Concat", ["r2", "p1"], ["cat"], name="concat", axis=1),
        helper.make_node("ConvTranspose", ["cat", "wt"], ["t1"], name="deconv"),
        helper.make_node("Flatten", ["t1"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["g1"], name="fc", transB=1),
        helper.make_node("MatMul", ["g1", "wm"], ["m1"], name="proj"),
        helper.make_node("Sigmoid", ["m1"], ["y"], name="sigmoid"),
    ]
    return model(nodes, {"x": [1, 4, 8, 8]}, {"y": [1, 6]},
                 [_init("w1", 8, 4, 3, 3), _init("b1", 8), _init("wd", 8, 1, 3, 3, seed=1),
                  _init("bd", 8), _init("wt", 16, 4, 1, 1, seed=2), _init("wg", 10, 256, seed=3),
                  _init("bg", 10), _init("wm", 10, 6, seed=4)])


def two_heads() -> onnx.ModelProto:
    """Two graph inputs, a residual Add, a MatMul of two activations, two graph outputs, an
    int64 tensor (never quantized) and an unused initializer."""
    shape = numpy_helper.from_array(np.array([1, 16], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Gemm", ["a", "wa", "ba"], ["ga"], name="fc_a", transB=0),
        helper.make_node("Relu", ["ga"], ["ra"], name="relu_a"),
        helper.make_node("Add", ["ra", "b"], ["s"], name="add"),
        helper.make_node("Reshape", ["s", "shape"], ["s2"], name="reshape"),
        helper.make_node("Transpose", ["s2"], ["st"], name="transpose", perm=[1, 0]),
        helper.make_node("MatMul", ["st", "s2"], ["mm"], name="dyn_matmul"),
        helper.make_node("Softmax", ["mm"], ["sm"], name="softmax"),
    ]
    return model(nodes, {"a": [1, 16], "b": [1, 16]}, {"sm": [16, 16], "s": [1, 16]},
                 [_init("wa", 16, 16), _init("ba", 16), shape, _init("unused", 3)])


MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "conv_relu_add": conv_relu_add,
    "mixed": mixed,
    "two_heads": two_heads,
}
_GRAPHS: dict[str, Graph] = {}


def graph(name: str) -> Graph:
    """The graph view of a hand-built model (built once per test session)."""
    if name not in _GRAPHS:
        _GRAPHS[name] = Graph.from_model(MODELS[name](), f"{name}.onnx")
    return _GRAPHS[name]


# ---------------------------------------------------------------------------------------------
# Golden plans
# ---------------------------------------------------------------------------------------------

GOLDEN: dict[str, tuple[str, ...]] = {
    "cascade_levels": ("conv_relu_add", "mixed"),
    "fusion_ties": ("conv_relu_add", "mixed"),
    "per_channel_axes": ("mixed", "two_heads"),
    "htp_style": ("conv_relu_add", "mixed", "two_heads"),
}
GOLDEN_PAIRS = [(case, m) for case, models in GOLDEN.items() for m in models]


def compile_case(case: str, model_name: str) -> dict[str, Any]:
    path = PLANS / f"{case}.qspec"
    # the profile is named by its path relative to the fixtures, so the plan's provenance
    # ("plans/cascade_levels.qspec:7:1") does not depend on where the repository lives
    prof = parse(path.read_text(), f"plans/{case}.qspec")
    return compile_profile(prof, graph(model_name), f"{model_name}.onnx").to_json()


def plan_diff(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Readable differences between two plan documents (tensor by tensor, field by field)."""
    out = [f"{k}: want {want.get(k)!r} got {got.get(k)!r}" for k in sorted({*want, *got})
           if k != "tensors" and want.get(k) != got.get(k)]
    wt = {t["name"]: t for t in want.get("tensors", [])}
    gt = {t["name"]: t for t in got.get("tensors", [])}
    if list(wt) != list(gt):
        out.append(f"tensor order/names: want {list(wt)} got {list(gt)}")
    for name in wt.keys() & gt.keys():
        for f in sorted({*wt[name], *gt[name]}):
            if wt[name].get(f) != gt[name].get(f):
                out.append(f"{name}.{f}: want {wt[name].get(f)!r} got {gt[name].get(f)!r}")
    return out


@pytest.mark.parametrize(("case", "model_name"), GOLDEN_PAIRS,
                         ids=[f"{c}-{m}" for c, m in GOLDEN_PAIRS])
def test_golden_plan(case: str, model_name: str) -> None:
    got = compile_case(case, model_name)
    path = PLANS / f"{case}__{model_name}.json"
    if UPDATE:
        path.write_text(json.dumps(got, indent=1) + "\n")
    assert path.exists(), f"{path.name} missing: run with QS_UPDATE_GOLDEN=1"
    want = json.loads(path.read_text())
    diff = plan_diff(want, got)
    assert not diff, f"{case} x {model_name} differs from {path.name} " \
        f"(QS_UPDATE_GOLDEN=1 regenerates):\n" + "\n".join(diff[:40])


def test_every_golden_file_is_used() -> None:
    expected = {f"{c}__{m}.json" for c, m in GOLDEN_PAIRS}
    assert {p.name for p in PLANS.glob("*.json")} == expected
    assert {p.stem for p in PLANS.glob("*.qspec")} == set(GOLDEN)


def test_golden_plans_say_what_they_test() -> None:
    """The golden plans exercise what they claim: each cascade level decides some field, a
    final rule shadows a more specific one, fusion and ties take effect, and every
    per-channel axis kind appears."""
    levels = compile_case("cascade_levels", "mixed")
    t = {e["name"]: e for e in levels["tensors"]}
    selectors = {w.get("selector", "").split(" ")[0] for e in t.values() for w in e["why"].values()}
    assert {"defaults", "op", "layer", "tensor", "model"} <= selectors
    assert any(w.get("shadowed") for w in t["wd"]["why"].values())
    fused = compile_case("fusion_ties", "mixed")
    assert fused["fusions"] and any(e["shared_with"] for e in fused["tensors"])
    axes = {(e["name"], e["axis"]) for e in compile_case("per_channel_axes", "mixed")["tensors"]
            if e["per_channel"] and e["quantized"]}
    assert {("w1", 0), ("wt", 1), ("wg", 0), ("wm", 1)} <= axes


# ---------------------------------------------------------------------------------------------
# Precedence cases (data files)
# ---------------------------------------------------------------------------------------------

_NODE = re.compile(r"^node\s+(\S+)\s+(\S+)\s+(.*?)\s*->\s*(\S+(?:\s*,\s*\S+)*)((?:\s+\w+=\S+)*)$")


def _attr(text: str) -> Any:
    parts = [float(p) if "." in p else int(p) for p in text.split(",")]
    return parts if "," in text else parts[0]


def _parse_case(path: Path) -> tuple[onnx.ModelProto, list[tuple[str, str, Any, int | None]],
                                     tuple[str, int] | None]:
    """The model, the expectations (tensor, field, value, rule line) and an expected error."""
    inputs: dict[str, list[int]] = {}
    outputs: list[str] = []
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    expects: list[tuple[str, str, Any, int | None]] = []
    error = None
    for raw in path.read_text().splitlines():
        if not raw.startswith("#| "):
            continue
        line = raw[3:].strip()
        word, _, rest = line.partition(" ")
        if word == "input":
            name, dims = rest.split()
            inputs[name] = [int(d) for d in dims.split(",")]
        elif word == "output":
            outputs += rest.split()
        elif word == "node":
            m = _NODE.match(line)
            assert m, f"{path.name}: bad node line {line!r}"
            name, op, ins, outs, attrs = m.groups()
            in_names = []
            for i, tok in enumerate(ins.split()):
                tname, _, dims = tok.partition(":")
                if dims:  # an initializer: name:d0,d1,...
                    inits.append(_init(tname, *map(int, dims.split(",")), seed=len(inits) + i))
                in_names.append("" if tname == "_" else tname)
            kw = dict(a.split("=", 1) for a in attrs.split())
            nodes.append(helper.make_node(op, in_names, [o.strip() for o in outs.split(",")],
                                          name=name, **{k: _attr(v) for k, v in kw.items()}))
        elif word == "expect":
            tensor, field, value = rest.split(" ", 2)
            rule_line = None
            if " from " in value:
                value, _, where = value.rpartition(" from ")
                rule_line = int(where)
            expects.append((tensor, field, json.loads(value), rule_line))
        elif word == "error":
            code, where = rest.split()
            error = (code, int(where))
        else:
            raise AssertionError(f"{path.name}: unknown directive {line!r}")
    g = helper.make_graph(
        nodes, path.stem,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m, expects, error


PRECEDENCE_CASES = sorted(PRECEDENCE.glob("*.qspec"))


@pytest.mark.parametrize("path", PRECEDENCE_CASES, ids=[p.stem for p in PRECEDENCE_CASES])
def test_precedence_case(path: Path) -> None:
    onnx_model, expects, error = _parse_case(path)
    assert expects or error, f"{path.name} expects nothing"
    prof = parse(path.read_text(), path.name)
    g = Graph.from_model(onnx_model, f"{path.stem}.onnx")
    if error is not None:
        with pytest.raises(QuantspecError) as info:
            compile_profile(prof, g)
        assert (info.value.code, info.value.span.line if info.value.span else 0) == error, \
            info.value.diagnostic.render()
        return
    plan = {e["name"]: e for e in compile_profile(prof, g).to_json()["tensors"]}
    for tensor, field, value, line in expects:
        got = plan[tensor][field]
        assert got == value, f"{path.name}: {tensor}.{field} is {got!r}, expected {value!r}"
        if line is not None:
            rule = plan[tensor]["why"].get(field, {}).get("rule", "<builtin>")
            assert rule.startswith(f"{path.name}:{line}:"), \
                f"{path.name}: {tensor}.{field} decided by {rule}, expected line {line}"


def test_precedence_cases_exist() -> None:
    assert len(PRECEDENCE_CASES) >= 10
