"""The cascade: per tensor and field, the rule with the highest (final, level, order) wins."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import ir
from ..errors import QuantspecError
from ..graph import Graph
from ..source import Span
from .passes import run_passes
from .patterns import match_patterns
from .plan import Entry, Plan, Why
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
        old = e.why.get(field)
        shadowed = ([old.rule, *old.shadowed] if old is not None else [])
        e.values[field] = value
        e.why[field] = Why(rule, "", note, shadowed)

    def quantized(self, name: str) -> bool:
        e = self.entries.get(name)
        return e is not None and bool(e.get("quantized"))


def compile_profile(profile: ir.Profile, graph: Graph, model_name: str = "") -> Plan:
    opts = {k: profile.options.get(k, v) for k, v in ir.OPTION_DEFAULTS.items()}
    pass_names = [n for n, _ in profile.passes]
    g = run_passes(graph, pass_names) if pass_names else graph

    entries = _entries(g)
    cands = [n for n, e in entries.items() if not e.reason]
    index = Index(g, cands, opts["model_output"])

    # -- the cascade ---------------------------------------------------------------------
    rules: list[tuple[tuple[int, int, int], ir.Rule | _Synthetic, list[str], dict[str, Any]]] = []
    for order, rule in enumerate(profile.rules):
        sel = index.select(rule.selector)
        key = (rule.priority, rule.selector.level, order)
        rules.append((key, rule, sel, {k: s.value for k, s in rule.settings.items()}))
    matches = match_patterns(g, profile.patterns, opts["fusion"])
    for m in matches:
        outs = [o for i in m.nodes[:-1] for o in g.nodes[i].outputs if o in index.cand]
        syn = _Synthetic(m.pattern.span, f"fuse {m.pattern.describe()}",
                         "no quantizer inside a fused pattern")
        rules.append(((0, ir.LEVEL_PATTERN, -1), syn, outs, {"quantized": False}))
    rules.sort(key=lambda r: r[0])

    hist: dict[str, dict[str, list[tuple[ir.Rule | _Synthetic, Any]]]] = {n: {} for n in cands}
    conflicts = opts["conflicts"] == "error"
    found: list[tuple[Any, ...]] = []
    for _key, rule, sel, values in rules:
        for name in sel:
            h = hist[name]
            for field, value in values.items():
                lst = h.setdefault(field, [])
                if lst and isinstance(rule, ir.Rule) and _conflicts(lst[-1], rule, value,
                                                                    conflicts):
                    found.append((lst[-1], rule, value, name, field))
                lst.append((rule, value))
    for prev, rule, value, name, field in found:
        q = hist[name].get("quantized")
        if q and isinstance(q[-1][0], ir.Rule) and q[-1][0].final and q[-1][1] is False:
            continue  # a final "off" means the tensor has no encoding to disagree about
        _raise_conflict(prev, rule, value, name, field)

    for name, h in hist.items():
        e = entries[name]
        for field, lst in h.items():
            rule, value = lst[-1]
            e.values[field] = value
            e.why[field] = _why(rule, [r for r, _ in lst[:-1]])

    ctx = Context(g, profile, entries, opts)
    _resolve_refs(ctx, g)
    _apply_min_bits(ctx)
    for name, span in profile.post:
        _run_hook(name, span, ctx)
    apply_ties(ctx, profile.ties)
    _fix_axes(ctx)

    match_json = [{"pattern": m.pattern.describe(),
                   "rule": str(m.pattern.span) if m.pattern.span else "",
                   "nodes": [g.nodes[i].name for i in m.nodes]} for m in matches]
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


def _entries(g: Graph) -> dict[str, Entry]:
    """Every tensor, in a stable order: graph inputs, then per node its inputs and outputs."""
    order: dict[str, None] = dict.fromkeys(g.inputs)
    for node in g.nodes:
        for name in node.inputs:
            if name:
                order.setdefault(name, None)
        for name in node.outputs:
            if name:
                order.setdefault(name, None)
    out: dict[str, Entry] = {}
    for name in order:
        t = g.tensors[name]
        prod = g.nodes[t.producer].name if t.producer is not None else None
        cons = list(dict.fromkeys(g.nodes[i].name for i, _ in t.consumers))
        e = Entry(name, t.kind, t.role, prod, cons, t.graph_input, t.graph_output,
                  list(t.shape) if t.shape is not None else None)
        if not t.is_float:
            e.reason = f"{t.dtype} tensor (only float tensors are quantized)"
        elif not t.consumers and not t.graph_output:
            e.reason = "unused (no op reads it and it is not a graph output)"
        elif t.kind == "constant" and t.producer is not None and \
                g.nodes[t.producer].op_type == "ConstantOfShape" and not t.static:
            pass
        out[name] = e
    return out


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


def _op_tensor(ctx: Context, name: str, slot: str) -> str | None:
    """For a parameter / input tensor: the first output (or input) of the op it belongs to."""
    g = ctx.graph
    t = g.tensors[name]
    node_idx = t.param_of[0][0] if t.param_of else (t.consumers[0][0] if t.consumers else None)
    if node_idx is None:
        return None
    node = g.nodes[node_idx]
    names = node.outputs if slot == "output" else [i for i in node.inputs
                                                   if i and not g.tensors[i].is_param]
    return names[0] if names else None


def _resolve_refs(ctx: Context, g: Graph) -> None:
    for name, e in ctx.entries.items():
        for field, value in list(e.values.items()):
            if isinstance(value, ir.Ref):
                other = _op_tensor(ctx, name, value.slot)
                oe = ctx.entries.get(other) if other else None
                if oe is None:
                    e.values.pop(field)
                    continue
                ov = oe.get(field)
                e.values[field] = ov
                e.why[field].note = f"like {value.slot} ('{other}')"


def _apply_min_bits(ctx: Context) -> None:
    for name, e in ctx.entries.items():
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
    g = ctx.graph
    fallback = ctx.options["per_channel_fallback"]
    for name, e in ctx.entries.items():
        if not e.get("per_channel"):
            continue
        if e.values.get("axis") is not None:
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
        if axis is not None:
            e.values["axis"] = axis
            e.why["axis"] = Why("<graph>", "", "channel axis of the parameter's op")


def _span_of(why: Why | None) -> Span | None:
    if why is None or ":" not in why.rule:
        return None
    parts = why.rule.rsplit(":", 2)
    try:
        return Span(parts[0], int(parts[1]), int(parts[2]))
    except (ValueError, IndexError):
        return Span(why.rule)
