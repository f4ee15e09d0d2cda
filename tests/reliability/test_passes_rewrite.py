"""The graph passes update the graph in place of rebuilding it (``passes._rewrite``): the result
must be the graph a rebuild gives, linked and classified from scratch, on any graph."""
from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import fuzz_support as fs
import pytest

from quantspec import ir
from quantspec.compiler.passes import REMOVED, run_passes
from quantspec.errors import QuantspecError
from quantspec.graph import Graph


def _rebuilt(g: Graph) -> Graph:
    """``g``'s nodes and tensors, every link and kind computed again from the nodes."""
    tensors = {name: replace(t, producer=None, consumers=[], param_of=[], kind="activation",
                             role="", transposed_param=False)
               for name, t in g.tensors.items()}
    for node in g.nodes:
        for slot, name in enumerate(node.inputs):
            if name:
                tensors[name].consumers.append((node.index, slot))
        for name in node.outputs:
            if name:
                tensors[name].producer = node.index
    ref = Graph(g.nodes, tensors, list(g.inputs), list(g.outputs), g.path, g.fused)
    ref.classify()
    return ref


def _state(g: Graph) -> dict[str, Any]:
    return {name: (t.producer, sorted(t.consumers), t.kind, t.role, t.param_of,
                   t.transposed_param, t.static) for name, t in g.tensors.items()}


def _linked_names(g: Graph) -> set[str]:
    names = set(g.inputs) | set(g.outputs)
    for node in g.nodes:
        names.update(n for n in (*node.inputs, *node.outputs) if n)
    return names


def _graphs(count: int, seed: int) -> list[tuple[int, Graph]]:
    out = []
    for i in range(count):
        model, _info = fs.gen_graph(fs.RngChooser(random.Random(seed + i)), odd=False)
        try:
            out.append((seed + i, Graph.from_model(model)))
        except QuantspecError:
            continue
    return out


GRAPHS = _graphs(400, 7000)


def test_the_generated_graphs_exercise_every_pass() -> None:
    fired = {f["op_type"] for _, g in GRAPHS for f in run_passes(g, list(ir.GRAPH_PASSES)).fused}
    assert len(fired) >= len(ir.GRAPH_PASSES), fired


@pytest.mark.parametrize("order", [list(ir.GRAPH_PASSES), list(reversed(ir.GRAPH_PASSES))],
                         ids=["forward", "reversed"])
def test_rewrite_equals_a_rebuild(order: list[str]) -> None:
    rewritten = 0
    for seed, g in GRAPHS:
        before = _state(g)
        ng = run_passes(g, order)
        assert _state(g) == before, f"seed {seed}: run_passes changed its input graph"
        if ng is g:
            continue
        rewritten += 1
        assert [n.index for n in ng.nodes] == list(range(len(ng.nodes))), seed
        # every node keeps its index: a fused node takes its first member's, the other
        # members leave an inert node; the untouched nodes are g's own
        assert len(ng.nodes) == len(g.nodes), seed
        fused_at = {n.index for n in ng.nodes if n.domain == "quantspec.fused"} - \
            {n.index for n in g.nodes if n.domain == "quantspec.fused"}
        for old, new in zip(g.nodes, ng.nodes, strict=True):
            if new.domain == REMOVED:
                assert (new.name, new.op_type, new.inputs, new.outputs) == ("", "", [], []), seed
            elif new.index in fused_at:
                assert new.fused_from[0] == old.name, seed
            else:
                assert new is old, seed
        assert set(ng.tensors) == _linked_names(ng), f"seed {seed}: tensors kept or dropped"
        assert _state(ng) == _state(_rebuilt(ng)), f"seed {seed}"
    assert rewritten >= 20


def _terminal_reference(g: Graph) -> list[str]:
    """aimet.md B.2 step 6 by definition: every op in graph order whose outputs no op reads."""
    out: list[str] = []
    for node in g.nodes:
        if node.op_type in ("Constant", "ConstantOfShape"):
            continue
        if not any(o in g.tensors and g.tensors[o].consumers for o in node.outputs):
            out += [o for o in node.outputs if o]
    return out


def test_terminal_outputs_before_and_after_the_passes() -> None:
    found = 0
    for seed, g in GRAPHS:
        for graph in (g, run_passes(g, list(ir.GRAPH_PASSES))):
            got = graph.terminal_outputs()
            assert got == _terminal_reference(graph), seed
            found += len(got)
    assert found > len(GRAPHS)
