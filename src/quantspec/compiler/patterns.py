"""Fusion patterns (supergroups): find chains of ops between which no quantizer sits.

Two matching semantics, selected by ``options { fusion: ... }`` (aimet.md B.3):

``aimet2``
    patterns tried longest first (stable for equal lengths: file order), start ops in graph
    order; every non-final op of a chain must feed exactly one op (the last may branch); a
    depthwise or 3-D Conv/ConvTranspose, or an op already fused by a graph pass, cannot start a
    chain; matches are disjoint (an op used by an earlier match is never reused).
``aimet1``
    every chain matches, overlaps allowed, no branch or depthwise check.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from ..graph import Graph, Node


@dataclass(frozen=True)
class Match:
    pattern: ir.Pattern
    nodes: tuple[int, ...]


def match_patterns(graph: Graph, patterns: tuple[ir.Pattern, ...], mode: str,
                   blocked: frozenset[int] = frozenset(),
                   by_type: dict[str, list[Node]] | None = None) -> list[Match]:
    """``by_type``: the graph's nodes per op type, in graph order, when the caller has them."""
    if not patterns:
        return []
    nodes = graph.nodes
    if by_type is None:
        starts_of = {t for p in patterns for t in p.ops[0]}
        by_type = {}
        for node in nodes:
            if node.op_type in starts_of:
                by_type.setdefault(node.op_type, []).append(node)
    consumers = _Consumers(graph)  # asked only for the ops a chain passes through
    ordered = sorted(patterns, key=lambda p: -len(p.ops)) if mode == "aimet2" else list(patterns)
    used: set[int] = set()
    out: list[Match] = []
    for pat in ordered:
        first = pat.ops[0]
        if len(first) == 1:  # already in graph order
            starts: list[Node] = by_type.get(first[0], [])
        else:
            starts = [nodes[i] for i in sorted({n.index for t in first
                                                for n in by_type.get(t, ())})]
        for node in starts:
            if mode == "aimet2" and (node.index in blocked or graph.is_depthwise_or_3d(node)):
                continue
            for chain in _chains(consumers, node, pat.ops, mode):
                if mode == "aimet2" and used.intersection(chain):
                    continue
                used.update(chain)
                out.append(Match(pat, chain))
    return out


class _Consumers:
    """``Graph.op_consumers`` per node, computed on first use."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.memo: dict[int, list[Node]] = {}

    def __getitem__(self, index: int) -> list[Node]:
        got = self.memo.get(index)
        if got is None:
            g = self.graph
            node = g.nodes[index]
            t = g.tensors.get(node.outputs[0]) if len(node.outputs) == 1 else None
            if t is not None and len(t.consumers) == 1:  # the common case, without sorting
                got = [g.nodes[t.consumers[0][0]]]
            else:
                got = g.op_consumers(node)
            self.memo[index] = got
        return got


def _chains(consumers: _Consumers, node: Node, ops: tuple[tuple[str, ...], ...],
            mode: str) -> list[tuple[int, ...]]:
    if node.op_type not in ops[0]:
        return []
    if len(ops) == 1:
        return [(node.index,)]
    nxt = consumers[node.index]
    if not node.outputs or not nxt:
        return []
    if mode == "aimet2" and len(nxt) > 1:
        return []
    out = []
    for c in nxt:
        for tail in _chains(consumers, c, ops[1:], mode):
            out.append((node.index, *tail))
    return out
