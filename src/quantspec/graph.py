"""A light, read-only view of an ONNX graph: ops, tensors, their kinds, edges and channel axes.

Structure only: external data is never loaded (``load_external_data=False``), so a multi-GB model
opens in the time it takes to read its protobuf. Tensor kinds follow the parameter slots of
ONNX op types (aimet.md B.1): a static tensor at a parameter input is a weight / bias / other
param; any other static float tensor consumed by an op is a ``constant``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from . import infer
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


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a graph view or a plan is built.

    Both allocate a few container objects per tensor and free almost none of them, and none
    form cycles; the collector would traverse them (and everything else alive) again and
    again, which made the time grow faster than the graph (benchmarks/RESULTS.md). On the
    way out the survivors are moved straight to the oldest generation (``gc.freeze()`` then
    ``gc.unfreeze()``: two list splices) instead of being traversed by the next young
    collections. Skipped when the process has frozen objects of its own, which ``unfreeze``
    would release."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


@dataclass(slots=True)
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


@dataclass(slots=True)
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
        try:  # the bytes infer_shapes would send to onnx's C++ side (serialized once)
            data: Any = model.SerializeToString()
        except Exception:  # over protobuf's 2 GiB limit: inference fails as it did
            data = model
        if isinstance(data, bytes):
            _check_dims(model.graph, data, path)
        types = infer.start(model, data)  # beside the view on large graphs (quantspec.infer)
        try:
            with paused_gc():
                return cls._from_graph(model.graph, path, types)
        finally:
            types()  # reaps a child the view did not wait for (it stopped on an error)

    @classmethod
    def _from_graph(cls, g: Any, path: str, types: Callable[[], infer.ValueTypes]) -> Graph:
        """The view of a GraphProto whose values have the types ``types()`` gives (inferred,
        or the ones the graph declares: :func:`quantspec.infer.start`).

        Every protobuf field access builds a wrapper object (~0.2-1 us each with the upb
        backend), which dominated this function on large graphs (benchmarks/RESULTS.md), so
        each field is read once, and linking, the SSA check and the topological-order check
        share one loop over the nodes. The nodes are linked before the types are asked for,
        so that inference running in another process overlaps the linking. Errors are raised
        in the order of the checks they replace: text (E311), element types (E310), node op
        types and attributes (E311), Constant values (E311), one producer per tensor (E308),
        unknown inputs and outputs (E303), cycles (E304)."""

        rows = [(n.name, n.op_type, n.domain, n.input[:], n.output[:], n.attribute)  # lists
                for n in g.node]
        inits = [(i.name, i.data_type, tuple(i.dims)) for i in g.initializer]
        input_names = [vi.name for vi in g.input]
        outputs = [vi.name for vi in g.output]
        declared = [(vi.name,) for vi in g.value_info]
        if not _all_text(rows, inits, [(n,) for n in chain(input_names, outputs)] + declared):
            _check_text(g, path)  # names the first offending string

        tensors: dict[str, Tensor] = {}
        dtype_of: dict[int, str] = {}
        for name, elem, dims in inits:
            if elem:
                dtype = dtype_of.get(elem) or dtype_of.setdefault(
                    elem, _known_dtype(elem, name, path))
            else:
                dtype = "undefined"
            ten = tensors.get(name)
            if ten is None:
                tensors[name] = Tensor(name, dtype, dims, initializer=True, static=True,
                                       kind="constant")
            else:  # an initializer listed twice: the last one's type
                ten.dtype, ten.shape = dtype, dims
        inputs = []
        for name in input_names:
            ten = tensors.get(name)
            if ten is not None and ten.initializer:
                continue
            inputs.append(name)
            if ten is None:
                ten = tensors[name] = Tensor(name)
            ten.graph_input = True
            ten.kind = "model_input"
        for name in outputs:
            ten = tensors.get(name)
            if ten is None:
                ten = tensors[name] = Tensor(name)
            ten.graph_output = True

        graph = cls([], tensors, inputs, outputs, path)
        failed: QuantspecError | None = None
        try:  # the checks after linking come after the type checks (E310), so they wait
            nodes, constants, duplicate, later = _link(rows, tensors, path)
            graph.nodes = nodes
            for i in constants:  # a declared or inferred type overrides the value's below
                graph._constant_node(nodes[i])
            graph._check_linked(duplicate, later)
            graph._classify_params()  # base kinds were set as the tensors were made
        except QuantspecError as exc:
            failed = exc
        vis = types()
        _apply_types(tensors, vis, dtype_of, path)
        if failed is not None:
            raise failed
        # the order the tensors had when the types were read before the nodes: initializers,
        # declared values, inputs, outputs, then the rest in node order (plans list it)
        order = {n: tensors[n] for n in chain((r[0] for r in inits),
                                               (n for n, i in zip(vis.names, vis.index,
                                                                   strict=True) if i >= 0),
                                               input_names, outputs)}
        if len(order) != len(tensors):
            for name, ten in tensors.items():
                order.setdefault(name, ten)
        graph.tensors = order
        return graph

    def tensor(self, name: str) -> Tensor:
        if name not in self.tensors:
            self.tensors[name] = Tensor(name)
        return self.tensors[name]

    def _constant_node(self, node: Node) -> None:
        """Outputs of a Constant / ConstantOfShape node: static (Constant), dtype and shape from
        the value when shape inference gave none."""
        import onnx

        value = node.attrs.get("value")
        # an attribute of type UNDEFINED reads as None: as damaged as a non-tensor value
        if "value" in node.attrs and not isinstance(value, onnx.TensorProto):
            raise QuantspecError("E311", f"node '{node.name}' ({node.op_type}): attribute "
                                 "'value' is not a tensor", self._where(node),
                                 hint="the model is damaged; run onnx.checker")
        for out in node.outputs:
            ten = self.tensor(out)
            ten.constant_node = True
            ten.static = node.op_type == "Constant"
            ten.kind = _base_kind(ten)
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

    def _where(self, node: Node) -> Span:
        return Span(self.path, path=node.where().path)

    def _check_linked(self, duplicate: tuple[Node, str, str] | None, later: list[str]) -> None:
        """E308 / E303 / E304 after linking: ``duplicate`` is the first output written a second
        time (the node, the tensor, what provided it first); ``later`` the inputs read before
        any node wrote them (none when the nodes are in topological order: then there is no
        cycle either)."""
        if duplicate is not None:  # ONNX is SSA: one producer per tensor
            node, name, first = duplicate
            raise QuantspecError("E308", f"node '{node.name}' ({node.op_type}) writes "
                                 f"'{name}', which {first} already provides", self._where(node),
                                 hint="each tensor has one producer; run onnx.checker")
        tensors = self.tensors

        def known(name: str) -> bool:
            t = tensors.get(name)
            return t is not None and (t.producer is not None or t.initializer or t.graph_input)

        if not all(known(name) for name in later):
            for node in self.nodes:  # the first node in graph order that reads one
                for name in node.inputs:
                    if name and not known(name):
                        raise QuantspecError(
                            "E303", f"node '{node.name}' ({node.op_type}) reads '{name}', which "
                            "no node, input or initializer provides", self._where(node),
                            hint="the model is incomplete; run onnx.checker")
        for name in self.outputs:
            if not known(name):
                raise QuantspecError("E303", f"graph output '{name}' is never produced",
                                     Span(self.path, path=f"output '{name}'"))
        if later:
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
            ten.kind, ten.role, ten.param_of, ten.transposed_param = _base_kind(ten), "", [], \
                False
        self._classify_params()

    def _classify_params(self) -> None:
        """Parameter kinds and roles, on tensors that have their base kind and no param_of."""
        tensors = self.tensors
        for node in self.nodes:
            if node.op_type in PARAM_SLOTS:
                for _slot, role, src, transposed in self.param_usages(node):
                    _mark_param(tensors[src], node.index, role, transposed)

    def param_usages(self, node: Node) -> list[tuple[int, str, str, bool]]:
        """(input slot, role, static tensor, read through a Transpose) for each parameter input
        of ``node`` (aimet.md B.1), in slot order."""
        slots = PARAM_SLOTS.get(node.op_type)
        if not slots or not (node.domain in ("", "ai.onnx") or node.fused_types):
            return []
        out = []
        inputs = node.inputs
        tensors = self.tensors
        for slot, role in slots.items():
            if slot >= len(inputs) or not inputs[slot]:
                continue
            name = inputs[slot]
            t = tensors.get(name)
            if t is not None and t.static:  # static_source's first step (the common case)
                out.append((slot, role, name, False))
                continue
            src = self.static_source(name)
            transposed = False
            if src is None and slot == 1 and (node.op_type == "MatMul" or
                                              node.fused_types[:1] == ("MatMul",)):
                prod = self.tensors[name].producer
                if prod is not None and self.nodes[prod].op_type == "Transpose" and \
                        self.nodes[prod].inputs:
                    src = self.static_source(self.nodes[prod].inputs[0])
                    transposed = src is not None
            if src is not None:
                out.append((slot, role, src, transposed))
        return out

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
        # only ops that write a tensor nobody reads can qualify: one pass over the tensors
        # (no name lookups) instead of a lookup per op output
        maybe = sorted({t.producer for t in tensors.values()
                        if not t.consumers and t.producer is not None})
        nodes = self.nodes
        for i in maybe:
            node = nodes[i]
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


def _base_kind(ten: Tensor) -> str:
    """A tensor's kind before parameter slots are looked at."""
    if ten.graph_input:
        return "model_input"
    return "constant" if ten.static or ten.constant_node else "activation"


def _mark_param(ten: Tensor, node: int, role: str, transposed: bool) -> None:
    """``ten`` is a parameter of ``node`` in ``role``; the last op (in graph order) that uses
    it decides its kind."""
    ten.kind = role if role in ("weight", "bias") else "param"
    ten.role = role
    ten.param_of.append((node, role))
    ten.transposed_param = ten.transposed_param or transposed


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


def _link(rows: list[tuple[Any, ...]], tensors: dict[str, Tensor], path: str
          ) -> tuple[list[Node], list[int], tuple[Node, str, str] | None, list[str]]:
    """The nodes of ``rows``, linked to ``tensors`` (made as they are first named): the
    nodes, the indices of Constant nodes, the first tensor written twice (E308: the node,
    the name, what provided it first) and the inputs read before any node wrote them."""
    import onnx

    skip = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    get_value = onnx.helper.get_attribute_value
    nodes: list[Node] = []
    constants: list[int] = []
    duplicate: tuple[Node, str, str] | None = None
    later: list[str] = []
    for i, (name, op, domain, ins, outs, attributes) in enumerate(rows):
        if not op:
            raise QuantspecError("E311", f"node '{name or i}' has no op_type",
                                 Span(path, path=f"node '{name or i}' (#{i})"),
                                 hint="the model is damaged; run onnx.checker")
        attrs: dict[str, Any] = {}
        if attributes:
            try:
                attrs = {a.name: get_value(a) for a in attributes if a.type not in skip}
            except Exception:  # onnx raises ValueError/TypeError on an unknown type
                raise QuantspecError(
                    "E311", f"node '{name or i}' ({op}) has an attribute that cannot be "
                    "read", Span(path, path=f"node '{name or i}' (#{i})"),
                    hint="the model is damaged; run onnx.checker") from None
        node = Node(i, name or f"{op}_{i}", op, domain, ins, outs, attrs)
        nodes.append(node)
        if op in ("Constant", "ConstantOfShape") and domain in ("", "ai.onnx"):
            constants.append(i)
        for slot, tname in enumerate(ins):
            if tname:
                ten = tensors.get(tname)
                if ten is None:
                    ten = tensors[tname] = Tensor(tname)
                ten.consumers.append((i, slot))
                if ten.producer is None and not ten.initializer and not ten.graph_input:
                    later.append(tname)
        for tname in outs:
            if tname:
                ten = tensors.get(tname)
                if ten is None:
                    ten = tensors[tname] = Tensor(tname)
                elif duplicate is None and (ten.producer is not None or ten.initializer
                                            or ten.graph_input):
                    first = "a graph input or initializer" if ten.producer is None \
                        else f"node '{nodes[ten.producer].name}'"
                    duplicate = (node, tname, first)
                ten.producer = i
    return nodes, constants, duplicate, later


def _apply_types(tensors: dict[str, Tensor], vis: infer.ValueTypes, dtype_of: dict[int, str],
                 path: str) -> None:
    """Set the declared or inferred types on the tensors (E310 on an unknown element type,
    naming the first value that has it); a value no node reads or writes gets a tensor of its
    own."""
    types = vis.types
    dtypes: list[str | None] = [None] * len(types)  # per distinct type, at its first value
    get = tensors.get
    for name, i in zip(vis.names, vis.index, strict=True):
        if i < 0:
            continue
        elem, shape = types[i]
        dtype = dtypes[i]
        if dtype is None:
            dtype = dtypes[i] = (dtype_of.get(elem) or dtype_of.setdefault(
                elem, _known_dtype(elem, name, path))) if elem else ""
        ten = get(name)
        if ten is None:
            tensors[name] = Tensor(name, dtype, shape)
            continue
        if dtype:
            ten.dtype = dtype
        if shape is not None:
            ten.shape = shape


def _all_text(rows: list[tuple[Any, ...]], inits: list[tuple[Any, ...]],
              vis: list[tuple[Any, ...]]) -> bool:
    """Whether every name read from the graph is ``str`` (see :func:`_check_text`); the type
    tests run in C over the columns of ``rows``."""
    if rows:
        names, ops, domains, ins, outs, attributes = zip(*rows, strict=True)
        strings = chain(names, ops, domains, chain.from_iterable(ins),
                        chain.from_iterable(outs), (r[0] for r in inits), (r[0] for r in vis))
    else:
        attributes = ()
        strings = chain((r[0] for r in inits), (r[0] for r in vis))
    if set(map(type, strings)) - {str}:
        return False
    return all(type(a.name) is str for at in attributes if at for a in at)


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


def _check_dims(g: Any, data: bytes, path: str) -> None:
    """E312: a negative dimension (in a graph input, output, value_info, initializer or a
    Constant's value) makes onnx's shape inference abort the process (a C++ assertion in
    Slice's inference), so it is refused before inference. A negative int64 in field 1 of a
    message (``TensorShapeProto.Dimension.dim_value``, ``TensorProto.dims``) is serialized as
    0x08 and a 10-byte varint ending in 0x01: only models whose bytes hold that sequence (rare
    outside such fields) are walked."""
    import re

    if not re.search(rb"\x08[\x80-\xff]{9}\x01", data):
        return
    stack = [g]
    while stack:
        graph = stack.pop()
        found = [(vi.name, d.dim_value) for vi in (*graph.input, *graph.output, *graph.value_info)
                 for d in vi.type.tensor_type.shape.dim if d.dim_value < 0]
        tensors = list(graph.initializer)
        for n in graph.node:
            for a in n.attribute:
                tensors += [a.t, *a.tensors]
                stack += [a.g, *a.graphs]
        found += [(t.name or "<constant>", d) for t in tensors for d in t.dims if d < 0]
        if found:
            name, dim = found[0]
            raise QuantspecError("E312", f"tensor '{name}' has a negative dimension ({dim})",
                                 Span(path, path=f"tensor '{name}'"),
                                 hint="dimensions are sizes (>= 0) or names; the model is "
                                 "damaged: run onnx.checker")


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
