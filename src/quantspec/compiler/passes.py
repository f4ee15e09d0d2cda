"""Graph passes: fuse known subgraphs into one op before quantizers are placed.

Runtimes run these fused (a MatMul followed by a bias Add is one FullyConnected; a decomposed
LayerNorm is one kernel), so no quantizer sits inside them. A pass replaces the matched nodes by
one node of the fused type; its inner tensors and the constants only they read disappear from
the graph the compiler sees. Named in profiles as ``passes matmul_add, layer_norm``
(aimet.md B.4 describes the same passes under ``supergroup_pass_list``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..graph import Graph, Node, Tensor, _base_kind, _mark_param

# the domain of the node left where a fused node's other members were: no name, op type,
# inputs or outputs, so no rule or pattern can match it, and every node keeps its index
REMOVED = "quantspec.removed"

PassFn = Callable[[Graph, set[int]], list[tuple[str, list[int], list[str], list[str]]]]


def _single_consumer(g: Graph, tensor: str) -> Node | None:
    t = g.tensors.get(tensor)
    if t is None or t.graph_output or len(t.consumers) != 1:
        return None
    return g.nodes[t.consumers[0][0]]


def _first(names: list[str]) -> str:
    """A node's first input or output; "" when a damaged model gives it none (no tensor has
    that name, so nothing matches it)."""
    return names[0] if names else ""


def _static_rank1(g: Graph, name: str) -> bool:
    src = g.static_source(name)
    return src is not None and g.tensors[src].rank == 1


def _follow(g: Graph, node: Node, wants: tuple[str, ...]) -> list[Node] | None:
    """The single-consumer chain after ``node`` with these op types, or None."""
    chain: list[Node] = []
    for want in wants:
        nxt = _single_consumer(g, _first((chain[-1] if chain else node).outputs))
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
        nxt = _single_consumer(g, _first(tail.outputs))
        if nxt is None or nxt.op_type != op:
            break
        other = _other(nxt, _first(tail.outputs))
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
                g.static_source(_first(g.nodes[prod].inputs)) is not None
        if not static:
            continue
        add = _single_consumer(g, _first(node.outputs))
        if add is None or add.op_type != "Add" or add.index in used:
            continue
        bias = _other(add, _first(node.outputs))
        if bias is None or not _static_rank1(g, bias):
            continue
        out.append(("Gemm", [node.index, add.index], [node.inputs[0], w, bias], add.outputs))
    return out


def layer_norm(g: Graph, used: set[int]) -> list[tuple[str, list[int], list[str], list[str]]]:
    """ReduceMean -> Sub -> (Pow -> ReduceMean -> Add -> Sqrt) -> Div [-> Mul g] [-> Add b]."""
    out = []
    for rm in g.nodes:
        if rm.op_type != "ReduceMean" or rm.index in used or not rm.inputs or not rm.outputs:
            continue
        x = rm.inputs[0]
        sub = _single_consumer(g, rm.outputs[0])
        if sub is None or sub.op_type != "Sub" or sub.inputs != [x, rm.outputs[0]] or \
                not sub.outputs:
            continue
        cons = g.consumers_of(sub.outputs[0])
        pw = next((c for c in cons if c.op_type == "Pow"), None)
        div = next((c for c in cons if c.op_type == "Div"), None)
        if pw is None or div is None or len(cons) != 2:
            continue
        tail = _follow(g, pw, ("ReduceMean", "Add", "Sqrt"))
        if tail is None or _single_consumer(g, _first(tail[-1].outputs)) is not div:
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
        if pw.op_type != "Pow" or pw.index in used or not pw.inputs:
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
        sm = _single_consumer(g, _first(add.outputs))
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
    """Apply the named passes (in the given order) and return the rewritten graph (a new
    Graph: the caller's is not changed)."""
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
    return _rewrite(g, fusions, used)


def _rewrite(g: Graph, fusions: list[tuple[str, list[int], list[str], list[str]]],
             used: set[int]) -> Graph:
    """The graph with each fusion's nodes replaced by one fused node, at the index of its first
    node; the other nodes of the fusion leave a removed node (:data:`REMOVED`: no op type,
    name, inputs or outputs) in their place, so every node keeps its index, the one it has in
    the model. An update, not a rebuild: only the tensors a fused node touches are linked and
    classified again, and the other nodes and tensors are shared with ``g`` (copying every
    tensor to renumber its links dominated the pass on large graphs: benchmarks/RESULTS.md).
    Nothing here changes ``g``."""
    nodes = list(g.nodes)
    fused_info = []
    fused_nodes: list[Node] = []
    for op, idxs, inputs, outputs in sorted(fusions, key=lambda f: min(f[1])):
        members = [g.nodes[i] for i in sorted(idxs)]
        first = members[0].index
        fused = Node(first, f"{op}_fused_{members[0].name}", op, "quantspec.fused",
                     list(inputs), list(outputs), {},
                     tuple(m.name for m in members), tuple(m.op_type for m in members))
        nodes[first] = fused
        for m in members[1:]:
            nodes[m.index] = Node(m.index, "", "", REMOVED, [], [], {})
        fused_nodes.append(fused)
        fused_info.append({"op_type": op, "nodes": list(fused.fused_from),
                           "body_op_types": list(fused.fused_types), "outputs": list(outputs)})

    # tensors a fused node reads or writes, or a removed node did, and the parameters of both
    # (through Identity / Transpose): linked and classified again
    names: list[str] = []
    for i in sorted(used):
        node = g.nodes[i]
        names += node.inputs
        names += node.outputs
        names += [src for _, _, src, _ in g.param_usages(node)]
    reads: dict[str, list[tuple[int, int]]] = {}
    writes: dict[str, int] = {}
    for fused in fused_nodes:
        names += fused.inputs
        names += fused.outputs
        names += [src for _, _, src, _ in g.param_usages(fused)]
        for slot, name in enumerate(fused.inputs):
            if name:
                reads.setdefault(name, []).append((fused.index, slot))
        for name in fused.outputs:
            if name:
                writes[name] = fused.index
    touched = dict.fromkeys(names)
    touched.pop("", None)

    graph_io = set(g.inputs) | set(g.outputs)
    relinked: dict[str, Tensor | None] = {}  # None: a tensor inside a fused node (dropped)
    users: set[int] = {f.index for f in fused_nodes}  # ops that may take a touched parameter
    get = g.tensors.get
    for name in touched:
        t = get(name)
        if t is None:
            continue
        p = t.producer
        consumers = [c for c in t.consumers if c[0] not in used]
        extra = reads.get(name)
        if extra:
            consumers = sorted(consumers + extra)
        producer = writes.get(name) if p is None or p in used else p
        if producer is None and not consumers and name not in graph_io:
            relinked[name] = None
            continue
        if t.param_of:
            users.update(i for i, _ in t.param_of if i not in used)
        relinked[name] = Tensor(name, t.dtype, t.shape, producer, consumers, t.graph_input,
                                t.graph_output, t.initializer, t.constant_node, _base_kind(t),
                                "", [], t.static, False)
    tensors = dict(g.tensors)  # (a copy in C; a filtering comprehension took 4x as long)
    for name, nt in relinked.items():
        if nt is None:
            del tensors[name]
        else:
            tensors[name] = nt
    for name in [name for name, t in tensors.items() if t.producer is None and not t.consumers
                 and name not in graph_io]:
        del tensors[name]  # no node reads or writes it (a rebuild dropped all such names)
    ng = Graph(nodes, tensors, list(g.inputs), list(g.outputs), g.path, g.fused + fused_info)
    # classify the touched tensors again: the ops that take them as a parameter, in graph
    # order, are those that did in g (less the removed nodes) and the fused nodes
    for i in sorted(users):
        for _slot, role, src, transposed in ng.param_usages(nodes[i]):
            if src in touched:
                _mark_param(tensors[src], i, role, transposed)
    return ng
