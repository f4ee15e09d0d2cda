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
from itertools import chain

from .. import ir
from ..graph import Graph, Node, Tensor


class Index:
    """Per-graph lookup tables for selection, each built on first use (a profile asks for a
    few of them; each is a pass over the candidates or the nodes)."""

    def __init__(self, graph: Graph, candidates: Iterable[str], model_output: str,
                 tensors: list[Tensor] | None = None) -> None:
        """``tensors``: the candidates' Tensor records, in the same order (looked up when not
        given)."""
        self.graph = graph
        self.candidates = list(candidates)
        self.cand = set(self.candidates)
        ts = tensors if tensors is not None else [graph.tensors[n] for n in self.candidates]
        self._pairs = list(zip(self.candidates, ts, strict=True))
        self._model_output = model_output
        self._node_params: dict[int, dict[str, list[str]]] | None = None
        self._by_type: dict[str, list[Node]] | None = None
        self._by_name: dict[str, Node] | None = None
        self._node_names: list[str] | None = None
        self._by_kind: dict[str, list[str]] = {}
        self._pairs_by_kind: dict[str, list[tuple[str, Tensor]]] | None = None
        self._by_role: dict[str, list[str]] | None = None
        self._outputs: list[str] | None = None
        self._inputs: list[str] | None = None
        self._model_outputs: list[str] | None = None

    @property
    def by_type(self) -> dict[str, list[Node]]:
        if self._by_type is None:
            by_type: dict[str, list[Node]] = defaultdict(list)
            for node in self.graph.nodes:
                by_type[node.op_type].append(node)
            self._by_type = by_type
        return self._by_type

    @property
    def node_names(self) -> list[str]:
        if self._node_names is None:
            self._node_names = [node.name for node in self.graph.nodes]
        return self._node_names

    @property
    def by_name(self) -> dict[str, Node]:
        if self._by_name is None:
            self._by_name = {node.name: node for node in self.graph.nodes}
        return self._by_name

    def _kind_pairs(self) -> dict[str, list[tuple[str, Tensor]]]:
        """The candidates (name, record) per tensor kind, in one pass."""
        if self._pairs_by_kind is None:
            by_kind: dict[str, list[tuple[str, Tensor]]] = defaultdict(list)
            for pair in self._pairs:
                by_kind[pair[1].kind].append(pair)
            self._pairs_by_kind = by_kind
        return self._pairs_by_kind

    def by_kind(self, kind: str) -> list[str]:
        """Candidates of one tensor kind."""
        got = self._by_kind.get(kind)
        if got is None:
            got = self._by_kind[kind] = [n for n, _ in self._kind_pairs().get(kind, ())]
        return got

    def by_role(self, role: str) -> list[str]:
        """Candidates with one parameter role."""
        if self._by_role is None:
            by_role: dict[str, list[str]] = defaultdict(list)
            for n, r in [(n, t.role) for n, t in self._pairs if t.role]:
                by_role[r].append(n)
            self._by_role = by_role
        return self._by_role.get(role, [])

    @property
    def outputs(self) -> list[str]:
        """Candidates an op writes (Constant outputs are not op outputs)."""
        if self._outputs is None:
            self._outputs = [n for n, t in self._pairs
                             if t.producer is not None and not t.constant_node]
        return self._outputs

    @property
    def inputs(self) -> list[str]:
        """Candidates an op reads that are not parameters (Tensor.is_param)."""
        if self._inputs is None:
            params = ("weight", "bias", "param")
            self._inputs = [n for n, t in self._pairs if t.consumers and t.kind not in params]
        return self._inputs

    @property
    def model_outputs(self) -> list[str]:
        if self._model_outputs is None:
            g = self.graph
            names = g.outputs if self._model_output == "graph" else g.terminal_outputs()
            self._model_outputs = [n for n in names if n in self.cand]
        return self._model_outputs

    # -- entry point ---------------------------------------------------------------------
    def select(self, sel: ir.Selector) -> list[str]:
        if sel.scope == "defaults":
            return self._defaults(sel)
        if sel.scope == "op":
            by_type = self.by_type
            nodes = [n for t in sel.op_types for n in by_type.get(t, ())]
            if sel.where:
                nodes = [n for n in nodes
                         if all(self.graph.predicate(n, p.name, p.op, p.value) for p in sel.where)]
            return self._slot_of_nodes(nodes, sel)
        if sel.scope == "layer":
            return self._slot_of_nodes(self._layers(sel.names), sel)
        if sel.scope == "model_input":
            if sel.slot == "constant":
                return list(self.by_kind("constant"))
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
            return [n for k in ("weight", "bias", "param") for n in self.by_kind(k)]
        if slot in ("constant", "graph_input"):
            return list(self.by_kind("constant" if slot == "constant" else "model_input"))
        return list(self.by_role(slot))

    def _layers(self, patterns: tuple[str, ...]) -> list[Node]:
        out: dict[int, Node] = {}
        for pat in patterns:
            if _is_glob(pat):
                match = re.compile(fnmatch.translate(pat)).match
                nodes = self.graph.nodes
                for i in [i for i, name in enumerate(self.node_names) if match(name)]:
                    out[i] = nodes[i]
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
        params = ("weight", "bias", "param")  # Tensor.is_param
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
                    if skip_params and t.kind in params:
                        continue
                    if kind is not None and t.kind != kind:
                        continue
                    out.append(name)
            if want_params:
                out += self._params(node, role)
        cand = self.cand
        return [n for n in dict.fromkeys(out) if n in cand]

    def _params(self, node: Node, role: str | None) -> list[str]:
        """The candidate parameters of ``node`` (with ``role`` there, when given)."""
        if self._node_params is None:
            # from the tensors' param_of lists (classification found them), in one pass: an
            # index of node -> parameter -> roles, instead of resolving each node's inputs
            rev: dict[int, dict[str, list[str]]] = {}
            kinds = self._kind_pairs()  # a parameter's kind is its role's (Graph.classify)
            for n, t in chain(kinds.get("weight", ()), kinds.get("bias", ()),
                              kinds.get("param", ())):
                for idx, r in t.param_of:
                    rev.setdefault(idx, {}).setdefault(n, []).append(r)
            self._node_params = rev
        found = self._node_params.get(node.index)
        if not found:
            return []
        return [p for p, roles in found.items() if role is None or role in roles]


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")
