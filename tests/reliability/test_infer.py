"""Shape inference in a forked child (``quantspec.infer``) gives the graph view, or the error,
that inference in the process gives: same tensors in the same order, same types, kinds and
links; a child that dies counts as inference that failed."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import fuzz_support as fs
import onnx
import pytest
from onnx import TensorProto, helper

from quantspec import infer
from quantspec.errors import QuantspecError
from quantspec.graph import Graph

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the forked path runs on Linux only")


def _view(model: onnx.ModelProto, fork: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(infer, "FORK_MIN_NODES", 0 if fork else 10**9)
    try:
        g = Graph.from_model(model)
    except QuantspecError as exc:
        return ("error", exc.code, exc.diagnostic.message, str(exc.span))
    return [(t.name, t.dtype, t.shape, t.kind, t.role, t.producer, t.consumers, t.param_of,
             t.static, t.graph_input, t.graph_output) for t in g.tensors.values()]


def _mlp() -> onnx.ModelProto:
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], [0.1] * 12)
    b = helper.make_tensor("b", TensorProto.FLOAT, [3], [0.0] * 3)
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, 3])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["add"]),
             helper.make_node("Relu", ["add"], ["r"]),
             helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Reshape", ["r", "shape"], ["y"])]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                       [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("s", TensorProto.INT64, None)],
                          [w, b, shape])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_forked_inference_gives_the_same_view(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp()
    in_process = _view(model, False, monkeypatch)
    assert _view(model, True, monkeypatch) == in_process
    types = {name: (dtype, shape) for name, dtype, shape, *_ in in_process}
    assert types["r"] == ("float", (1, 3)) and types["s"] == ("int64", (2,))  # inferred


@pytest.mark.parametrize("seed", range(40))
def test_generated_graphs(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    c = fs.RngChooser(random.Random(7100 + seed))
    model, _ = fs.gen_graph(c, odd=seed % 3 == 0)
    assert _view(model, True, monkeypatch) == _view(model, False, monkeypatch)


def test_damaged_models_fail_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors found while linking wait for the type checks (E310) that came before them."""
    seeds = fs.onnx_seed_models()
    mutators = fs.ONNX_MUTATORS + fs.BYTE_MUTATORS
    codes = set()
    for i in range(300):
        rng = random.Random(9000 + i)
        data = seeds[sorted(seeds)[i % len(seeds)]]
        for _ in range(rng.randint(1, 3)):
            data = rng.choice(mutators)(rng, data)
        try:
            model = onnx.ModelProto.FromString(data)
        except Exception:  # noqa: BLE001 - not a model at all: the loader's business
            continue
        forked = _view(model, True, monkeypatch)
        assert forked == _view(model, False, monkeypatch), i
        if forked[0] == "error":
            codes.add(forked[1])
    assert {"E303", "E308", "E311"} <= codes  # the mutations reach the linking checks


def test_type_error_comes_before_linking_error(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp()
    model.graph.value_info.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    model.graph.value_info[0].type.tensor_type.elem_type = 99  # unknown: E310
    model.graph.node[1].input[0] = "nowhere"  # read before written: E303
    for fork in (False, True):
        assert _view(model, fork, monkeypatch)[1] == "E310"


def _declared_only(model: onnx.ModelProto, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The view when inference raises: the model's own types."""
    def fail(*_: Any, **__: Any) -> Any:
        raise RuntimeError("inference failed")

    with monkeypatch.context() as m:
        m.setattr(onnx.shape_inference, "infer_shapes", fail)
        return _view(model, False, m)


@pytest.mark.parametrize("how", ["raise", "exit", "abort"])
def test_child_failure_uses_the_declared_types(how: str, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    model = _mlp()
    expected = _declared_only(model, monkeypatch)
    assert dict((t[0], t[1]) for t in expected)["r"] == ""  # not inferred

    def die(*_: Any, **__: Any) -> Any:
        if how == "raise":
            raise RuntimeError("inference failed")
        if how == "exit":
            os._exit(7)
        os.abort()

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", die)
    assert _view(model, True, monkeypatch) == expected


def test_no_fork_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise AssertionError("forked")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setenv("QUANTSPEC_NO_FORK", "1")
    forked = _view(_mlp(), True, monkeypatch)
    monkeypatch.delenv("QUANTSPEC_NO_FORK")
    assert forked == _view(_mlp(), False, monkeypatch)
    for unset in (None, "", "0"):  # absent, empty or 0: the fork is used
        if unset is not None:
            monkeypatch.setenv("QUANTSPEC_NO_FORK", unset)
        with pytest.raises(AssertionError, match="forked"):
            _view(_mlp(), True, monkeypatch)


def test_child_is_reaped_when_the_view_stops_early(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp()
    model.graph.initializer[0].data_type = 99  # E310, found before the types are read
    waited: list[int] = []
    real_waitpid = os.waitpid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        waited.append(pid)
        return real_waitpid(pid, options)

    monkeypatch.setattr(os, "waitpid", waitpid)
    assert _view(model, True, monkeypatch)[1] == "E310"
    assert len(waited) == 1


@pytest.mark.parametrize("fork", [False, True])
def test_tensor_order(fork: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans list tensors in the view's order: initializers, the values the (inferred) graph
    declares, then the rest in node order, whatever order the view linked them in."""
    monkeypatch.setattr(infer, "FORK_MIN_NODES", 0 if fork else 10**9)
    g = Graph.from_model(_mlp())
    assert list(g.tensors) == ["w", "b", "shape", "x", "mm", "add", "r", "y", "s"]


def test_fork_failure_infers_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory() -> int:
        raise OSError(12, "Cannot allocate memory")

    expected = _view(_mlp(), False, monkeypatch)
    monkeypatch.setattr(os, "fork", no_memory)
    assert _view(_mlp(), True, monkeypatch) == expected


def _long_chain(nodes: int) -> onnx.ModelProto:
    """Conv -> Relu -> Sigmoid ... : a graph above the fork threshold."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4, 1, 1], [0.5] * 16)
    body, x = [], "x"
    for i in range(nodes):
        op = ("Conv", "Relu", "Sigmoid")[i % 3]
        body.append(helper.make_node(op, [x, "w"] if op == "Conv" else [x], [f"t{i}"],
                                     name=f"n{i}"))
        x = f"t{i}"
    g = helper.make_graph(body, "chain",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_cli_plans_are_the_same_either_way(tmp_path: Path) -> None:
    """End to end through the CLI, on a model above the threshold: the plan written with the
    child and the one written without are the same bytes."""
    assert infer.FORK_MIN_NODES <= 5_100
    model = tmp_path / "chain.onnx"
    onnx.save(_long_chain(5_100), model)
    plans = []
    for no_fork in ("0", "1"):
        out = tmp_path / f"plan{no_fork}.json"
        env = {**os.environ, "QUANTSPEC_NO_FORK": no_fork}
        proc = subprocess.run([sys.executable, "-m", "quantspec", "compile", "qnn/htp-v73",
                               "--model", str(model), "-o", str(out)],
                              capture_output=True, text=True, env=env, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == ""  # nothing from the child: one summary line
        assert proc.stderr == f"wrote {out}: 5102 tensors, 3402 quantized\n"
        plans.append(out.read_bytes())
    assert plans[0] == plans[1]
    assert b'"shape":[1,4,2,2]' in plans[0].replace(b" ", b"")  # inferred
