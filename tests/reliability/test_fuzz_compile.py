"""The compile stage under a standing property: random ONNX graphs x random profiles.

Graphs come from ``fuzz_support.gen_graph`` (chains and DAGs over Conv in 1-D/2-D/3-D and
depthwise, ConvTranspose, Gemm, MatMul with constant, transposed and dynamic weights, Add/Mul
with constants, activations, the norms, Concat/Split/Reshape/Transpose/Flatten/Slice, pools,
Resize, Gather, Where, Cast to int types, Shape, Q/DQ pairs, LSTM/GRU, decomposed norms, ops
quantspec does not know; shared initializers, tensors read several times, graph outputs in the
middle of chains, unused initializers, int / bool / float16 tensors, and now and then an odd
edit such as an omitted input or an attribute of the wrong type). Profiles are the stdlib
profiles, the fixtures, the shared corpus when present and .qspec texts generated for the
graph (every rule kind, with names taken from it).

The property (``fuzz_support.read_compile``): ``compile_profile`` returns a Plan or raises
``QuantspecError``; a plan validates against schemas/plan.json, compiles to the same text
twice and leaves the graph as it was, keeps ``shared_with`` symmetric and inside the plan,
names a rule of the profile (or a derivation) in every ``why``, and ``explain`` works on its
tensors. The long run is ``tools/fuzz.py --frontends compile`` (benchmarks/FUZZ.md).
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import fuzz_support as fs
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models import model
from onnx import TensorProto, helper, numpy_helper
from qs_paths import REPO

from quantspec import cli
from quantspec.compiler import compile_profile
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import loads, stdlib_names

T = TypeVar("T")

# derandomized by tests/conftest.py (QS_HYPOTHESIS_RANDOM=1 explores new examples)
CI = settings(max_examples=120, deadline=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class DrawChooser:
    """fuzz_support's Chooser over hypothesis draws, so a failing case shrinks."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def pick(self, seq: Sequence[T]) -> T:
        return self.draw(st.sampled_from(list(seq)))  # type: ignore[no-any-return]

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))  # type: ignore[no-any-return]

    def coin(self, p: float) -> bool:
        return self.draw(st.integers(0, 99)) < p * 100  # type: ignore[no-any-return]


@st.composite
def onnx_graphs(draw: Any) -> tuple[onnx.ModelProto, fs.GraphInfo]:
    """A random chain or DAG (and the names a profile can use to hit it)."""
    return fs.gen_graph(DrawChooser(draw))


@st.composite
def compile_cases(draw: Any, pool: str = "") -> bytes:
    """A packed (model, profile) pair; ``pool``: a label prefix to take the profile from
    (``stdlib:``, ``fixture:``, ``corpus:``) instead of the generator's mix."""
    c = DrawChooser(draw)
    m, info = fs.gen_graph(c)
    if pool:
        label, name, data = c.pick([p for p in fs.profile_pool() if p[0].startswith(pool)])
        return fs.pack_case(m.SerializeToString(), name, data, label)
    name, data, label, options = fs.gen_case_profile(c, info)
    return fs.pack_case(m.SerializeToString(), name, data, label, options)


def compiles_or_fails_cleanly(data: bytes) -> fs.Outcome:
    """run_one over read_compile: a crash is any exception other than QuantspecError and any
    broken plan property (schema, determinism, sharing, provenance, explain)."""
    fe = fs.FrontEnd("compile", ".qscase", lambda d: fs.read_compile(d, cache=False),
                     lambda: [], ())
    outcome = fs.run_one(fe, data)
    header, profile, _ = fs.unpack_case(data)
    assert outcome.status != "crash", (f"{header['label']}: {outcome.detail}\n"
                                       f"profile:\n{profile[:2000].decode('utf-8', 'replace')}")
    return outcome


# ---------------------------------------------------------------------------------------------
# The property
# ---------------------------------------------------------------------------------------------


@CI
@given(compile_cases())
def test_generated_pairs_compile_or_fail_cleanly(data: bytes) -> None:
    compiles_or_fails_cleanly(data)


@settings(CI, max_examples=50)
@given(compile_cases(pool="stdlib:"))
def test_stdlib_profiles_on_generated_graphs(data: bytes) -> None:
    compiles_or_fails_cleanly(data)


@settings(CI, max_examples=40)
@given(compile_cases(pool="fixture:"))
def test_fixture_profiles_on_generated_graphs(data: bytes) -> None:
    compiles_or_fails_cleanly(data)


@settings(CI, max_examples=40)
@given(st.data())
def test_corpus_profiles_on_generated_graphs(data: st.DataObject) -> None:
    if not any(p[0].startswith("corpus:") for p in fs.profile_pool()):
        pytest.skip("../shared/corpus not present")
    compiles_or_fails_cleanly(data.draw(compile_cases(pool="corpus:")))


@settings(CI, max_examples=30)
@given(onnx_graphs(), st.data())
def test_plan_does_not_depend_on_the_graph_object(g: tuple[onnx.ModelProto, fs.GraphInfo],
                                                  data: st.DataObject) -> None:
    """Two graph views of the same model (one of them compiled against before) give the same
    text, and compiling leaves the node list as it was."""
    m, info = g
    text = fs.gen_compile_qspec(DrawChooser(data.draw), info)
    try:
        prof = loads(text, "g.qspec")
    except QuantspecError:
        return
    try:
        a, b = Graph.from_model(m, "m.onnx"), Graph.from_model(m, "m.onnx")
    except QuantspecError:  # an odd edit left a dangling name
        return
    nodes = [(n.name, n.op_type, list(n.inputs), list(n.outputs)) for n in a.nodes]
    try:
        first = compile_profile(prof, a, "m").dumps()
    except QuantspecError:
        return
    assert [(n.name, n.op_type, list(n.inputs), list(n.outputs)) for n in a.nodes] == nodes
    assert compile_profile(prof, b, "m").dumps() == first
    assert compile_profile(prof, a, "m").dumps() == first


def test_plans_are_identical_across_processes() -> None:
    """The same 25 generated pairs compiled here and in a process with another hash seed give
    byte-identical plans (no set or dict order leaks into a plan) and the same error codes."""
    tests = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO / "src"), str(tests), str(tests / "reliability"),
                      os.environ.get("PYTHONPATH")]))}
    script = "import json, fuzz_support as fs; print(json.dumps(fs.compile_outcomes(25)))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    here = fs.compile_outcomes(25)
    assert json.loads(proc.stdout) == here
    assert sum(len(x) == 40 for x in here) >= 10  # most of them compiled


def test_damaged_cases() -> None:
    """Seeded protobuf-level damage to generated models, and mutated profiles (the long
    run's mutators): 80 cases."""
    fe = fs.compile_frontend()
    seeds = sorted(fe.builtin().items())
    rng = random.Random(8)
    for i in range(80):
        _, seed = seeds[i % len(seeds)]
        mutated, how = fs.mutate(fe, rng, seed)
        outcome = fs.run_one(fe, mutated)
        assert outcome.status != "crash", (how, outcome.detail)


def test_generated_graphs_are_valid_onnx() -> None:
    """Without the odd edits, the generator's graphs pass onnx.checker with shape inference
    (so the tracked shapes are right), except for the ops onnx does not know."""
    allowed = ("No Op registered",)
    ok = 0
    for i in range(60):
        m, _ = fs.gen_graph(fs.RngChooser(random.Random(f"valid:{i}")), odd=False)
        try:
            onnx.checker.check_model(m, full_check=True)
            ok += 1
        except Exception as exc:  # noqa: BLE001 - onnx raises several types
            first = str(exc).splitlines()[0]
            assert any(a in first for a in allowed), f"graph {i}: {first}"
    assert ok >= 30


def test_generated_graphs_cover_the_op_types() -> None:
    seen: set[str] = set()
    for i in range(150):
        m, _ = fs.gen_graph(fs.RngChooser(random.Random(f"ops:{i}")))
        seen.update(n.op_type for n in m.graph.node)
    want = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Relu", "Clip", "Sigmoid",
            "Softmax", "BatchNormalization", "LayerNormalization", "InstanceNormalization",
            "Concat", "Split", "Reshape", "Transpose", "Flatten", "Slice", "MaxPool",
            "AveragePool", "GlobalAveragePool", "Resize", "Gather", "Where", "Cast", "Shape",
            "QuantizeLinear", "DequantizeLinear", "LSTM", "GRU", "ReduceMean", "MyCustomOp"}
    assert want <= seen, want - seen


def test_generated_profiles_select_tensors() -> None:
    """Generated rules are aimed at the graph: most compiled plans have tensors set by a rule
    of the generated file, not only built-in defaults."""
    hit = total = 0
    for i in range(40):
        c = fs.RngChooser(random.Random(f"hit:{i}"))
        m, info = fs.gen_graph(c)
        try:
            prof = loads(fs.gen_compile_qspec(c, info), "g.qspec")
            plan = compile_profile(prof, Graph.from_model(m), "m").to_json()
        except QuantspecError:
            continue
        total += 1
        hit += any(w["rule"].startswith("g.qspec:") for t in plan["tensors"]
                   for w in t["why"].values())
    assert total >= 25 and hit >= total * 0.7, (hit, total)


# ---------------------------------------------------------------------------------------------
# The checks can fail
# ---------------------------------------------------------------------------------------------


def _good_plan() -> tuple[Any, dict[str, Any]]:
    text = ('defaults { output { on int8 } weight { on symmetric per_channel } }\n'
            'tie output_to_input: Relu\n')
    prof = loads(text, "p.qspec")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    m = model(nodes, {"x": [1, 2, 4, 4]}, {"y": [1, 2, 4, 4]},
              [numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")])
    doc = compile_profile(prof, Graph.from_model(m), "m").to_json()
    fs.check_plan(prof, doc)
    return prof, doc


def _tensor(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in doc["tensors"] if t["name"] == name)


BROKEN: dict[str, tuple[type[Exception], Callable[[dict[str, Any]], None]]] = {
    "schema": (fs.PlanSchemaError, lambda d: _tensor(d, "w").update(block_size=0)),
    "schema in a repeated entry": (fs.PlanSchemaError,
                                   lambda d: _tensor(d, "y").update(bits=0)),
    "one-sided sharing": (fs.PlanInvariantError,
                          lambda d: _tensor(d, "c").update(shared_with=[])),
    "sharing outside the plan": (fs.PlanInvariantError,
                                 lambda d: _tensor(d, "c").update(shared_with=["nope"])),
    "why names no rule": (fs.PlanInvariantError,
                          lambda d: _tensor(d, "w")["why"]["symmetric"].update(rule="p.qspec:9:9")),
    "shadowed names no rule": (fs.PlanInvariantError, lambda d: _tensor(d, "w")["why"][
        "symmetric"].update(shadowed=["<nowhere>"])),
    "summary": (fs.PlanInvariantError, lambda d: d["summary"].update(quantized=0)),
    "per channel without axis": (fs.PlanInvariantError,
                                 lambda d: _tensor(d, "w").update(axis=None)),
}


@pytest.mark.parametrize("what", BROKEN)
def test_check_plan_catches(what: str) -> None:
    prof, doc = _good_plan()
    assert _tensor(doc, "c")["shared_with"] == ["y"]
    exc, edit = BROKEN[what]
    bad = copy.deepcopy(doc)
    edit(bad)
    with pytest.raises(exc):
        fs.check_plan(prof, bad)


def test_nondeterminism_and_graph_changes_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    import quantspec.compiler as compiler

    m, _ = fs.gen_graph(fs.RngChooser(random.Random("det")))
    case = fs.pack_case(m.SerializeToString(), "p.qspec", b"defaults { output { on } }\n")
    fs.read_compile(case, cache=False)
    real = compiler.compile_profile
    calls = iter(range(1000))

    def flaky(prof: Any, graph: Any, name: str = "") -> Any:
        plan = real(prof, graph, name)
        plan.model += str(next(calls))
        return plan

    monkeypatch.setattr(compiler, "compile_profile", flaky)
    with pytest.raises(fs.PlanNondeterministic):
        fs.read_compile(case, cache=False)

    def mutating(prof: Any, graph: Any, name: str = "") -> Any:
        graph.nodes.reverse()
        return real(prof, graph, name)

    monkeypatch.setattr(compiler, "compile_profile", mutating)
    with pytest.raises(fs.GraphChanged):
        fs.read_compile(case, cache=False)


def test_case_round_trip(tmp_path: Path) -> None:
    data = fs.gen_case(fs.RngChooser(random.Random("pack")))
    header, profile, m = fs.unpack_case(data)
    assert fs.pack_case(m, header["profile"], profile, header["label"],
                        header["options"]) == data
    ppath, mpath, _ = fs.write_case(data, tmp_path)
    assert ppath.read_bytes() == profile and onnx.load(str(mpath)) is not None
    with pytest.raises(ValueError):
        fs.unpack_case(b"not a case")


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------


def _cli_cases() -> list[bytes]:
    """Generated cases that compile and cases that fail, a few of each."""
    good: list[bytes] = []
    bad: list[bytes] = []
    fe = fs.FrontEnd("compile", ".qscase", fs.read_compile, lambda: [], ())
    for i in range(200):
        data = fs.gen_case(fs.RngChooser(random.Random(f"cli:{i}")))
        status = fs.run_one(fe, data).status
        if status == "ok" and len(good) < 4:
            good.append(data)
        elif status == "error" and len(bad) < 4:
            bad.append(data)
        if len(good) == 4 and len(bad) == 4:
            break
    return good + bad


CLI_CASES = _cli_cases()


@pytest.mark.parametrize("data", CLI_CASES, ids=[f"case{i}" for i in range(len(CLI_CASES))])
def test_cli_compile(data: bytes, tmp_path: Path) -> None:
    """`quantspec compile` exits 0 with a valid plan or 1 with a diagnostic; no traceback."""
    profile, mpath, opts = fs.write_case(data, tmp_path)
    out, err = io.StringIO(), io.StringIO()
    plan = tmp_path / "plan.json"
    rc = cli.main(["compile", str(profile), "--model", str(mpath), "-o", str(plan), *opts],
                  out, err)
    text = err.getvalue()
    assert rc in (0, 1), text
    assert "Traceback" not in text and "internal error" not in text, text
    if rc == 0:
        assert not fs.schema_errors(json.loads(plan.read_text()))
    else:
        assert re.search(r"\bE\d{3}\b", text), text
        assert not plan.exists()


def test_cli_compile_in_a_process(tmp_path: Path) -> None:
    """The real entry point on a failing and a passing case: no traceback on stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    for i, data in enumerate((CLI_CASES[0], CLI_CASES[-1])):
        profile, mpath, opts = fs.write_case(data, tmp_path / str(i))
        proc = subprocess.run([sys.executable, "-m", "quantspec", "compile", str(profile),
                               "--model", str(mpath), *opts], capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode in (0, 1), proc.stderr
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


# ---------------------------------------------------------------------------------------------
# Reproducers of what the compile fuzzer found (minimized by hand)
# ---------------------------------------------------------------------------------------------


def _compile(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], text: str,
             inputs: dict[str, list[int]] | None = None) -> Any:
    m = model(nodes, inputs or {"x": [1, 4]}, {}, inits)
    m.graph.output.extend([helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                           for o in nodes[-1].output if o])
    case = fs.pack_case(m.SerializeToString(), "r.qspec", text.encode())
    return fs.read_compile(case, cache=False)


def _w(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def test_nonpositive_block_size_is_an_error() -> None:
    """block_size 0 or -4 reached the plan, which the plan schema refuses (minimum 1)."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    for size in (0, -4):
        text = f"op MatMul {{ weight {{ int4  block_size: {size} }} }}"
        with pytest.raises(QuantspecError) as exc:
            _compile(nodes, [_w("w", 4, 4)], text)
        assert exc.value.code == "E208"
        assert str(exc.value.span).startswith("r.qspec:1:")
        assert "'w'" in exc.value.diagnostic.message and exc.value.diagnostic.hint
    plan = _compile(nodes, [_w("w", 4, 4)], "op MatMul { weight { int4  block_size: 2 } }")
    assert plan.entry("w").get("block_size") == 2


DAMAGED = {
    # layer_norm read rm.inputs[0] of a ReduceMean without inputs (IndexError)
    "reduce-mean-without-input": (
        [helper.make_node("ReduceMean", [], ["m"], name="rm"),
         helper.make_node("Sub", ["x", "m"], ["y"], name="sub")], "passes layer_norm"),
    # matmul_add read node.outputs[0] of a MatMul without outputs (IndexError)
    "matmul-without-output": (
        [helper.make_node("MatMul", ["x", "w"], [], name="mm"),
         helper.make_node("Relu", ["x"], ["y"], name="relu")], "passes matmul_add"),
    # a MatMul whose weight input is omitted ("") reached matmul_add (KeyError)
    "matmul-omitted-weight": (
        [helper.make_node("MatMul", ["x", ""], ["m"], name="mm"),
         helper.make_node("Add", ["m", "b"], ["y"], name="add")], "passes matmul_add"),
    "pow-without-input": (
        [helper.make_node("Pow", [], ["p"], name="pow"),
         helper.make_node("ReduceMean", ["p"], ["y"], name="rm")], "passes rms_norm"),
    "add-without-output": (
        [helper.make_node("Add", ["x", "b"], [], name="add"),
         helper.make_node("Softmax", ["x"], ["y"], name="sm")], "passes masked_softmax"),
    # selecting a MatMul weight read through a Transpose without inputs (IndexError in
    # select.Index._node_params)
    "transpose-without-input": (
        [helper.make_node("Transpose", [], ["t"], name="tr"),
         helper.make_node("MatMul", ["x", "t"], ["y"], name="mm")], "op MatMul { weight { on } }"),
    # AIMET's exception rules took int() of a ConvTranspose `group` that is a list (TypeError)
    # or a string (ValueError for most)
    "convtranspose-group-list": (
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv", group=[1, 2])],
        'post "aimet.exception_rules"\nop ConvTranspose { weight { on  per_channel } }'),
    "convtranspose-group-string": (
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv", group="x")],
        'post "aimet.exception_rules"\nop ConvTranspose { weight { on  per_channel } }'),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_damaged_nodes_compile(case: str) -> None:
    nodes, text = DAMAGED[case]
    plan = _compile(nodes, [_w("w", 4, 4), _w("b", 4)],
                    f"{text}\ndefaults {{ output {{ on }} }}\n")
    assert plan.entry("y") is not None and plan.entry("y").get("quantized")


def test_constant_value_of_undefined_type() -> None:
    """A Constant whose `value` attribute has type UNDEFINED: onnx reads it as None, which
    passed the E311 check and then raised AttributeError (None has no data_type)."""
    const = helper.make_node("Constant", [], ["c"], name="const",
                             value=numpy_helper.from_array(np.ones(4, np.float32)))
    const.attribute[0].type = onnx.AttributeProto.UNDEFINED
    nodes = [const, helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    with pytest.raises(QuantspecError) as exc:
        _compile(nodes, [], "defaults { output { on } }")
    assert exc.value.code == "E311" and "'const'" in str(exc.value)


@pytest.mark.parametrize("where", ["input", "value_info", "initializer", "constant"])
def test_negative_dimension_is_refused(where: str, tmp_path: Path) -> None:
    """A negative dimension made onnx's shape inference abort the process (a C++ assertion in
    Slice's inference: exit 134, no diagnostic). Run in a child process, so a regression
    cannot take the test run down with it."""
    ints = [numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("s", 0), ("e", 2))]
    dims = [-1] if where == "input" else [4]
    src = "x"
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu")]
    if where == "initializer":
        w = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-1])
        ints.append(w)
        src = "w"
    elif where == "constant":
        value = onnx.TensorProto(name="cv", data_type=TensorProto.FLOAT, dims=[-1])
        nodes.append(helper.make_node("Constant", [], ["c"], name="const", value=value))
        src = "c"
    elif where == "value_info":
        src = "r"
    nodes.append(helper.make_node("Slice", [src, "s", "e"], ["y"], name="slice"))
    m = model(nodes, {"x": dims}, {}, ints)
    m.graph.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, None))
    if where == "value_info":
        m.graph.value_info.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [-1]))
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    (tmp_path / "p.qspec").write_text("defaults { output { on } }\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "quantspec", "compile",
                           str(tmp_path / "p.qspec"), "--model", str(path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-500:])
    assert "E312" in proc.stderr and "negative dimension" in proc.stderr, proc.stderr
    name = {"input": "x", "value_info": "r", "initializer": "w", "constant": "cv"}[where]
    assert f"tensor '{name}'" in proc.stderr, proc.stderr


def test_stdlib_is_used() -> None:
    assert len([p for p in fs.profile_pool() if p[0].startswith("stdlib:")]) == \
        len(stdlib_names())
