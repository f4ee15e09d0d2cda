"""Ties: tensors that share one encoding (one quantizer object).

Semantics follow the runtimes that tie quantizers (aimet.md B.8):

* ``output_to_input``: the op's output reuses the encoding of its first activation input. The
  input is found walking back through ``through`` ops (whose outputs carry no quantizer).
  No tie when that input or the output is not quantized, or when the output has a fixed
  range and the input feeds several ops. The shared settings merge both sides: fewer bits,
  symmetric if either is, unsigned-symmetric if either is, fixed ranges united
  (symmetric + fixed -> [-absmax, absmax]).
* ``inputs_to_output``: each activation input (walked back the same way) reuses the output's
  encoding, unless it is not quantized, feeds several ops or has a fixed range of its own. When
  every input shares one fixed range, the output takes it.
* ``states``: a recurrent op's input X, output Y and hidden state (Y_h, initial_h) share one
  encoding; the cell state (Y_c, initial_c) another.
* ``share "a", "b"`` (mode ""): the named tensors share the first one's encoding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import ir
from .plan import BUILTIN, Why

if TYPE_CHECKING:
    from .resolve import Context

SHARED_FIELDS = ("quantized", "dtype", "bits", "symmetric", "strict_symmetric",
                 "unsigned_symmetric", "signed", "narrow_range", "per_channel", "axis",
                 "scale_type", "rounding", "calibration", "fixed_range")


class _UF:
    """Union-find over tensor names that also keeps each group's members (in joining order),
    so applying a shared encoding to a group costs its size, not a scan of every tie."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.members: dict[str, list[str]] = {}

    def find(self, x: str) -> str:
        if x not in self.parent:
            self.parent[x] = x
            self.members[x] = [x]
            return x
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, keep: str, other: str) -> None:
        a, b = self.find(keep), self.find(other)
        if a != b:
            self.parent[b] = a
            self.members[a] += self.members.pop(b)

    def group(self, x: str) -> list[str]:
        return list(self.members[self.find(x)])


def apply_ties(ctx: Context, ties: tuple[ir.Tie, ...]) -> None:
    if not ties:
        return
    g = ctx.graph
    uf = _UF()
    by_type: dict[str, list[ir.Tie]] = {}
    for t in ties:
        for op in t.op_types:
            by_type.setdefault(op, []).append(t)
    for node in [n for n in g.nodes if n.op_type in by_type]:  # in graph order
        for tie in by_type[node.op_type]:
            if tie.mode == "output_to_input":
                _out_to_in(ctx, uf, node, tie)
            elif tie.mode == "inputs_to_output":
                _in_to_out(ctx, uf, node, tie)
            elif tie.mode == "states":
                _states(ctx, uf, node, tie)
    for tie in ties:
        if not tie.mode:
            names = [n for n in tie.tensors if n in ctx.entries and not ctx.entries[n].reason]
            for n in names[1:]:
                _share(ctx, uf, names[0], n, tie, _resolved(ctx, names[0]))
    groups: dict[str, list[str]] = {}
    for name in list(uf.parent):
        groups.setdefault(uf.find(name), []).append(name)
    for members in groups.values():
        if len(members) < 2:
            continue
        for m in members:
            ctx.entries[m].shared_with = sorted(x for x in members if x != m)


def _walk_back(ctx: Context, name: str, through: tuple[str, ...]) -> str:
    g = ctx.graph
    seen = 0
    while seen < 1000:
        t = g.tensors[name]
        if t.producer is None:
            return name
        node = g.nodes[t.producer]
        # only single-output pass-through ops are walked (a Split's outputs are not its input)
        if node.op_type not in through or not node.inputs or not node.inputs[0] \
                or len([o for o in node.outputs if o]) != 1:
            return name
        name = node.inputs[0]
        seen += 1
    return name


def _passes_through(ctx: Context, name: str, tie: ir.Tie) -> bool:
    """The tensor is the output of a pass-through op (it carries no encoding of its own)."""
    t = ctx.graph.tensors[name]
    return t.producer is not None and ctx.graph.nodes[t.producer].op_type in tie.through


_NOT_ACTIVATION = ("weight", "bias", "param", "constant")  # Tensor.is_param, and constants


def _act_inputs(ctx: Context, node: Any) -> list[str]:
    tensors = ctx.graph.tensors
    return [i for i in node.inputs if i and tensors[i].kind not in _NOT_ACTIVATION]


def _out_to_in(ctx: Context, uf: _UF, node: Any, tie: ir.Tie) -> None:
    ins = _act_inputs(ctx, node)
    if not ins or not node.outputs:
        return
    out = node.outputs[0]
    src = _walk_back(ctx, ins[0], tie.through)
    if not (ctx.quantized(src) and ctx.quantized(out)) or _passes_through(ctx, src, tie):
        return
    eo = ctx.entries[out]
    rep = uf.find(src)
    fans_out = len(ctx.graph.tensors[src].consumers) > 1
    if eo.get("fixed_range") is not None and fans_out:
        return
    merged = _merge(_resolved(ctx, rep), _resolved(ctx, out))
    _share(ctx, uf, rep, out, tie, merged)


def _in_to_out(ctx: Context, uf: _UF, node: Any, tie: ir.Tie) -> None:
    if not node.outputs:
        return
    out = node.outputs[0]
    if out not in ctx.entries or ctx.entries[out].reason:
        return
    walked = [_walk_back(ctx, i, tie.through) for i in _act_inputs(ctx, node)]
    srcs = [s for s in walked if not ctx.entries[s].reason and not _passes_through(ctx, s, tie)]
    ranges = {ctx.entries[s].get("fixed_range") if s in srcs else None for s in walked}
    shared_range = len(ranges) == 1 and None not in ranges and bool(srcs)
    if shared_range:
        ctx.set(out, "fixed_range", ranges.pop(), _tie_where(tie),
                "all inputs share one fixed range")
    for src in srcs:
        if len(ctx.graph.tensors[src].consumers) > 1:
            continue  # an input that also feeds other ops keeps its own encoding
        if ctx.entries[src].get("fixed_range") is not None and not shared_range:
            continue  # a constrained input is not tied unless all inputs share the range
        _share(ctx, uf, out, src, tie, _resolved(ctx, uf.find(out)))


def _states(ctx: Context, uf: _UF, node: Any, tie: ir.Tie) -> None:
    ins = node.inputs
    outs = node.outputs
    hidden = [x for x in (ins[0] if ins else "", outs[0] if outs else "",
                          outs[1] if len(outs) > 1 else "", ins[5] if len(ins) > 5 else "")
              if x and ctx.quantized(x)]
    cell = [x for x in (outs[2] if len(outs) > 2 else "", ins[6] if len(ins) > 6 else "")
            if x and ctx.quantized(x)]
    for group in (hidden, cell):
        if len(group) < 2:
            continue
        rep = group[1] if len(group) > 1 and group[0] == (ins[0] if ins else "") else group[0]
        for m in group:
            if m != rep:
                _share(ctx, uf, rep, m, tie, _resolved(ctx, uf.find(rep)))


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for f in ("bits",):
        if f in b and f in a:
            out[f] = min(a[f], b[f])
    for f in ("symmetric", "unsigned_symmetric"):
        out[f] = bool(a.get(f, False)) or bool(b.get(f, False))
    ra, rb = a.get("fixed_range"), b.get("fixed_range")
    if ra is not None or rb is not None:
        rng = _union(ra, rb)
        if out.get("symmetric") and rng is not None:
            if rng[0] is None or rng[1] is None:
                out["fixed_range"] = ("invalid",)
                return out
            m = max(abs(rng[0]), abs(rng[1]))
            rng = (-m, m)
        out["fixed_range"] = rng
    return out


def _union(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    lo = None if a[0] is None or b[0] is None else min(a[0], b[0])
    hi = None if a[1] is None or b[1] is None else max(a[1], b[1])
    return (lo, hi)


def _tie_where(tie: ir.Tie) -> str:
    return str(tie.span) if tie.span is not None else f"<{tie.origin or 'tie'}>"


def _resolved(ctx: Context, name: str) -> dict[str, Any]:
    """Every shared field of ``name`` as resolved (built-in defaults included): what the
    members of a group take, so that no member keeps a value of its own for a field the
    representative leaves at its default."""
    values = ctx.entries[name].values  # Entry.get without the call: this runs per tie
    return {f: values.get(f, BUILTIN[f]) for f in SHARED_FIELDS}


def _apply(ctx: Context, name: str, items: list[tuple[str, Any]], tie: ir.Tie,
           rep: str) -> None:
    """``name`` takes the shared values ``items`` ((field, value), in SHARED_FIELDS order)."""
    e = ctx.entries[name]
    values = e.values
    for f, v in items:
        if values.get(f, BUILTIN[f]) != v:
            values, why = e.own()
            old = why.get(f)
            values[f] = v
            why[f] = Why(_tie_where(tie), f"tie {tie.mode or 'share'}",
                         f"shared with '{rep}'", [old.rule, *old.shadowed] if old else [])


def _share(ctx: Context, uf: _UF, keep: str, other: str, tie: ir.Tie,
           values: dict[str, Any]) -> None:
    if "fixed_range" in values and values["fixed_range"] == ("invalid",):
        from ..errors import QuantspecError

        raise QuantspecError(
            "E206", f"cannot share an encoding between '{keep}' and '{other}': a symmetric "
            "encoding with a one-sided fixed range has no defined range", tie.span,
            hint="give both min and max, or make the tensors asymmetric")
    uf.union(keep, other)
    # every member of the joined group (not only the two tensors named here) takes the shared
    # values: a Relu output tied to its input, then that Relu output tied into a Concat, is
    # one encoding for all three
    items = [(f, values[f]) for f in SHARED_FIELDS if f in values]
    for m in uf.group(keep):
        _apply(ctx, m, items, tie, keep)
