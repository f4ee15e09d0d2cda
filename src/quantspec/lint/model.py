"""Checks against a model (``lint --model``): L005 per tensor, L020, L021, L022, compile errors.

The cascade is replayed here with the compiler's own pieces (graph passes, :class:`Index`
selection, pattern matching, the ``(final, level, order)`` key of compiler/resolve.py) so that
every rule's full history is at hand, including rules the compiler would stop at: a profile that
fails to compile still gets its other findings. Post hooks, ``like`` references and ties run after
the cascade and are not part of "shadowed": a rule is shadowed when the cascade itself never lets
it decide a field (or only decides fields of tensors another rule turns off).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import ir
from ..errors import Diagnostic, QuantspecError, did_you_mean
from ..graph import Graph
from ..source import Span
from . import globs, optypes
from .locate import SourceText
from .static import conflict_diag, same_statement

Key = tuple[int, int, int]
MAX_RELATED = 3


@dataclass
class _Pat:
    """A fusion-pattern match acting as a rule (quantized off inside the pattern)."""

    pattern: ir.Pattern


@dataclass
class Replay:
    graph: Graph  # after the profile's graph passes
    rules: list[tuple[Key, ir.Rule, list[str]]]
    winners: dict[tuple[str, str], tuple[Key, int | _Pat]] = field(default_factory=dict)
    # (tensor, field) -> every (key, rule index, value) that set it, in cascade order
    history: dict[tuple[str, str], list[tuple[Key, int | _Pat, Any]]] = field(
        default_factory=dict)
    matched: set[int] = field(default_factory=set)  # indexes into profile.patterns
    reasons: dict[str, str] = field(default_factory=dict)  # tensor -> why not quantizable


def replay(profile: ir.Profile, graph: Graph) -> Replay:
    from ..compiler.passes import run_passes
    from ..compiler.patterns import match_patterns
    from ..compiler.resolve import _entries
    from ..compiler.select import Index

    opts = {k: profile.options.get(k, v) for k, v in ir.OPTION_DEFAULTS.items()}
    names = [n for n, _ in profile.passes]
    g = run_passes(graph, names) if names else graph
    entries = _entries(g)
    cands = [n for n, e in entries.items() if not e.reason]
    index = Index(g, cands, opts["model_output"])
    rules = [((r.priority, r.selector.level, i), r, index.select(r.selector))
             for i, r in enumerate(profile.rules)]
    out = Replay(g, rules, reasons={n: e.reason for n, e in entries.items() if e.reason})
    steps: list[tuple[Key, int | _Pat, list[str], dict[str, Any]]] = [
        (key, key[2], sel, {k: s.value for k, s in r.settings.items()}) for key, r, sel in rules]
    pat_index = {id(p): i for i, p in enumerate(profile.patterns)}
    for m in match_patterns(g, profile.patterns, opts["fusion"]):
        out.matched.add(pat_index[id(m.pattern)])
        inner = [o for i in m.nodes[:-1] for o in g.nodes[i].outputs if o in index.cand]
        steps.append(((0, ir.LEVEL_PATTERN, -1), _Pat(m.pattern), inner, {"quantized": False}))
    steps.sort(key=lambda s: s[0])  # stable, as in compile_profile
    for key, who, sel, values in steps:
        for tensor in sel:
            for f, v in values.items():
                out.history.setdefault((tensor, f), []).append((key, who, v))
                out.winners[(tensor, f)] = (key, who)
    return out


def findings(profile: ir.Profile, file: str, graph: Graph, dialect: str = "qspec",
             src: SourceText | None = None) -> list[Diagnostic]:
    rep = replay(profile, graph)
    out: list[Diagnostic] = []
    out += matches_nothing(profile, file, rep, src)
    out += shadowed(profile, file, rep)
    out += patterns_never_match(profile, file, rep)
    pairs: set[frozenset[Span | None]] = set()
    if dialect == "qspec":
        # vendor readers state their tools' precedence through rule order on purpose (AMCT's
        # override_layer_types replaces common_config at the same level), so only rules a
        # person wrote in .qspec can conflict by accident
        out += conflicts(profile, file, rep, pairs)
    out += compile_errors(profile, graph, file, pairs)
    return out


def _mine(rule: ir.Rule, file: str) -> bool:
    return not rule.origin and rule.span is not None and rule.span.file == file


def _qspec(rule: ir.Rule, file: str) -> bool:
    f = rule.span.file if rule.span is not None else ""
    return f == file or f.endswith(".qspec")


# ---------------------------------------------------------------------------------------------
# L020 rules and names that select nothing
# ---------------------------------------------------------------------------------------------


def matches_nothing(profile: ir.Profile, file: str, rep: Replay,
                    src: SourceText | None = None) -> Iterator[Diagnostic]:
    g = rep.graph

    def at(span: Span | None, word: str, quoted: bool = False) -> Span | None:
        if src is None:
            return span
        return src.find(span, f'"{word}"' if quoted else word, word=not quoted)

    op_types = {n.op_type for n in g.nodes}
    node_names = [n.name for n in g.nodes]
    tensors = list(g.tensors)
    seen: set[tuple[str, str]] = set()

    def once(kind: str, name: str) -> bool:
        if (kind, name) in seen:
            return False
        seen.add((kind, name))
        return True

    whole: dict[Span | None, list[ir.Rule]] = {}
    for _key, r, sel in rep.rules:
        if not _mine(r, file):
            continue
        missing = False
        s = r.selector
        if s.scope == "op":
            for t in s.op_types:
                if t not in op_types:
                    missing = True
                    # a name that is no op type at all is L001's (or the reader's) finding
                    if optypes.is_known(t) and once("op", t):
                        yield _l020(f"op type '{t}' does not occur in the model",
                                    at(r.stmt or r.span, t), did_you_mean(t, sorted(op_types)))
        elif s.scope == "layer":
            for name in s.names:
                if not _any_match(name, node_names):
                    missing = True
                    if once("layer", name):
                        yield _l020(f"layer '{_shown(name)}' matches no node of the model",
                                    at(r.stmt or r.span, name, True), _near(name, node_names))
        elif s.scope == "tensor":
            for name in s.names:
                if not _any_match(name, tensors):
                    missing = True
                    if once("tensor", name):
                        yield _l020(f"tensor '{_shown(name)}' is not in the model",
                                    at(r.stmt or r.span, name, True), _near(name, tensors))
                elif name in rep.reasons and once("tensor", name):
                    missing = True
                    yield _l020(f"tensor '{name}' is never quantized: {rep.reasons[name]}",
                                at(r.stmt or r.span, name, True), "remove the rule")
        if not missing and not sel:
            whole.setdefault(r.span, []).append(r)
    for span, rules in whole.items():
        # a vendor key that became several rules (AIMET op_type.T input + output) is reported
        # only when none of them selects anything
        if all(not sel for _k, r, sel in rep.rules if r.span == span and _mine(r, file)):
            what = " / ".join(dict.fromkeys(r.selector.describe() for r in rules))
            yield _l020(f"'{what}' selects no tensor in the model", span,
                        _why_empty(rules[0].selector))
    for t in profile.ties:
        if t.origin or t.span is None or t.span.file != file:
            continue
        for name in t.tensors:
            if name not in g.tensors and once("tensor", name):
                yield _l020(f"share: tensor '{name}' is not in the model",
                            at(t.span, name, True), _near(name, tensors))
        for op in t.op_types:
            if op not in op_types and optypes.is_known(op) and once("op", op):
                yield _l020(f"tie: op type '{op}' does not occur in the model", at(t.span, op),
                            did_you_mean(op, sorted(op_types)))


def _l020(message: str, span: Span | None, hint: str) -> Diagnostic:
    return Diagnostic("L020", message, span, (), hint, "warning")


def _any_match(name: str, names: list[str]) -> bool:
    if not globs.is_glob(name):
        return name in set(names)
    import fnmatch
    import re

    rx = re.compile(fnmatch.translate(name))
    return any(rx.match(n) for n in names)


def _near(name: str, names: list[str]) -> str:
    lit = globs.literal(name)
    return did_you_mean(lit, names) if lit is not None else ""


def _shown(name: str) -> str:
    lit = globs.literal(name)
    return lit if lit is not None else name


def _why_empty(sel: ir.Selector) -> str:
    if sel.where:
        return "no op of that type satisfies " + ", ".join(map(str, sel.where))
    if sel.scope in ("defaults", "op", "layer") and sel.slot not in ("tensor", "output"):
        return f"the matched ops have no quantizable '{sel.slot}' tensor"
    return ""


# ---------------------------------------------------------------------------------------------
# L021 fully shadowed rules
# ---------------------------------------------------------------------------------------------


def shadowed(profile: ir.Profile, file: str, rep: Replay) -> Iterator[Diagnostic]:
    # Rules that share a span came from one key of a vendor file (Vitis'
    # overall_quantize_config is a rule per tensor kind); they are judged as one unit, and a
    # unit does not shadow itself.
    units: dict[Span | None, list[tuple[int, ir.Rule, list[str]]]] = {}
    for key, r, sel in rep.rules:
        if _mine(r, file) and sel and r.settings:
            units.setdefault(r.span, []).append((key[2], r, sel))
    for span, members in units.items():
        winners = _overriders(profile, rep, span, members)
        if winners is None:
            continue
        related: list[tuple[Span, str]] = []
        derived: list[str] = []
        for who in winners:
            if isinstance(who, _Pat):
                if who.pattern.span is not None:
                    related.append((who.pattern.span,
                                    f"overridden by fuse {who.pattern.describe()} at"))
                continue
            wr = profile.rules[who]
            if wr.span is not None and wr.span.line:
                related.append((wr.span, f"overridden by {wr.selector.describe()} at"))
            else:
                derived.append(wr.note or wr.selector.describe())
        fields = list(dict.fromkeys(f for _i, r, _s in members for f in r.settings))
        n = len({t for _i, _r, sel in members for t in sel})
        what = " / ".join(dict.fromkeys(r.selector.describe() for _i, r, _s in members))
        verb = "is" if len(fields) == 1 else "are"
        where = "the one tensor" if n == 1 else f"all {n} tensors"
        msg = (f"'{what}' has no effect: {', '.join(fields)} {verb} overridden (or the tensor "
               f"turned off) on {where} it selects")
        if len(related) > MAX_RELATED:
            msg += f" (by {len(related)} rules; the first {MAX_RELATED} are listed)"
        hint = "remove the rule, or make it more specific than the rules that override it"
        if derived:
            hint = "overridden by built-in behaviour: " + "; ".join(dict.fromkeys(derived))
        yield Diagnostic("L021", msg, span, tuple(related[:MAX_RELATED]), hint, "warning")


def _overriders(profile: ir.Profile, rep: Replay, span: Span | None,
                members: list[tuple[int, ir.Rule, list[str]]]) -> list[int | _Pat] | None:
    """The rules that win every (tensor, field) of the unit (or turn the tensor off), or None
    when the unit decides something."""
    def ours(who: int | _Pat) -> bool:
        return isinstance(who, int) and profile.rules[who].span == span

    out: dict[int, int | _Pat] = {}

    def add(who: int | _Pat) -> None:
        out.setdefault(who if isinstance(who, int) else -1 - id(who.pattern), who)

    for _idx, r, sel in members:
        for t in sel:
            q = rep.history.get((t, "quantized"))
            # a tensor another rule turns off keeps none of this rule's other settings
            off = q is not None and q[-1][2] is False and not ours(q[-1][1])
            for f in r.settings:
                who = rep.winners[(t, f)][1]
                if not ours(who):
                    add(who)
                elif off and f != "quantized":
                    add(q[-1][1])
                else:
                    return None
    return list(out.values())


# ---------------------------------------------------------------------------------------------
# L022 fusion patterns that never match
# ---------------------------------------------------------------------------------------------


def patterns_never_match(profile: ir.Profile, file: str, rep: Replay) -> Iterator[Diagnostic]:
    from ..compiler.patterns import match_patterns

    mode = profile.options.get("fusion", ir.OPTION_DEFAULTS["fusion"])
    for i, p in enumerate(profile.patterns):
        if i in rep.matched or p.origin or p.span is None or p.span.file != file:
            continue
        alone = match_patterns(rep.graph, (p,), mode)
        if alone:
            why = ("every occurrence overlaps a match of another pattern, and matches are "
                   "disjoint (fusion: aimet2 tries longer patterns first)")
            hint = "remove it, or drop the pattern it loses to"
        else:
            why = "the chain does not occur in the model"
            hint = ("each op of the chain must feed the next one, and in aimet2 matching every "
                    "op but the last must have one consumer")
        yield Diagnostic("L022", f"fusion pattern '{p.describe()}' never matches: {why}",
                         p.span, (), hint, "warning")


# ---------------------------------------------------------------------------------------------
# L005 equal-precedence conflicts on the model's tensors
# ---------------------------------------------------------------------------------------------


def conflicts(profile: ir.Profile, file: str, rep: Replay,
              pairs: set[frozenset[Span | None]]) -> Iterator[Diagnostic]:
    rules = profile.rules
    found: dict[tuple[int, int], dict[str, Any]] = {}
    for (tensor, f), hist in rep.history.items():
        wkey, who = rep.winners[(tensor, f)]
        if not isinstance(who, int) or rules[who].origin:
            continue
        q = rep.history.get((tensor, "quantized"))
        if f != "quantized" and q is not None and q[-1][2] is False:
            continue  # the tensor is off: it has no encoding to disagree about
        wval = hist[-1][2]
        for key, other, val in hist[:-1]:
            if (not isinstance(other, int) or key[:2] != wkey[:2] or val == wval
                    or rules[other].origin):
                continue
            if not (_mine(rules[other], file) or _mine(rules[who], file)):
                continue
            if not (_qspec(rules[other], file) and _qspec(rules[who], file)):
                continue
            if same_statement(rules[other], rules[who]):
                continue
            slot = found.setdefault((other, who), {"fields": {}, "tensors": []})
            slot["fields"].setdefault(f, (val, wval))
            if tensor not in slot["tensors"]:
                slot["tensors"].append(tensor)
    for (a, b), info in found.items():
        early, late = rules[a], rules[b]
        fields = [(f, va, vb) for f, (va, vb) in info["fields"].items()]
        ts = info["tensors"]
        where = f"of tensor '{ts[0]}'" + (f" (and {len(ts) - 1} more)" if len(ts) > 1 else "")
        pairs.add(frozenset((early.span, late.span)))
        yield conflict_diag(profile, early, late, fields, where)


# ---------------------------------------------------------------------------------------------
# compile errors
# ---------------------------------------------------------------------------------------------


def compile_errors(profile: ir.Profile, graph: Graph, file: str,
                   pairs: set[frozenset[Span | None]]) -> list[Diagnostic]:
    from ..compiler import compile_profile

    try:
        compile_profile(profile, graph, os.path.basename(graph.path))
    except QuantspecError as exc:
        out = []
        for d in exc.diagnostics:
            if d.code == "E201" and d.related and frozenset((d.span, d.related[0][0])) in pairs:
                continue  # already reported as L005 (error)
            out.append(d)
        return out
    return []
