"""A small mutable view of an ``onnx.ModelProto`` for the graph transforms.

The transforms read and rewrite initializers as numpy arrays and rewire top-level nodes. This
module keeps the bookkeeping in one place: who produces and who consumes each tensor (counting
references from control-flow subgraphs, which read outer tensors by name), which tensors are
static, unique names, and pruning what a rewrite left unused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import QuantspecError
from .report import BAD_MODEL

FLOAT_ARRAYS = (np.float16, np.float32, np.float64)


def display_name(node: onnx.NodeProto) -> str:
    """The node's name, or ``OpType:first_output`` for an unnamed node (stable across edits)."""
    return node.name or f"{node.op_type}:{node.output[0] if node.output else '?'}"


def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def set_attr(node: onnx.NodeProto, name: str, value: Any) -> None:
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(onnx.helper.make_attribute(name, value))


def _subgraph_reads(node: onnx.NodeProto) -> set[str]:
    """Every tensor name read by nodes of ``node``'s subgraphs (If/Loop/Scan bodies)."""
    out: set[str] = set()
    for a in node.attribute:
        graphs = list(a.graphs) + ([a.g] if a.HasField("g") else [])
        for g in graphs:
            for n in g.node:
                out.update(i for i in n.input if i)
                out |= _subgraph_reads(n)
    return out


class ModelEditor:
    """Mutable helper over a model (edited in place: pass a copy to keep the original)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        if not model.HasField("graph"):
            raise QuantspecError(BAD_MODEL, "the model has no graph",
                                 hint="is this an ONNX model file?")
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self._names: set[str] = set()
        self.refresh()

    # -- indexes -----------------------------------------------------------------------------
    # Built once, then kept up to date by every edit below (a full rebuild per edit would make
    # folding N batch norms O(N^2) in the size of the graph).
    def refresh(self) -> None:
        """Rebuild every index from the graph."""
        g = self.graph
        self.inits: dict[str, onnx.TensorProto] = {t.name: t for t in g.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        self.outputs = {o.name for o in g.output}
        self.inputs = {i.name for i in g.input}
        self._names = (set(self.inits) | self.inputs | self.outputs
                       | {v.name for v in g.value_info})
        for node in g.node:
            self._index(node)

    def _index(self, node: onnx.NodeProto) -> None:
        for o in node.output:
            if o:
                self.producer[o] = node
                self._names.add(o)
        for i in _reads(node):
            self.consumers.setdefault(i, []).append(node)
        if node.name:
            self._names.add(node.name)

    def _unindex(self, node: onnx.NodeProto) -> None:
        for o in node.output:
            if o and self.producer.get(o) is node:
                del self.producer[o]
        for i in set(_reads(node)):
            users = [n for n in self.consumers.get(i, ()) if n is not node]
            if users:
                self.consumers[i] = users
            else:
                self.consumers.pop(i, None)

    def set_input(self, node: onnx.NodeProto, index: int, name: str) -> None:
        """Point input ``index`` of ``node`` at ``name`` (appending up to ``index``)."""
        self._unindex(node)
        while len(node.input) <= index:
            node.input.append("")
        node.input[index] = name
        self._index(node)

    def replace_node(self, node: onnx.NodeProto, new: onnx.NodeProto) -> None:
        """Overwrite ``node`` in place with ``new`` (same position in the graph)."""
        self._unindex(node)
        node.CopyFrom(new)
        self._index(node)

    def nodes(self) -> list[onnx.NodeProto]:
        return list(self.graph.node)

    def users(self, tensor: str) -> list[onnx.NodeProto]:
        return self.consumers.get(tensor, [])

    def uses(self, tensor: str) -> int:
        """How many places read ``tensor``: node inputs, subgraph reads, graph outputs."""
        return len(self.users(tensor)) + (1 if tensor in self.outputs else 0)

    def sole_user(self, tensor: str) -> onnx.NodeProto | None:
        """The one node reading ``tensor``, or None if it has 0 or 2+ readers or is an output."""
        users = self.users(tensor)
        if len(users) != 1 or tensor in self.outputs:
            return None
        node = users[0]
        # the same node reading it twice (Mul(x, x)) is not a single-use chain either
        return node if list(node.input).count(tensor) == 1 else None

    # -- static values -----------------------------------------------------------------------
    def array(self, name: str) -> np.ndarray | None:
        """The value of a static tensor (an initializer or a Constant node's output); None when
        the tensor is computed or fed at run time.

        Initializers also listed as graph inputs (IR < 4 exports) count as static, as the vendor
        tools treat them: they are the model's weights with a formal way to override them.
        """
        if not name:
            return None
        t = self.inits.get(name)
        if t is not None:
            return numpy_helper.to_array(t)
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            value = attr(node, "value")
            if isinstance(value, onnx.TensorProto):
                return numpy_helper.to_array(value)
            for key in ("value_float", "value_int"):
                v = attr(node, key)
                if v is not None:
                    return np.array(v)
            for key in ("value_floats", "value_ints"):
                v = attr(node, key)
                if v is not None:
                    return np.array(v)
        return None

    def float_param(self, name: str) -> np.ndarray | None:
        """A static float array that is an initializer (the only kind the transforms rewrite)."""
        if name not in self.inits:
            return None
        a = self.array(name)
        if a is None or a.dtype.type not in FLOAT_ARRAYS:
            return None
        return a

    def set_param(self, name: str, value: np.ndarray) -> None:
        """Replace an initializer's data, keeping its name and element type."""
        old = self.inits[name]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(old.data_type)
        new = numpy_helper.from_array(np.asarray(value).astype(dtype), name)
        old.CopyFrom(new)

    def add_param(self, base: str, value: np.ndarray, dtype: Any = np.float32) -> str:
        name = self.unique(base)
        t = numpy_helper.from_array(np.asarray(value).astype(dtype), name)
        self.graph.initializer.append(t)
        self.inits[name] = self.graph.initializer[-1]
        return name

    def own_param(self, node: onnx.NodeProto, index: int) -> str:
        """Make the initializer at ``node.input[index]`` private to ``node`` (copy if shared)
        and return its name, so rewriting it cannot change another node."""
        name = node.input[index]
        if self.uses(name) == 1:
            return name
        arr = numpy_helper.to_array(self.inits[name])
        new = self.add_param(f"{name}_{display_name(node)}", arr, arr.dtype)
        self.set_input(node, index, new)
        return new

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    # -- rewiring ----------------------------------------------------------------------------
    def bypass(self, node: onnx.NodeProto, keep: str) -> None:
        """Remove ``node`` (one input ``keep`` -> one output): the tensor ``keep`` is renamed to
        the node's output, so graph outputs and downstream readers keep their names."""
        out = node.output[0]
        prod = self.producer.get(keep)
        if prod is None:
            raise AssertionError(f"bypass needs a produced tensor, got {keep!r}")
        self.remove_nodes([node])
        self._unindex(prod)
        for i, o in enumerate(prod.output):
            if o == keep:
                prod.output[i] = out
        self._index(prod)
        self.drop_value_info([keep])

    def remove_nodes(self, nodes: Iterable[onnx.NodeProto]) -> None:
        # Delete by index, never rebuild the list: ``extend`` copies messages, which would leave
        # the callers' references to the other nodes pointing at stale copies.
        doomed = list(nodes)
        for n in doomed:
            self._unindex(n)
        ids = {id(n) for n in doomed}
        for i in reversed([i for i, n in enumerate(self.graph.node) if id(n) in ids]):
            del self.graph.node[i]

    def drop_value_info(self, names: Iterable[str]) -> None:
        _delete_named(self.graph.value_info, set(names))

    def prune(self, candidates: Iterable[str]) -> None:
        """Remove initializers and Constant nodes among ``candidates`` that nothing reads now."""
        dead = {c for c in candidates if c and self.uses(c) == 0}
        if not dead:
            return
        consts = {id(n): n for c in dead if (n := self.producer.get(c)) is not None
                  and n.op_type == "Constant" and all(o in dead for o in n.output)}
        self.remove_nodes(consts.values())
        dead_inits = {c for c in dead if c in self.inits}
        _delete_named(self.graph.initializer, dead_inits)
        for c in dead_inits:
            del self.inits[c]
        # an IR < 4 input that only gave the initializer a name must go with it, or the model
        # would now ask to be fed it
        if dead_inits & self.inputs:
            _delete_named(self.graph.input, dead_inits)
            self.inputs -= dead_inits
        self.drop_value_info(dead)


def _reads(node: onnx.NodeProto) -> list[str]:
    """Tensors ``node`` reads: its inputs (repeated as often as they appear), then outer
    tensors its subgraphs read."""
    reads = [i for i in node.input if i]
    return reads + sorted(_subgraph_reads(node) - set(reads))


def _delete_named(container: Any, names: set[str]) -> None:
    """Delete the messages named ``names`` from a repeated field, in place (no copies)."""
    if not names:
        return
    for i in reversed([i for i, m in enumerate(container) if m.name in names]):
        del container[i]


def layer_bias(ed: ModelEditor, node: onnx.NodeProto) -> np.ndarray | None:
    """A Conv/ConvTranspose/Gemm bias (input 2) in float64, or None when it has none."""
    if len(node.input) > 2 and node.input[2]:
        return np.asarray(ed.float_param(node.input[2]), np.float64)
    return None


def set_layer_bias(ed: ModelEditor, node: onnx.NodeProto, value: np.ndarray,
                   as_is: bool = False) -> None:
    """Write a layer's bias (input 2), adding one named after the layer if it had none.

    The value takes the old bias's shape when the sizes agree, unless ``as_is`` (Gemm biases,
    whose broadcast shape the caller chose).
    """
    value = np.asarray(value, np.float64)
    if len(node.input) > 2 and node.input[2]:
        name = ed.own_param(node, 2)
        old = ed.float_param(name)
        if not as_is and old is not None and old.size == value.size:
            value = value.reshape(old.shape)
        ed.set_param(name, value)
        return
    wtype = ed.inits[node.input[1]].data_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(wtype)
    name = ed.add_param(f"{display_name(node)}.bias", value.reshape(-1), dtype)
    ed.set_input(node, 2, name)


def iter_nodes(ed: ModelEditor, op_types: tuple[str, ...]) -> Iterator[onnx.NodeProto]:
    """Top-level nodes of the default domain with one of ``op_types``, in graph order."""
    for node in ed.nodes():
        if node.op_type in op_types and node.domain in ("", "ai.onnx"):
            yield node
