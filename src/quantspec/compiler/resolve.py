"""The cascade: per tensor and field, the rule with the highest (final, level, order) wins."""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import ir
from ..errors import QuantspecError
from ..graph import FLOAT_TYPES, Graph, Tensor, paused_gc
from ..source import Span
from .passes import run_passes
from .patterns import match_patterns
from .plan import Entry, Plan, Shared, Why
from .select import Index
from .ties import apply_ties

# (rule index or -1, level, value) history per tensor per field
_Hist = list[tuple[int, Any]]

# Hook registry: "prefix.name" -> function(ctx). A prefix names a dialect module that registers
# its hooks on import (vendor rules live in dialects, never here).
HOOK_MODULES = {"aimet": "quantspec.dialects.aimet_rules"}
HOOKS: dict[str, Callable[[Context], None]] = {}


def hook(name: str) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    def deco(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        HOOKS[name] = fn
        return fn

    return deco


@dataclass
class _Synthetic:
    """A pseudo-rule for settings that come from a fusion-pattern match."""

    span: Span | None
    describe: str
    note: str = ""


@dataclass
class Context:
    """What a post hook sees and may change."""

    graph: Graph
    profile: ir.Profile
    entries: dict[str, Entry]
    options: dict[str, Any]

    def set(self, name: str, field: str, value: Any, rule: str, note: str = "") -> None:
        e = self.entries[name]
        values, why = e.own()
        old = why.get(field)
        shadowed = ([old.rule, *old.shadowed] if old is not None else [])
        values[field] = value
        why[field] = Why(rule, "", note, shadowed)

    def quantized(self, name: str) -> bool:
        e = self.entries.get(name)
        return e is not None and bool(e.get("quantized"))


def compile_profile(profile: ir.Profile, graph: Graph, model_name: str = "") -> Plan:
    with paused_gc():  # see graph.paused_gc: no cycles are made here
        return _compile(profile, graph, model_name)


def _compile(profile: ir.Profile, graph: Graph, model_name: str) -> Plan:
    opts = {k: profile.options.get(k, v) for k, v in ir.OPTION_DEFAULTS.items()}
    pass_names = [n for n, _ in profile.passes]
    g = run_passes(graph, pass_names) if pass_names else graph

    order, tens, reasons = _tensor_order(g)
    if reasons:
        cands = [n for n in order if n not in reasons]
        index = Index(g, cands, opts["model_output"],
                      [t for n, t in zip(order, tens, strict=True) if n not in reasons])
    else:
        cands = order
        index = Index(g, cands, opts["model_output"], tens)

    # -- the cascade ---------------------------------------------------------------------
    rules: list[_RuleRow] = []
    for i, rule in enumerate(profile.rules):
        sel = index.select(rule.selector)
        key = (rule.priority, rule.selector.level, i)
        rules.append((key, rule, sel, {k: s.value for k, s in rule.settings.items()}))
    matches = match_patterns(g, profile.patterns, opts["fusion"],
                             by_type=index.by_type if profile.patterns else None)
    # one pseudo-rule per pattern (not per match): tensors of different matches of a pattern
    # then share a cascade signature (below). Consecutive matches of a pattern are one row:
    # their order in the cascade is the same.
    synthetic: dict[int, _Synthetic] = {}
    cand, nodes = index.cand, g.nodes
    last: _Synthetic | None = None
    for m in matches:
        outs = [o for i in m.nodes[:-1] for o in nodes[i].outputs if o in cand]
        syn = synthetic.get(id(m.pattern))
        if syn is None:
            syn = synthetic[id(m.pattern)] = _Synthetic(
                m.pattern.span, f"fuse {m.pattern.describe()}",
                "no quantizer inside a fused pattern")
        if syn is last:
            rules[-1][2].extend(outs)
        else:
            rules.append(((0, ir.LEVEL_PATTERN, -1), syn, outs, {"quantized": False}))
        last = syn
    rules.sort(key=lambda r: r[0])
    entries, with_refs, with_min_bits = _cascade(g, order, tens, reasons, rules, cands,
                                                 opts["conflicts"] == "error")

    ctx = Context(g, profile, entries, opts)
    _resolve_refs(ctx, g, with_refs)
    _apply_min_bits(ctx, with_min_bits)
    for name, span in profile.post:
        _run_hook(name, span, ctx)
    apply_ties(ctx, profile.ties)
    _fix_axes(ctx)  # and _check_block_sizes
    _check_shared_channels(ctx)

    described: dict[int, tuple[str, str]] = {}  # per pattern, not per match
    match_json = []
    for m in matches:
        d = described.get(id(m.pattern))
        if d is None:
            d = described[id(m.pattern)] = (m.pattern.describe(),
                                            str(m.pattern.span) if m.pattern.span else "")
        match_json.append({"pattern": d[0], "rule": d[1],
                           "nodes": [nodes[i].name for i in m.nodes]})
    return Plan(
        entries=list(entries.values()),
        profile=profile.source or profile.name,
        model=model_name or graph.path,
        fused=g.fused,
        matches=match_json,
        transforms={k: _plain(s.value) for k, s in profile.transforms.items()},
        calibrate={k: _plain(s.value) for k, s in profile.calibrate.items()},
        graph_inputs=list(g.inputs),
        graph_outputs=list(g.outputs),
    )


def _plain(v: Any) -> Any:
    if isinstance(v, ir.Calibration):
        return v.to_json()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _tensor_order(g: Graph) -> tuple[list[str], list[Tensor], dict[str, str]]:
    """Every tensor in a stable order (graph inputs, then per node its inputs and outputs, first
    occurrence wins), its record, and why each one that is never quantized is not (non-float,
    unused)."""
    seq = list(g.inputs)
    extend = seq.extend
    for n in g.nodes:  # (list.extend: 40% less time than a chained generator)
        extend(n.inputs)
        extend(n.outputs)
    order = dict.fromkeys(seq)
    order.pop("", None)  # an omitted optional input or output
    names = list(order)
    tensors = g.tensors
    tens = [tensors[n] for n in names]
    reasons: dict[str, str] = {}
    for t in tens:
        dtype = t.dtype
        if dtype and dtype not in FLOAT_TYPES:  # not Tensor.is_float
            reasons[t.name] = f"{dtype} tensor (only float tensors are quantized)"
        elif not t.consumers and not t.graph_output:
            reasons[t.name] = "unused (no op reads it and it is not a graph output)"
    return names, tens, reasons


def _entries(g: Graph) -> dict[str, Entry]:
    """Every tensor's entry with no rule applied (see _tensor_order)."""
    order, tens, reasons = _tensor_order(g)
    cands = [n for n in order if n not in reasons]
    return _cascade(g, order, tens, reasons, [], cands, False)[0]


_RuleRow = tuple[tuple[int, int, int], "ir.Rule | _Synthetic", list[str], dict[str, Any]]


def _cascade(g: Graph, order: list[str], tens: list[Tensor], reasons: dict[str, str],
             rules: list[_RuleRow], cands: list[str],
             strict: bool) -> tuple[dict[str, Entry], dict[str, dict[str, Any]], list[str]]:
    """The entries of the tensors in ``order``: per tensor and field, the last value in cascade
    order and what it shadowed.

    A tensor's outcome depends only on its *signature*, the sequence of rules that select it
    (in cascade order). Most tensors share a signature with many others (every Conv weight
    outside a layer rule), so each signature is resolved once, and its values and ``why``
    dicts are :class:`~quantspec.compiler.plan.Shared` by the entries that have it: compile
    time grows with the selections, not with selections x fields, and a tensor costs an
    entry, not two dicts. Later steps write through ``Entry.own()``; ``Why`` records are
    never changed in place. Each entry is built once (one loop over the tensors).

    Also returns the tensors that hold a ``like`` reference (resolved next), with the rule
    that set each one, and those a rule gives a ``min_bits``.
    """
    objs: list[tuple[ir.Rule | _Synthetic, dict[str, Any]]] = []
    obj_index: dict[int, int] = {}
    row_obj: list[int] = []  # per cascade row, its rule's index in objs
    for _key, rule, _sel, values in rules:
        k = obj_index.get(id(rule))
        if k is None:
            k = obj_index[id(rule)] = len(objs)
            objs.append((rule, values))
        row_obj.append(k)
    group_of, group_sigs = _signatures([r[2] for r in rules], row_obj, cands)
    # per tensor of ``order``, its group; None for a tensor no rule may select (``cands`` is
    # ``order`` without the tensors in ``reasons``)
    gids: list[int | None]
    if reasons:
        groups = iter(group_of)
        gids = [None if n in reasons else next(groups) for n in order]
    else:
        gids = group_of  # type: ignore[assignment]
    # per signature group: (values, whys, conflict, refs, sets min_bits), resolved on first use
    cache: dict[int, tuple[Shared, Shared, bool, dict[str, Any], bool]] = {}
    none = Shared()
    with_refs: dict[str, dict[str, Any]] = {}
    with_min_bits: list[str] = []
    entries: dict[str, Entry] = {}
    node_names = [n.name for n in g.nodes]
    for name, t, gid in zip(order, tens, gids, strict=True):
        p = t.producer
        uses = t.consumers
        if len(uses) == 1:
            cons = [node_names[uses[0][0]]]
        elif uses:  # an op reading a tensor twice is one consumer
            cons = list(dict.fromkeys([node_names[i] for i, _ in uses]))
        else:
            cons = []
        shape = t.shape
        if gid is None:  # never quantized: no rule selects it
            values, whys, reason = none, none, reasons.get(name, "")
        else:
            res = cache.get(gid)
            if res is None:
                got = _resolve_signature(group_sigs[gid], objs, strict)
                res = cache[gid] = (Shared(got[0]), Shared(got[1]), got[2], got[3],
                                    "min_bits" in got[0])
            if res[2]:
                _raise_first_conflict(rules, cands, strict)
            if res[3]:
                with_refs[name] = res[3]
            if res[4]:
                with_min_bits.append(name)
            values, whys, reason = res[0], res[1], ""
        entries[name] = Entry(name, t.kind, t.role, None if p is None else node_names[p], cons,
                              t.graph_input, t.graph_output,
                              None if shape is None else list(shape), values, whys, [],
                              reason)
    return entries, with_refs, with_min_bits


VECTOR_PAIRS = 50_000  # (tensor, row) selections from which _signatures uses numpy


def _signatures(sels: list[list[str]], row_obj: list[int], cands: list[str]
                ) -> tuple[list[int], list[tuple[int, ...]]]:
    """Each candidate's signature group (in the order of ``cands``), and each group's
    signature: the rules (indices into the cascade's rule objects) of the rows that select
    the tensor, in row order.

    On large graphs (``VECTOR_PAIRS`` selections or more) each tensor's set of rows is a
    bitmask built with numpy, and the groups are its distinct masks: one dict lookup per
    selection in C, where appending to a list per tensor and row in Python took a third of
    the cascade (741k selections at 100k nodes). A row that names a tensor twice (aimet1
    pattern matches may overlap) repeats the rule in the signature, which a mask cannot
    say: those take the list path."""
    if sum(map(len, sels)) >= VECTOR_PAIRS:
        got = _signature_masks(sels, row_obj, cands)
        if got is not None:
            return got
    lists: dict[str, list[int]] = {n: [] for n in cands}
    for k, sel in zip(row_obj, sels, strict=True):
        for name in sel:
            lists[name].append(k)
    ids: dict[tuple[int, ...], int] = {}
    group_of: list[int] = []
    group_sigs: list[tuple[int, ...]] = []
    for lst in lists.values():
        sig = tuple(lst)
        gid = ids.get(sig)
        if gid is None:
            gid = ids[sig] = len(group_sigs)
            group_sigs.append(sig)
        group_of.append(gid)
    return group_of, group_sigs


def _signature_masks(sels: list[list[str]], row_obj: list[int], cands: list[str]
                     ) -> tuple[list[int], list[tuple[int, ...]]] | None:
    from operator import itemgetter

    import numpy as np

    pos = dict(zip(cands, range(len(cands)), strict=True))
    words = (len(sels) + 63) // 64
    masks = np.zeros((len(cands), words), dtype=np.uint64)
    done: dict[int, list[tuple[list[str], Any]]] = {}  # rows mapped so far, by length
    for r, sel in enumerate(sels):
        if not sel:
            continue
        bit = np.uint64(1 << (r & 63))
        if len(sel) == len(cands) and sel == cands:  # every candidate (the same strings)
            masks[:, r >> 6] |= bit
            continue
        # rules often select the same list (every output, every weight): compare the lists
        # (pointer equality per item, in C) before looking the names up again
        same = done.setdefault(len(sel), [])
        idx = next((i for prev, i in same if prev == sel), None)
        if idx is None:
            idx = np.array(itemgetter(*sel)(pos) if len(sel) > 1 else [pos[sel[0]]],
                           dtype=np.intp)
            if np.bincount(idx).max() > 1:  # a tensor named twice in one row
                return None
            same.append((sel, idx))
        masks[idx, r >> 6] |= bit
    if words == 1:
        uniq, inverse = np.unique(masks[:, 0], return_inverse=True)
        rows_of = [[int(u)] for u in uniq]
    else:
        uniq, inverse = np.unique(masks, axis=0, return_inverse=True)
        rows_of = [[int(w) for w in u] for u in uniq]
    group_sigs = [tuple(row_obj[r] for r in range(len(sels)) if ws[r >> 6] >> (r & 63) & 1)
                  for ws in rows_of]
    return inverse.ravel().tolist(), group_sigs


def _resolve_signature(sig: tuple[int, ...], objs: list[tuple[ir.Rule | _Synthetic,
                                                             dict[str, Any]]],
                       strict: bool) -> tuple[dict[str, Any], dict[str, Why], bool,
                                              dict[str, Any]]:
    hist: dict[str, list[tuple[ir.Rule | _Synthetic, Any]]] = {}
    conflict = False
    for k in sig:
        rule, values = objs[k]
        for field, value in values.items():
            lst = hist.setdefault(field, [])
            if lst and isinstance(rule, ir.Rule) and _conflicts(lst[-1], rule, value, strict):
                conflict = True
            lst.append((rule, value))
    if conflict and _final_off(hist):
        conflict = False  # a final "off" means the tensor has no encoding to disagree about
    values_out = {f: lst[-1][1] for f, lst in hist.items()}
    whys = {f: _why(lst[-1][0], [r for r, _ in lst[:-1]]) for f, lst in hist.items()}
    ref_rules = {f: lst[-1][0] for f, lst in hist.items() if isinstance(lst[-1][1], ir.Ref)}
    return values_out, whys, conflict, ref_rules


def _final_off(hist: dict[str, list[tuple[Any, Any]]]) -> bool:
    q = hist.get("quantized")
    if not q:
        return False
    return isinstance(q[-1][0], ir.Rule) and q[-1][0].final and q[-1][1] is False


def _raise_first_conflict(rules: list[_RuleRow], cands: list[str], strict: bool) -> None:
    """The error path: replay the cascade in rule order to name the first conflict."""
    hist: dict[str, dict[str, list[tuple[ir.Rule | _Synthetic, Any]]]] = {n: {} for n in cands}
    found: list[tuple[Any, ...]] = []
    for _key, rule, sel, values in rules:
        for name in sel:
            h = hist[name]
            for field, value in values.items():
                lst = h.setdefault(field, [])
                if lst and isinstance(rule, ir.Rule) and _conflicts(lst[-1], rule, value,
                                                                    strict):
                    found.append((lst[-1], rule, value, name, field))
                lst.append((rule, value))
    for prev, rule, value, name, field in found:
        if _final_off(hist[name]):
            continue
        _raise_conflict(prev, rule, value, name, field)


def _conflicts(prev: tuple[Any, Any], rule: ir.Rule, value: Any, strict: bool) -> bool:
    prule, pvalue = prev
    if not isinstance(prule, ir.Rule) or pvalue == value:
        return False
    same_group = bool(rule.group) and rule.group == prule.group
    same_level = strict and not rule.group and not prule.group and (
        prule.selector.level == rule.selector.level and prule.priority == rule.priority)
    return same_group or same_level


def _raise_conflict(prev: tuple[Any, Any], rule: ir.Rule, value: Any, tensor: str,
                    field: str) -> None:
    prule, pvalue = prev
    raise QuantspecError(
        "E201",
        f"conflicting values for '{field}' of tensor '{tensor}': "
        f"{_show(pvalue)} ({prule.selector.describe()}) and {_show(value)} "
        f"({rule.selector.describe()})",
        rule.span,
        related=[(prule.span, "also set by")] if prule.span else [],
        hint="rules of the same precedence must agree; make one selector more specific",
    )


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    return repr(v)


def _why(rule: ir.Rule | _Synthetic, shadowed: list[ir.Rule | _Synthetic]) -> Why:
    def where(r: ir.Rule | _Synthetic) -> str:
        return str(r.span) if r.span is not None else f"<{getattr(r, 'origin', '') or 'rule'}>"

    if isinstance(rule, _Synthetic):
        return Why(where(rule), rule.describe, rule.note, [where(r) for r in reversed(shadowed)])
    return Why(where(rule), rule.selector.describe(), rule.note,
               [where(r) for r in reversed(shadowed)])


def _op_tensor(ctx: Context, name: str, slot: str, rule: Any = None) -> str | None:
    """For a parameter / input tensor: the first output (or input) of the op it belongs to. An
    op's output ``like input`` takes that op's first activation input (not its consumer's).
    When ``rule`` (the rule holding the reference) selects by op type or layer name, the op is
    the one it matched: a tensor read by a Conv and an Add takes the Add's output under
    ``op Add { input { bits: like output } }``."""
    g = ctx.graph
    t = g.tensors[name]
    if t.param_of:
        node_idx: int | None = t.param_of[0][0]
    elif slot == "input" and t.producer is not None:
        node_idx = t.producer
    else:
        node_idx = t.consumers[0][0] if t.consumers else None
    sel = rule.selector if isinstance(rule, ir.Rule) else None
    if sel is not None and sel.scope in ("op", "layer"):
        owners = [i for i, _ in t.param_of] + [i for i, _ in t.consumers]
        if t.producer is not None:
            owners.insert(0 if sel.slot == "output" else len(owners), t.producer)
        matched = next((i for i in owners if _selects_node(g, sel, g.nodes[i])), None)
        node_idx = node_idx if matched is None else matched
    if node_idx is None:
        return None
    node = g.nodes[node_idx]
    names = node.outputs if slot == "output" else [i for i in node.inputs
                                                   if i and not g.tensors[i].is_param]
    return names[0] if names else None


def _selects_node(g: Graph, sel: ir.Selector, node: Any) -> bool:
    """Whether an ``op`` / ``layer`` selector matches ``node`` (select.py's tests, per node)."""
    if sel.scope == "op":
        return node.op_type in sel.op_types and all(
            g.predicate(node, p.name, p.op, p.value) for p in sel.where)
    return any(fnmatch.fnmatchcase(node.name, pat) for pat in sel.names)


def _resolve_refs(ctx: Context, g: Graph,
                  refs: dict[str, dict[str, Any]] | None = None) -> None:
    """Replace ``like`` references by the referenced tensor's value. ``refs``: the tensors
    that hold one, with the rule that set it per field (default: every tensor, rules
    unknown)."""
    refs = refs if refs is not None else {n: {} for n in ctx.entries}
    for name in refs:
        e = ctx.entries[name]
        for field, value in list(e.values.items()):
            if isinstance(value, ir.Ref):
                _resolve_ref_chain(ctx, name, field, refs)


def _resolve_ref_chain(ctx: Context, name: str, field: str,
                       refs: dict[str, dict[str, Any]]) -> None:
    """Resolve ``like`` references that point at tensors whose value is itself a reference
    (a Concat input that is another Concat's output): follow the chain to a plain value, then
    fill it in backwards. A reference without a target, or in a cycle, is dropped (unset)."""
    chain: list[tuple[str, str | None, str]] = []
    seen: set[str] = set()
    cur = name
    while True:
        value = ctx.entries[cur].values.get(field)
        if not isinstance(value, ir.Ref):
            break
        if cur in seen:  # a cycle of references: nothing to take the value from
            break
        seen.add(cur)
        other = _op_tensor(ctx, cur, value.slot, refs.get(cur, {}).get(field))
        chain.append((cur, other if other in ctx.entries else None, value.slot))
        if other is None or other not in ctx.entries:
            break
        cur = other
    dropped: set[str] = set()
    for cur, other, slot in reversed(chain):
        values, why = ctx.entries[cur].own()
        ov = ctx.entries[other].values.get(field) if other is not None else None
        if other is None or other in dropped or isinstance(ov, ir.Ref):
            values.pop(field, None)
            dropped.add(cur)
            continue
        values[field] = ctx.entries[other].get(field)
        w = why[field]  # a new record: Why records may be shared (see _cascade)
        why[field] = Why(w.rule, w.selector, f"like {slot} ('{other}')", w.shadowed)


def _apply_min_bits(ctx: Context, names: list[str]) -> None:
    """Raise int bit widths to ``min_bits``. ``names``: the tensors a rule gives one."""
    entries = ctx.entries
    for name in names:
        e = entries[name]
        mb = e.values.get("min_bits")
        if mb and e.get("quantized") and e.get("dtype") == "int" and e.get("bits") < mb:
            ctx.set(name, "bits", mb, e.why["min_bits"].rule, f"raised to min_bits {mb}")


def _run_hook(name: str, span: Span | None, ctx: Context) -> None:
    prefix = name.split(".", 1)[0]
    if name not in HOOKS and prefix in HOOK_MODULES:
        importlib.import_module(HOOK_MODULES[prefix])
    fn = HOOKS.get(name)
    if fn is None:
        from ..errors import did_you_mean

        raise QuantspecError("E202", f"unknown post rule '{name}'", span,
                             hint=did_you_mean(name, HOOKS) or "post rules: " + ", ".join(HOOKS))
    fn(ctx)


def _fix_axes(ctx: Context) -> None:
    """Per-channel axes from the graph; then _check_block_sizes on the entries that have a
    block size, found in the same pass (every E205 is raised before any E208, as before)."""
    g = ctx.graph
    fallback = ctx.options["per_channel_fallback"]
    graph_axis = Why("<graph>", "", "channel axis of the parameter's op")  # shared: never
    sized: list[str] = []                                                  # changed in place
    # (shared values, shared why, axis) -> those with the axis: the entries that shared their
    # settings still do, instead of a copy per per-channel weight. The cache holds the keys'
    # objects too, so that their ids are not reused while it lives.
    with_axis: dict[tuple[int, int, int], tuple[Shared, Shared, Shared, Shared]] = {}
    for name, e in ctx.entries.items():
        values = e.values
        if "block_size" in values:
            sized.append(name)
        if not values.get("per_channel"):  # built-in: per-tensor
            continue
        if values.get("axis") is not None:
            continue
        axis = g.channel_axis(name) if g.tensors[name].is_param else None
        if axis is None and e.get("quantized"):
            if fallback == "per_tensor":
                ctx.set(name, "per_channel", False, "<per_channel_fallback>",
                        "no channel axis: per-tensor")
                continue
            why = e.why.get("per_channel")
            raise QuantspecError(
                "E205", f"cannot determine a per-channel axis for tensor '{name}' "
                f"(shape {e.shape})", _span_of(why),
                hint="set `axis: N`, turn per_channel off for this op type, or use "
                "options { per_channel_fallback: per_tensor }")
        if axis is None:
            continue
        why = e.why
        if type(values) is Shared and type(why) is Shared:
            key = (id(values), id(why), axis)
            got = with_axis.get(key)
            if got is None:
                got = with_axis[key] = (Shared(values, axis=axis), Shared(why, axis=graph_axis),
                                        values, why)
            e.values, e.why = got[0], got[1]
        else:
            own, why = e.own()
            own["axis"] = axis
            why["axis"] = graph_axis
    _check_block_sizes(ctx, sized)


def _check_shared_channels(ctx: Context) -> None:
    """E207: tensors that share one per-channel encoding must agree on its channels.

    Ties and ``share`` give a group one set of settings, but each member's channel axis comes
    from its own op (a Conv weight's is 0, a MatMul weight's the last): one encoding cannot have
    two axes, or a different number of channels, so the group has no answer."""
    done: set[str] = set()
    entries = ctx.entries
    for name, e in entries.items():
        if not e.shared_with or name in done or not e.values.get("per_channel") \
                or not e.get("quantized"):
            continue
        group = [name, *e.shared_with]
        done.update(group)
        seen: dict[tuple[Any, Any], str] = {}
        for m in group:
            me = entries[m]
            axis = me.values.get("axis")
            channels = None
            if axis is not None and me.shape and -len(me.shape) <= axis < len(me.shape):
                dim = me.shape[axis]
                channels = dim if isinstance(dim, int) else None
            seen.setdefault((axis, channels), m)
        if len(seen) > 1:
            (a1, c1), first = next(iter(seen.items()))
            (a2, c2), other = list(seen.items())[1]
            why = entries[other].why.get("per_channel") or entries[first].why.get("per_channel")
            raise QuantspecError(
                "E207", f"tensors '{first}' and '{other}' share one per-channel encoding but "
                f"not its channels: axis {a1} ({c1 if c1 is not None else '?'} channels) "
                f"against axis {a2} ({c2 if c2 is not None else '?'} channels)",
                _span_of(why), hint="share per-tensor encodings (`per_tensor` on these "
                "tensors), or stop sharing them")


def _check_block_sizes(ctx: Context, names: list[str]) -> None:
    """E208: a block holds block_size values along the channel axis, so 0 or less is no block
    size (the plan schema requires 1 or more; `quantspec lint` reports it as L004). Any dialect
    can set it (encodings files carry it as a plain integer), so it is checked here.
    ``names``: the tensors that have one."""
    entries = ctx.entries
    for name in names:
        e = entries[name]
        size = e.values.get("block_size")
        if size is not None and (type(size) is not int or size < 1):
            raise QuantspecError(
                "E208", f"block_size of tensor '{name}' must be a positive integer, got "
                f"{size!r}", _span_of(e.why.get("block_size")),
                hint="blocks hold block_size consecutive values along the channel axis; "
                "leave block_size unset for a per-channel or per-tensor encoding")


def _span_of(why: Why | None) -> Span | None:
    return None if why is None else why.span()
