"""Selectors -> the tensors they pick in a graph.

A selector names a scope (``defaults``, ``op``, ``model_input``, ...) and a slot (which tensors
of the matched ops: ``output``, ``input``, ``weight``, ...). Lookups go through indexes built once
per graph so a profile of R rules on a graph of N nodes costs O(R + matches), not O(R x N).
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Iterable

from .. import ir
from ..graph import Graph, Node


class Index:
    """Per-graph lookup tables for selection."""

    def __init__(self, graph: Graph, candidates: Iterable[str], model_output: str) -> None:
        self.graph = graph
        self.candidates = list(candidates)
        self.cand = set(self.candidates)
        self.by_type: dict[str, list[Node]] = defaultdict(list)
        self.by_name: dict[str, Node] = {node.name: node for node in graph.nodes}
        by_type = self.by_type
        for node in graph.nodes:
            by_type[node.op_type].append(node)
        self._param_cache: dict[int, list[tuple[str, frozenset[str]]]] = {}
        self.by_kind: dict[str, list[str]] = defaultdict(list)
        self.by_role: dict[str, list[str]] = defaultdict(list)
        self.outputs: list[str] = []
        self.inputs: list[str] = []
        # local names: this loop runs once per candidate tensor on every compile
        tensors, by_kind, by_role = graph.tensors, self.by_kind, self.by_role
        outputs, inputs = self.outputs.append, self.inputs.append
        params = ("weight", "bias", "param")  # Tensor.is_param
        for name in self.candidates:
            t = tensors[name]
            kind = t.kind
            by_kind[kind].append(name)
            if t.role:
                by_role[t.role].append(name)
            if t.producer is not None and not t.constant_node:
                outputs(name)
            if t.consumers and kind not in params:
                inputs(name)
        if model_output == "graph":
            self.model_outputs = [n for n in graph.outputs if n in self.cand]
        else:
            self.model_outputs = [n for n in graph.terminal_outputs() if n in self.cand]

    # -- entry point ---------------------------------------------------------------------
    def select(self, sel: ir.Selector) -> list[str]:
        if sel.scope == "defaults":
            return self._defaults(sel)
        if sel.scope == "op":
            nodes = [n for t in sel.op_types for n in self.by_type.get(t, ())]
            if sel.where:
                nodes = [n for n in nodes
                         if all(self.graph.predicate(n, p.name, p.op, p.value) for p in sel.where)]
            return self._slot_of_nodes(nodes, sel)
        if sel.scope == "layer":
            return self._slot_of_nodes(self._layers(sel.names), sel)
        if sel.scope == "model_input":
            if sel.slot == "constant":
                return list(self.by_kind.get("constant", ()))
            return [n for n in self.graph.inputs if n in self.cand]
        if sel.scope == "model_output":
            return list(self.model_outputs)
        if sel.scope == "tensor":
            return self._tensors(sel.names)
        raise AssertionError(sel.scope)

    def _defaults(self, sel: ir.Selector) -> list[str]:
        slot = sel.slot
        if slot == "tensor":
            return list(self.candidates)
        if slot == "output":
            return list(self.outputs)
        if slot == "input":
            return list(self.inputs)
        if slot == "param":
            return [n for k in ("weight", "bias", "param") for n in self.by_kind.get(k, ())]
        if slot in ("constant", "graph_input"):
            return list(self.by_kind.get("constant" if slot == "constant" else "model_input", ()))
        return list(self.by_role.get(slot, ()))

    def _layers(self, patterns: tuple[str, ...]) -> list[Node]:
        out: dict[int, Node] = {}
        for pat in patterns:
            if _is_glob(pat):
                rx = re.compile(fnmatch.translate(pat))
                for node in self.graph.nodes:
                    if rx.match(node.name):
                        out[node.index] = node
            elif pat in self.by_name:
                node = self.by_name[pat]
                out[node.index] = node
        return [out[i] for i in sorted(out)]

    def _tensors(self, patterns: tuple[str, ...]) -> list[str]:
        out: list[str] = []
        for pat in patterns:
            if _is_glob(pat):
                rx = re.compile(fnmatch.translate(pat))
                out += [n for n in self.candidates if rx.match(n)]
            elif pat in self.cand:
                out.append(pat)
        return list(dict.fromkeys(out))

    def _slot_of_nodes(self, nodes: list[Node], sel: ir.Selector) -> list[str]:
        slot, index = sel.slot, sel.index
        tensors = self.graph.tensors
        # what the slot takes, decided once (not per node)
        want_out = slot in ("output", "tensor")
        out_range = None if index is None or slot == "tensor" else (index, index + 1)
        want_in = slot in ("input", "tensor", "constant", "graph_input")
        in_range = None if index is None or slot != "input" else (index, index + 1)
        skip_params = not (slot == "input" and index is not None)
        kind = {"constant": "constant", "graph_input": "model_input"}.get(slot)
        want_params = slot not in ("input", "output", "constant", "graph_input") and (
            slot in ("param", "tensor") or slot in ir.KNOWN_PARAM_ROLES
            or (slot not in ir.GENERIC_SLOTS and slot not in ir.KIND_SLOTS))
        role = None if slot in ("param", "tensor") else slot
        out: list[str] = []
        for node in nodes:
            if want_out:
                outs = node.outputs if out_range is None else node.outputs[slice(*out_range)]
                out += [o for o in outs if o]
            if want_in:
                ins = node.inputs if in_range is None else node.inputs[slice(*in_range)]
                for name in ins:
                    if not name:
                        continue
                    t = tensors[name]
                    if skip_params and t.is_param:
                        continue
                    if kind is not None and t.kind != kind:
                        continue
                    out.append(name)
            if want_params:
                out += self._params(node, role)
        cand = self.cand
        return [n for n in dict.fromkeys(out) if n in cand]

    def _params(self, node: Node, role: str | None) -> list[str]:
        found = self._param_cache.get(node.index)
        if found is None:
            found = self._param_cache[node.index] = self._node_params(node)
        return [p for p, roles in found if role is None or role in roles]

    def _node_params(self, node: Node) -> list[tuple[str, frozenset[str]]]:
        """The parameters of ``node`` in input order, each with the roles it has there."""
        out = []
        for name in node.inputs:
            pname = self.graph.static_source(name) if name else None
            if pname is None and name and name in self.graph.tensors:
                # MatMul weight through Transpose (aimet.md B.1)
                prod = self.graph.tensors[name].producer
                if prod is not None and self.graph.nodes[prod].op_type == "Transpose":
                    pname = self.graph.static_source(self.graph.nodes[prod].inputs[0])
            if pname is None:
                continue
            roles = frozenset(r for idx, r in self.graph.tensors[pname].param_of
                              if idx == node.index)
            if roles:
                out.append((pname, roles))
        return out


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")
