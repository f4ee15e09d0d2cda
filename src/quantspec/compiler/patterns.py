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
                   blocked: frozenset[int] = frozenset()) -> list[Match]:
    by_type: dict[str, list[Node]] = {}
    for node in graph.nodes:
        by_type.setdefault(node.op_type, []).append(node)
    # consumers are only asked for of ops at a non-final pattern position
    inner = {t for p in patterns for alts in p.ops[:-1] for t in alts}
    consumers = {node.index: graph.op_consumers(node) for node in graph.nodes
                 if node.op_type in inner}
    ordered = sorted(patterns, key=lambda p: -len(p.ops)) if mode == "aimet2" else list(patterns)
    used: set[int] = set()
    out: list[Match] = []
    for pat in ordered:
        starts = sorted({n.index for t in pat.ops[0] for n in by_type.get(t, ())})
        for start in starts:
            node = graph.nodes[start]
            if mode == "aimet2" and (start in blocked or graph.is_depthwise_or_3d(node)):
                continue
            for chain in _chains(graph, consumers, node, pat.ops, mode):
                if mode == "aimet2" and used.intersection(chain):
                    continue
                used.update(chain)
                out.append(Match(pat, chain))
    return out


def _chains(graph: Graph, consumers: dict[int, list[Node]], node: Node,
            ops: tuple[tuple[str, ...], ...], mode: str) -> list[tuple[int, ...]]:
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
        for tail in _chains(graph, consumers, c, ops[1:], mode):
            out.append((node.index, *tail))
    return out
