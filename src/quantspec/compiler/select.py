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
        self.by_name: dict[str, Node] = {}
        for node in graph.nodes:
            self.by_type[node.op_type].append(node)
            self.by_name[node.name] = node
        self.by_kind: dict[str, list[str]] = defaultdict(list)
        self.by_role: dict[str, list[str]] = defaultdict(list)
        self.outputs: list[str] = []
        self.inputs: list[str] = []
        for name in self.candidates:
            t = graph.tensors[name]
            self.by_kind[t.kind].append(name)
            if t.role:
                self.by_role[t.role].append(name)
            if t.producer is not None and not t.constant_node:
                self.outputs.append(name)
            if t.consumers and not t.is_param:
                self.inputs.append(name)
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
        g = self.graph
        out: list[str] = []
        for node in nodes:
            if slot in ("output", "tensor"):
                outs = node.outputs if index is None or slot == "tensor" else \
                    node.outputs[index:index + 1]
                out += [o for o in outs if o]
            if slot in ("input", "tensor", "constant", "graph_input"):
                ins = node.inputs if index is None or slot != "input" else \
                    node.inputs[index:index + 1]
                for name in ins:
                    if not name:
                        continue
                    t = g.tensors[name]
                    if t.is_param and not (slot == "input" and index is not None):
                        continue
                    if slot == "constant" and t.kind != "constant":
                        continue
                    if slot == "graph_input" and t.kind != "model_input":
                        continue
                    out.append(name)
            if slot in ("param", "tensor") or slot in ir.KNOWN_PARAM_ROLES or (
                slot not in ir.GENERIC_SLOTS and slot not in ir.KIND_SLOTS
            ):
                if slot in ("input", "output", "constant", "graph_input"):
                    continue
                out += self._params(node, None if slot in ("param", "tensor") else slot)
        return [n for n in dict.fromkeys(out) if n in self.cand]

    def _params(self, node: Node, role: str | None) -> list[str]:
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
            t = self.graph.tensors[pname]
            for idx, r in t.param_of:
                if idx == node.index and (role is None or r == role):
                    out.append(pname)
                    break
        return out


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")
