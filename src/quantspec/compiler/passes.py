"""Graph passes: fuse known subgraphs into one op before quantizers are placed.

Runtimes run these fused (a MatMul followed by a bias Add is one FullyConnected; a decomposed
LayerNorm is one kernel), so no quantizer sits inside them. A pass replaces the matched nodes by
one node of the fused type; its inner tensors and the constants only they read disappear from
the graph the compiler sees. Named in profiles as ``passes matmul_add, layer_norm``
(aimet.md B.4 describes the same passes under ``supergroup_pass_list``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..graph import Graph, Node, Tensor

_R = TypeVar("_R", Node, Tensor)
PassFn = Callable[[Graph, set[int]], list[tuple[str, list[int], list[str], list[str]]]]


def _single_consumer(g: Graph, tensor: str) -> Node | None:
    t = g.tensors.get(tensor)
    if t is None or t.graph_output or len(t.consumers) != 1:
        return None
    return g.nodes[t.consumers[0][0]]


def _static_rank1(g: Graph, name: str) -> bool:
    src = g.static_source(name)
    return src is not None and g.tensors[src].rank == 1


def _follow(g: Graph, node: Node, wants: tuple[str, ...]) -> list[Node] | None:
    """The single-consumer chain after ``node`` with these op types, or None."""
    chain: list[Node] = []
    for want in wants:
        nxt = _single_consumer(g, (chain[-1] if chain else node).outputs[0])
        if nxt is None or nxt.op_type != want:
            return None
        chain.append(nxt)
    return chain


def _affine_tail(g: Graph, last: Node, with_beta: bool) -> tuple[list[Node], list[str]]:
    """An optional ``Mul(gamma)`` [``Add(beta)``] of static operands after ``last``: the nodes
    and the operand names a fused norm takes as its scale [and bias]."""
    nodes: list[Node] = []
    operands: list[str] = []
    for op in ("Mul", "Add") if with_beta else ("Mul",):
        tail = nodes[-1] if nodes else last
        nxt = _single_consumer(g, tail.outputs[0])
        if nxt is None or nxt.op_type != op:
            break
        other = _other(nxt, tail.outputs[0])
        if other is None or g.static_source(other) is None:
            break
        nodes.append(nxt)
        operands.append(other)
    return nodes, operands


def _other(node: Node, name: str) -> str | None:
    rest = [i for i in node.inputs if i != name]
    return rest[0] if len(rest) == 1 else None


def matmul_add(g: Graph, used: set[int]) -> list[tuple[str, list[int], list[str], list[str]]]:
    """MatMul with a static weight -> single-consumer Add of a rank-1 constant => Gemm."""
    out = []
    for node in g.nodes:
        if node.op_type != "MatMul" or node.index in used or len(node.inputs) < 2:
            continue
        w = node.inputs[1]
        if w not in g.tensors:  # an empty (omitted) input name
            continue
        static = g.static_source(w) is not None
        if not static:
            prod = g.tensors[w].producer
            static = prod is not None and g.nodes[prod].op_type == "Transpose" and \
                g.static_source(g.nodes[prod].inputs[0]) is not None
        if not static:
            continue
        add = _single_consumer(g, node.outputs[0])
        if add is None or add.op_type != "Add" or add.index in used:
            continue
        bias = _other(add, node.outputs[0])
        if bias is None or not _static_rank1(g, bias):
            continue
        out.append(("Gemm", [node.index, add.index], [node.inputs[0], w, bias], add.outputs))
    return out


def layer_norm(g: Graph, used: set[int]) -> list[tuple[str, list[int], list[str], list[str]]]:
    """ReduceMean -> Sub -> (Pow -> ReduceMean -> Add -> Sqrt) -> Div [-> Mul g] [-> Add b]."""
    out = []
    for rm in g.nodes:
        if rm.op_type != "ReduceMean" or rm.index in used:
            continue
        x = rm.inputs[0]
        sub = _single_consumer(g, rm.outputs[0])
        if sub is None or sub.op_type != "Sub" or sub.inputs != [x, rm.outputs[0]]:
            continue
        cons = g.consumers_of(sub.outputs[0])
        pw = next((c for c in cons if c.op_type == "Pow"), None)
        div = next((c for c in cons if c.op_type == "Div"), None)
        if pw is None or div is None or len(cons) != 2:
            continue
        tail = _follow(g, pw, ("ReduceMean", "Add", "Sqrt"))
        if tail is None or _single_consumer(g, tail[-1].outputs[0]) is not div:
            continue
        if div.inputs[0] != sub.outputs[0]:
            continue
        affine, operands = _affine_tail(g, div, with_beta=True)
        nodes = [rm, sub, pw, *tail, div, *affine]
        inputs = [x, *operands]
        last = nodes[-1]
        if any(n.index in used for n in nodes):
            continue
        out.append(("LayerNormalization", [n.index for n in nodes], inputs, last.outputs))
    return out


def rms_norm(g: Graph, used: set[int]) -> list[tuple[str, list[int], list[str], list[str]]]:
    """Pow(x, 2) -> ReduceMean -> Add(eps) -> Sqrt -> Div(x, .) [-> Mul g] => RMSNormalization."""
    out = []
    for pw in g.nodes:
        if pw.op_type != "Pow" or pw.index in used:
            continue
        x = pw.inputs[0]
        tail = _follow(g, pw, ("ReduceMean", "Add", "Sqrt", "Div"))
        if tail is None or tail[-1].inputs[0] != x:
            continue
        affine, operands = _affine_tail(g, tail[-1], with_beta=False)
        chain = [pw, *tail, *affine]
        inputs = [x, *operands]
        if any(n.index in used for n in chain):
            continue
        out.append(("RMSNormalization", [n.index for n in chain], inputs, chain[-1].outputs))
    return out


def masked_softmax(g: Graph, used: set[int]) -> list[tuple[str, list[int], list[str], list[str]]]:
    """Add(x, mask) -> Softmax => MaskedSoftmax(x, mask); the mask input is never quantized."""
    out = []
    for add in g.nodes:
        if add.op_type != "Add" or add.index in used or len(add.inputs) != 2:
            continue
        sm = _single_consumer(g, add.outputs[0])
        if sm is None or sm.op_type != "Softmax" or sm.index in used:
            continue
        out.append(("MaskedSoftmax", [add.index, sm.index], list(add.inputs), sm.outputs))
    return out


PASSES: dict[str, PassFn] = {
    "layer_norm": layer_norm,
    "rms_norm": rms_norm,
    "matmul_add": matmul_add,
    "masked_softmax": masked_softmax,
}


def run_passes(g: Graph, names: list[str]) -> Graph:
    """Apply the named passes (in the given order) and return the rewritten graph."""
    used: set[int] = set()
    fusions: list[tuple[str, list[int], list[str], list[str]]] = []
    for name in names:
        found = PASSES[name](g, used)
        for f in found:
            if used.intersection(f[1]):
                continue
            used.update(f[1])
            fusions.append(f)
    if not fusions:
        return g
    replaced: dict[int, tuple[str, list[int], list[str], list[str]]] = {}
    for f in fusions:
        replaced[min(f[1])] = f
    nodes: list[Node] = []
    fused_info = []
    for node in g.nodes:
        if node.index in replaced:
            op, idxs, inputs, outputs = replaced[node.index]
            members = [g.nodes[i] for i in sorted(idxs)]
            fused = Node(len(nodes), f"{op}_fused_{members[0].name}", op, "quantspec.fused",
                         list(inputs), list(outputs), {},
                         tuple(m.name for m in members), tuple(m.op_type for m in members))
            nodes.append(fused)
            fused_info.append({"op_type": op, "nodes": list(fused.fused_from),
                               "body_op_types": list(fused.fused_types),
                               "outputs": list(outputs)})
        elif node.index not in used:
            nodes.append(_clone(node, index=len(nodes)))
    # tensors inside the fused nodes (and constants only they read) leave the graph
    live = {n for node in nodes for n in (*node.inputs, *node.outputs) if n}
    live |= set(g.inputs) | set(g.outputs)
    # copies: _link() and classify() below must not touch the caller's graph (they give
    # every copy fresh consumers / param_of lists, so a shallow copy is enough)
    tensors = {k: _clone(v) for k, v in g.tensors.items() if k in live}
    ng = Graph(nodes, tensors, list(g.inputs), list(g.outputs), g.path, g.fused + fused_info)
    ng._link()
    ng.classify()
    return ng


def _clone(record: _R, **changes: object) -> _R:
    """A shallow copy of a Node or Tensor record (copy.copy and dataclasses.replace cost ~10x
    more per call). Sharing is safe: nothing changes a node's input/output lists or attributes
    after loading, and _link()/classify() give tensors fresh consumer and param lists."""
    c = object.__new__(type(record))
    c.__dict__ = record.__dict__.copy()
    if changes:
        c.__dict__.update(changes)
    return c
