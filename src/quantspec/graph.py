"""A light, read-only view of an ONNX graph: ops, tensors, their kinds, edges and channel axes.

Structure only: external data is never loaded (``load_external_data=False``), so a multi-GB model
opens in the time it takes to read its protobuf. Tensor kinds follow the parameter slots of
ONNX op types (aimet.md B.1): a static tensor at a parameter input is a weight / bias / other
param; any other static float tensor consumed by an op is a ``constant``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import QuantspecError
from .source import Span

FLOAT_TYPES = frozenset({"float", "float16", "bfloat16", "double"})

# op type -> {input index: param role}; aimet.md B.1 (the ONNX parameter inputs of each op)
PARAM_SLOTS: dict[str, dict[int, str]] = {
    **{t: {1: "weight", 2: "bias"} for t in (
        "Conv", "ConvTranspose", "Gemm", "InstanceNormalization", "LayerNormalization",
        "GroupNormalization")},
    "RMSNormalization": {1: "weight"},
    "BatchNormalization": {1: "weight", 2: "bias", 3: "running_mean", 4: "running_var"},
    **{t: {1: "weight", 2: "weight_r", 3: "bias"} for t in ("RNN", "LSTM", "GRU")},
    "MatMul": {1: "weight"},
}

KINDS = ("model_input", "activation", "constant", "weight", "bias", "param")


@dataclass
class Node:
    index: int
    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    fused_from: tuple[str, ...] = ()  # original node names when a graph pass fused them
    fused_types: tuple[str, ...] = ()

    def where(self) -> Span:
        return Span("<model>", path=f"node '{self.name}' ({self.op_type}, #{self.index})")


@dataclass
class Tensor:
    name: str
    dtype: str = ""  # onnx element type name, lower case ("float", "int64", ...), "" unknown
    shape: tuple[Any, ...] | None = None
    producer: int | None = None  # node index
    consumers: list[tuple[int, int]] = field(default_factory=list)  # (node index, input slot)
    graph_input: bool = False
    graph_output: bool = False
    initializer: bool = False
    constant_node: bool = False  # output of a Constant / ConstantOfShape node
    kind: str = "activation"
    role: str = ""  # param role (weight, bias, weight_r, running_mean, running_var)
    param_of: list[tuple[int, str]] = field(default_factory=list)
    static: bool = False
    transposed_param: bool = False  # MatMul weight stored pre-Transpose (aimet.md B.6)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_TYPES or self.dtype == ""

    @property
    def is_param(self) -> bool:
        return self.kind in ("weight", "bias", "param")

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)


@dataclass
class Graph:
    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: list[str]
    outputs: list[str]
    path: str = "<model>"
    fused: list[dict[str, Any]] = field(default_factory=list)  # graph-pass fusions applied

    # --- construction ------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Graph:
        import onnx

        p = os.fspath(path)
        if not os.path.exists(p):
            raise QuantspecError("E301", f"model not found: {p}", Span(p))
        try:
            model = onnx.load(p, load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError / various on garbage
            raise QuantspecError("E302", f"cannot read ONNX model: {exc}", Span(p),
                                 hint="is this an .onnx file?") from None
        return cls.from_model(model, p)

    @classmethod
    def from_model(cls, model: Any, path: str = "<model>") -> Graph:
        import onnx

        if isinstance(model, onnx.ModelProto) and not model.HasField("graph"):
            # protobuf parses many non-model files (even an empty one) as an empty ModelProto
            raise QuantspecError("E309", "the file holds no ONNX graph", Span(path),
                                 hint="is this an .onnx model?")
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        except Exception:
            inferred = model
        g = inferred.graph
        _check_text(g, path)
        tensors: dict[str, Tensor] = {}

        def t(name: str) -> Tensor:
            if name not in tensors:
                tensors[name] = Tensor(name)
            return tensors[name]

        def set_type(vi: Any) -> None:
            tt = vi.type.tensor_type
            if not vi.type.HasField("tensor_type"):
                return
            ten = t(vi.name)
            if tt.elem_type:
                ten.dtype = _known_dtype(tt.elem_type, vi.name, path)
            if tt.HasField("shape"):
                ten.shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or None
                                  for d in tt.shape.dim)

        inits = {i.name for i in g.initializer}
        for init in g.initializer:
            ten = t(init.name)
            ten.initializer = True
            ten.static = True
            ten.dtype = _known_dtype(init.data_type, init.name, path) if init.data_type else \
                "undefined"
            ten.shape = tuple(init.dims)
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            set_type(vi)
        inputs = [vi.name for vi in g.input if vi.name not in inits]
        for name in inputs:
            t(name).graph_input = True
        outputs = [vi.name for vi in g.output]
        for name in outputs:
            t(name).graph_output = True

        nodes: list[Node] = []
        for i, n in enumerate(g.node):
            skip = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            where = Span(path, path=f"node '{n.name or i}' (#{i})")
            if not n.op_type:
                raise QuantspecError("E311", f"node '{n.name or i}' has no op_type", where,
                                     hint="the model is damaged; run onnx.checker")
            try:
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute
                         if a.type not in skip}
            except Exception:  # onnx raises ValueError/TypeError on an unknown attribute type
                raise QuantspecError("E311", f"node '{n.name or i}' ({n.op_type}) has an "
                                     "attribute that cannot be read", where,
                                     hint="the model is damaged; run onnx.checker") from None
            node = Node(i, n.name or f"{n.op_type}_{i}", n.op_type, n.domain,
                        list(n.input), list(n.output), attrs)
            nodes.append(node)
        graph = cls(nodes, tensors, inputs, outputs, path)
        graph._link()
        graph._constant_nodes()
        graph._check()
        graph.classify()
        return graph

    def _link(self) -> None:
        tensors = self.tensors  # local lookups: this runs per compile with graph passes
        for ten in tensors.values():
            ten.producer = None
            ten.consumers = []
        for node in self.nodes:
            index = node.index
            for slot, name in enumerate(node.inputs):
                if name:
                    ten = tensors.get(name) or self.tensor(name)
                    ten.consumers.append((index, slot))
            for name in node.outputs:
                if name:
                    (tensors.get(name) or self.tensor(name)).producer = index

    def tensor(self, name: str) -> Tensor:
        if name not in self.tensors:
            self.tensors[name] = Tensor(name)
        return self.tensors[name]

    def _constant_nodes(self) -> None:
        import onnx

        for node in self.nodes:
            if node.op_type in ("Constant", "ConstantOfShape") and node.domain in ("", "ai.onnx"):
                value = node.attrs.get("value")
                if value is not None and not isinstance(value, onnx.TensorProto):
                    raise QuantspecError("E311", f"node '{node.name}' ({node.op_type}): attribute "
                                         "'value' is not a tensor", self._where(node),
                                         hint="the model is damaged; run onnx.checker")
                for out in node.outputs:
                    ten = self.tensor(out)
                    ten.constant_node = True
                    ten.static = node.op_type == "Constant"
                    if node.op_type == "Constant" and "value" in node.attrs:
                        val = node.attrs["value"]
                        ten.dtype = ten.dtype or _dtype_name(val.data_type)
                        if ten.shape is None:
                            ten.shape = tuple(val.dims)
                    elif node.op_type == "Constant" and "value_float" in node.attrs:
                        ten.dtype = ten.dtype or "float"
                        ten.shape = ten.shape or ()
                    elif node.op_type == "ConstantOfShape" and "value" in node.attrs:
                        ten.dtype = ten.dtype or _dtype_name(node.attrs["value"].data_type)
        del onnx

    def _where(self, node: Node) -> Span:
        return Span(self.path, path=node.where().path)

    def _check(self) -> None:
        static = set(self.inputs) | {n for n, t in self.tensors.items() if t.initializer}
        producer: dict[str, Node] = {}
        for node in self.nodes:  # ONNX is SSA: one producer per tensor (E308)
            for name in node.outputs:
                if not name:
                    continue
                if name in producer or name in static:
                    first = (f"node '{producer[name].name}'" if name in producer
                             else "a graph input or initializer")
                    raise QuantspecError("E308", f"node '{node.name}' ({node.op_type}) writes "
                                         f"'{name}', which {first} already provides",
                                         self._where(node),
                                         hint="each tensor has one producer; run onnx.checker")
                producer[name] = node
        known = static | set(producer)
        for node in self.nodes:
            for name in node.inputs:
                if name and name not in known:
                    raise QuantspecError("E303", f"node '{node.name}' ({node.op_type}) reads "
                                         f"'{name}', which no node, input or initializer "
                                         "provides", self._where(node),
                                         hint="the model is incomplete; run onnx.checker")
        for name in self.outputs:
            if name not in known:
                raise QuantspecError("E303", f"graph output '{name}' is never produced",
                                     Span(self.path, path=f"output '{name}'"))
        self.topo_order()  # raises on cycles

    def topo_order(self) -> list[int]:
        indeg = {n.index: 0 for n in self.nodes}
        succ: dict[int, list[int]] = {n.index: [] for n in self.nodes}
        for n in self.nodes:
            for name in n.inputs:
                p = self.tensors[name].producer if name in self.tensors else None
                if p is not None:
                    indeg[n.index] += 1
                    succ[p].append(n.index)
        ready = [i for i, d in indeg.items() if d == 0]
        order: list[int] = []
        while ready:
            i = ready.pop()
            order.append(i)
            for j in succ[i]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    ready.append(j)
        if len(order) != len(self.nodes):
            stuck = next(n for n in self.nodes if indeg[n.index] > 0)
            raise QuantspecError("E304", "the graph has a cycle", self._where(stuck),
                                 hint="ONNX graphs must be acyclic")
        return order

    # --- classification ---------------------------------------------------------------
    def static_source(self, name: str) -> str | None:
        """The static tensor behind ``name`` (through Identity chains), or None."""
        seen = 0
        while name in self.tensors and seen < 64:
            ten = self.tensors[name]
            if ten.static:
                return name
            if ten.producer is None:
                return None
            node = self.nodes[ten.producer]
            if node.op_type != "Identity" or not node.inputs:  # a damaged model may have none
                return None
            name = node.inputs[0]
            seen += 1
        return None

    def classify(self) -> None:
        for ten in self.tensors.values():
            ten.kind, ten.role, ten.param_of, ten.transposed_param = "activation", "", [], False
            if ten.graph_input:
                ten.kind = "model_input"
            elif ten.static or ten.constant_node:
                ten.kind = "constant"
        for node in self.nodes:
            slots = PARAM_SLOTS.get(node.op_type, {}) if node.domain in ("", "ai.onnx") or \
                node.fused_types else {}
            for slot, role in slots.items():
                if slot >= len(node.inputs) or not node.inputs[slot]:
                    continue
                name = node.inputs[slot]
                src = self.static_source(name)
                transposed = False
                is_matmul = node.op_type == "MatMul" or node.fused_types[:1] == ("MatMul",)
                if src is None and is_matmul and slot == 1:
                    prod = self.tensors[name].producer
                    if prod is not None and self.nodes[prod].op_type == "Transpose" and \
                            self.nodes[prod].inputs:
                        src = self.static_source(self.nodes[prod].inputs[0])
                        transposed = src is not None
                if src is None:
                    continue
                ten = self.tensors[src]
                ten.kind = role if role in ("weight", "bias") else "param"
                ten.role = role
                ten.param_of.append((node.index, role))
                ten.transposed_param = ten.transposed_param or transposed

    # --- queries ----------------------------------------------------------------------
    def channel_axis(self, name: str) -> int | None:
        """Per-channel axis of a parameter (aimet.md B.6); None when it has none."""
        ten = self.tensors[name]
        if not ten.param_of or not ten.shape:  # unknown, or a scalar: no channels
            return None
        rank = len(ten.shape)
        if rank == 1:
            return 0
        node = self.nodes[ten.param_of[0][0]]
        op = node.op_type
        if node.fused_types[:1] == ("MatMul",) or op == "MatMul":
            ax = -2 if ten.transposed_param else -1
            return ax % rank
        if op == "Conv":
            return 0
        if op == "ConvTranspose":
            return 1
        if op == "Gemm":
            return 0 if node.attrs.get("transB", 0) else 1
        return None

    def consumers_of(self, name: str) -> list[Node]:
        return [self.nodes[i] for i, _ in self.tensors[name].consumers]

    def op_consumers(self, node: Node) -> list[Node]:
        """Distinct consumer nodes of all of ``node``'s outputs, in graph order."""
        seen: dict[int, Node] = {}
        for out in node.outputs:
            if out in self.tensors:
                for i, _ in self.tensors[out].consumers:
                    seen.setdefault(i, self.nodes[i])
        return [seen[i] for i in sorted(seen)]

    def is_depthwise_or_3d(self, node: Node) -> bool:
        """aimet.md B.3 ``_check_if_conv3d_or_depthwise_conv``."""
        if node.op_type not in ("Conv", "ConvTranspose"):
            return False
        w = self.tensors.get(node.inputs[1]) if len(node.inputs) > 1 else None
        x = self.tensors.get(node.inputs[0]) if node.inputs else None
        for ten in (w, x):
            if ten is not None and ten.rank == 5:
                return True
        group = node.attrs.get("group", 1) or 1
        if not isinstance(group, int) or group <= 1 or w is None or w.shape is None or \
                len(w.shape) < 2:  # a malformed attribute or weight is not depthwise
            return False
        if node.op_type == "Conv":
            return w.shape[1] == 1
        return w.shape[0] == group

    def predicate(self, node: Node, name: str, op: str = "", value: Any = None) -> bool:
        """Attribute predicates usable in ``op T (pred)`` selectors."""
        if name == "depthwise":
            got: Any = self.is_depthwise_or_3d(node) and not self._is_3d(node)
        elif name == "conv3d":
            got = self._is_3d(node)
        elif name == "dynamic":
            # a weight input that is not a parameter (e.g. MatMul of two activations)
            got = len(node.inputs) > 1 and node.inputs[1] in self.tensors and \
                not self.tensors[node.inputs[1]].is_param
        elif name == "grouped":
            group = node.attrs.get("group", 1) or 1
            got = isinstance(group, int) and group > 1
        else:
            got = node.attrs.get(name)
            if isinstance(got, bytes):
                got = got.decode("utf-8", "replace")
        if not op:
            return bool(got)
        return _compare(got, op, value)

    def _is_3d(self, node: Node) -> bool:
        for name in node.inputs[:2]:
            ten = self.tensors.get(name)
            if ten is not None and ten.rank == 5:
                return True
        return False

    def terminal_outputs(self) -> list[str]:
        """Outputs of ops none of whose outputs feed another op (aimet.md B.2 step 6)."""
        out: list[str] = []
        tensors = self.tensors
        for node in self.nodes:
            if node.op_type in ("Constant", "ConstantOfShape"):
                continue
            # no output read by any op (op_consumers(node) is empty), without building it
            for o in node.outputs:
                t = tensors.get(o)
                if t is not None and t.consumers:
                    break
            else:
                out += [o for o in node.outputs if o]
        return out

    def float_tensors(self) -> Iterable[Tensor]:
        return (t for t in self.tensors.values() if t.is_float)


def _compare(got: Any, op: str, value: Any) -> bool:
    if isinstance(got, list):  # ONNX ints attributes are lists; .qspec lists parse as tuples
        got = tuple(got)
    try:
        if op == "==":
            return bool(got == value)
        if op == "!=":
            return bool(got != value)
        if got is None:
            return False
        if op == ">":
            return bool(got > value)
        if op == ">=":
            return bool(got >= value)
        if op == "<":
            return bool(got < value)
        if op == "<=":
            return bool(got <= value)
    except TypeError:
        return False
    return False


def _check_text(g: Any, path: str) -> None:
    """E311: protobuf hands back ``bytes`` for a string field that is not valid UTF-8."""
    for i, n in enumerate(g.node):
        for v in (n.name, n.op_type, n.domain, *n.input, *n.output,
                  *(a.name for a in n.attribute)):
            if isinstance(v, bytes):
                raise QuantspecError("E311", f"node #{i} holds a name that is not UTF-8 text: "
                                     f"{v[:40]!r}", Span(path, path=f"node #{i}"),
                                     hint="the model is damaged; run onnx.checker")
    for vi in (*g.initializer, *g.input, *g.output, *g.value_info):
        if isinstance(vi.name, bytes):
            raise QuantspecError("E311", f"a tensor name is not UTF-8 text: {vi.name[:40]!r}",
                                 Span(path), hint="the model is damaged; run onnx.checker")


def _known_dtype(elem_type: int, name: str, path: str) -> str:
    """The dtype name, or E310: an unknown element type would otherwise count as float."""
    dtype = _dtype_name(elem_type)
    if not dtype:
        raise QuantspecError("E310", f"tensor '{name}' has an unknown element type {elem_type}",
                             Span(path, path=f"tensor '{name}'"),
                             hint="the model is damaged, or needs a newer onnx package")
    return dtype


def _dtype_name(elem_type: int) -> str:
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return ""
