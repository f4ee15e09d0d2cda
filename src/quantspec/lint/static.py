"""Checks on a profile's rules that need no model (L001, L004, L005, L006, L007).

Each check is a generator of diagnostics over the rules the user wrote (``origin == ""``) in the
file being linted; rules a reader derives (a vendor's built-in behaviour) and rules of extended
profiles are not the file's to fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from .. import ir
from ..errors import Diagnostic
from ..lang.settings import fmt_value
from ..source import Span
from . import globs, optypes
from .locate import SourceText

# Float formats that exist (fp4 e2m1, fp8 e4m3/e5m2, fp16/bf16, fp32, fp64).
FLOAT_BITS = (4, 8, 16, 32, 64)
MAX_INT_BITS = 32  # no runtime quantspec targets stores wider integer codes (spec 004: 4-32)
# AMCT's limits for its calibration algorithms (vitis_amct.md 2.2, field.py), which the runtime's
# IFMR/HFMG calibrators enforce too.
IFMR_PERCENTILE = (0.5, 1.0)
HFMG_BINS = (1024, 2048, 4096, 8192)


def _diag(code: str, message: str, span: Span | None, hint: str = "", severity: str = "warning",
          related: tuple[tuple[Span, str], ...] = ()) -> Diagnostic:
    return Diagnostic(code, message, span, related, hint, severity)


def user_rules(profile: ir.Profile, file: str) -> list[ir.Rule]:
    return [r for r in profile.rules if not r.origin and r.span is not None
            and r.span.file == file]


# ---------------------------------------------------------------------------------------------
# L001 unknown op types
# ---------------------------------------------------------------------------------------------


def unknown_op_types(profile: ir.Profile, src: SourceText) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    places: list[tuple[tuple[str, ...], Span | None, str]] = []
    for r in user_rules(profile, src.file):
        if r.selector.scope == "op":
            places.append((r.selector.op_types, r.stmt or r.span, "op rule"))
    for p in profile.patterns:
        if not p.origin:
            places.append((tuple(t for alts in p.ops for t in alts), p.span, "fusion pattern"))
    for t in profile.ties:
        if not t.origin and t.mode:
            places.append(((*t.op_types, *t.through), t.span, "tie"))
    for types, span, where in places:
        for op in types:
            if op in seen or optypes.is_known(op):
                continue
            seen.add(op)
            yield _diag("L001", f"'{op}' is not an ONNX op type; this {where} never matches it",
                        src.find(span, op), optypes.suggest(op)
                        or "op types are ONNX names, e.g. Conv, MatMul, Relu")


# ---------------------------------------------------------------------------------------------
# L004 values out of range
# ---------------------------------------------------------------------------------------------


def value_ranges(profile: ir.Profile, src: SourceText) -> Iterator[Diagnostic]:
    for r in user_rules(profile, src.file):
        yield from _rule_values(r)
    for key, s in profile.calibrate.items():
        if s.span is None or s.span.file != src.file:
            continue
        if key == "batches" and isinstance(s.value, (int, float)) and not isinstance(
                s.value, bool) and s.value <= 0:
            yield _diag("L004", f"calibrate batches must be positive, got {s.value}", s.span,
                        "the number of calibration batches", "error")
        elif key == "method" and isinstance(s.value, ir.Calibration):
            yield from _calibration(s.value, s.span)
        elif key == "combine" and s.value not in ir.COMBINE_METHODS:
            from ..errors import did_you_mean

            yield _diag("L004", f"calibrate combine '{fmt_value(s.value)}' is not a way to "
                        "combine batch statistics", s.span,
                        did_you_mean(str(s.value), ir.COMBINE_METHODS)
                        or f"one of: {', '.join(ir.COMBINE_METHODS)}")


def _rule_values(r: ir.Rule) -> Iterator[Diagnostic]:
    s = r.settings
    dtype = ir.value_of(s, "dtype")
    for name in ("bits", "min_bits"):
        bits = ir.value_of(s, name)
        if not isinstance(bits, int) or isinstance(bits, bool):
            continue
        span = s[name].span
        if dtype == "float" and name == "bits" and bits not in FLOAT_BITS:
            yield _diag("L004", f"float{bits} is not a floating-point format", span,
                        f"float formats have {', '.join(map(str, FLOAT_BITS))} bits", "error")
        elif dtype != "float" and bits > MAX_INT_BITS:
            yield _diag("L004", f"{name} {bits}: integer quantization is at most "
                        f"{MAX_INT_BITS} bits", span,
                        "use float32 (dtype float) or turn the tensor off", "error")
    block = ir.value_of(s, "block_size")
    if isinstance(block, int) and not isinstance(block, bool) and block <= 0:
        yield _diag("L004", f"block_size must be positive, got {block}", s["block_size"].span,
                    "blocks hold block_size consecutive values along the channel axis", "error")
    rng = ir.value_of(s, "fixed_range")
    if isinstance(rng, tuple) and len(rng) == 2:
        yield from _fixed_range(rng, s["fixed_range"].span)
    calib = ir.value_of(s, "calibration")
    if isinstance(calib, ir.Calibration):
        yield from _calibration(calib, s["calibration"].span)


def _fixed_range(rng: tuple[Any, Any], span: Span | None) -> Iterator[Diagnostic]:
    lo, hi = rng
    if lo is not None and hi is not None and lo == hi:
        yield _diag("L004", f"range [{fmt_value(lo)}, {fmt_value(hi)}] is empty", span,
                    "a quantization range needs min < max", "error")
    elif (lo is not None and lo > 0) or (hi is not None and hi < 0):
        # spec 004 / aimet.md C: every encoding is widened to include 0 (zero is exact)
        yield _diag("L004", f"range [{fmt_value(lo)}, {fmt_value(hi)}] does not contain 0; the "
                    "encoding is widened to include it", span,
                    "integer grids always represent 0 exactly; start the range at 0")


def _calibration(c: ir.Calibration, span: Span | None) -> Iterator[Diagnostic]:
    def num(name: str) -> float | None:
        v = c.param(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        return float(v)

    if c.method == "percentile":
        p = num("percentile")
        if p is not None and not 0 < p <= 100:
            yield _diag("L004", f"percentile {fmt_value(c.param('percentile'))} is outside "
                        "(0, 100]", span, "the percentile is in percent, e.g. 99.99", "error")
        elif p is not None and p <= 1:
            yield _diag("L004", f"percentile {fmt_value(c.param('percentile'))} keeps at most "
                        "1% of the values", span,
                        "the percentile is in percent: write 99.99, not 0.9999")
    elif c.method == "ifmr":
        lo, hi = IFMR_PERCENTILE
        for name in ("max_percentile", "min_percentile"):
            p = num(name)
            if p is not None and not lo < p <= hi:
                yield _diag("L004", f"ifmr {name} {fmt_value(c.param(name))} is outside "
                            f"({lo}, {hi}]", span, "IFMR percentiles are fractions, e.g. "
                            "0.999999 (AMCT rejects other values)", "error")
        start, end, step = num("search_range_start"), num("search_range_end"), num("search_step")
        if start is not None and start <= 0:
            yield _diag("L004", f"ifmr search_range_start must be positive, got "
                        f"{fmt_value(start)}", span, severity="error")
        if start is not None and end is not None and start >= end:
            yield _diag("L004", f"ifmr search range [{fmt_value(start)}, {fmt_value(end)}] is "
                        "empty", span, "search_range_start must be below search_range_end",
                        "error")
        elif step is not None and (step <= 0 or (start is not None and end is not None
                                                  and step > end - start + 1e-12)):
            yield _diag("L004", f"ifmr search_step {fmt_value(step)} must be positive and no "
                        "larger than the search range", span, severity="error")
    elif c.method == "hfmg":
        bins = c.param("num_of_bins")
        if bins is not None and bins not in HFMG_BINS:
            yield _diag("L004", f"hfmg num_of_bins {fmt_value(bins)} is not one of "
                        f"{', '.join(map(str, HFMG_BINS))}", span, severity="error")
    for k, v in c.params:
        if isinstance(v, float) and math.isnan(v):
            yield _diag("L004", f"calibration parameter {k} is NaN", span, severity="error")


# ---------------------------------------------------------------------------------------------
# L006 odd name patterns
# ---------------------------------------------------------------------------------------------


def odd_names(profile: ir.Profile, src: SourceText) -> Iterator[Diagnostic]:
    seen: set[tuple[str, Span | None]] = set()
    for r in user_rules(profile, src.file):
        if r.selector.scope not in ("layer", "tensor"):
            continue
        stmt = r.stmt or r.span
        for name in r.selector.names:
            if (name, stmt) in seen:
                continue
            seen.add((name, stmt))
            where = src.find(stmt, f'"{name}"', word=False)
            if where == stmt:
                where = src.find(stmt, f'"{_quote(name)}"', word=False)
            for message, hint in globs.problems(name):
                yield _diag("L006", f"{r.selector.scope} name '{name}': {message}", where, hint)
    for t in profile.ties:
        if t.mode or t.origin:
            continue
        for name in t.tensors:
            if globs.is_glob(name):
                yield _diag("L006", f"share takes exact tensor names; '{name}' is not a pattern "
                            "here and matches only a tensor of that literal name",
                            src.find(t.span, f'"{name}"', word=False), "list the tensors by name")


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


# ---------------------------------------------------------------------------------------------
# L007 empty rules
# ---------------------------------------------------------------------------------------------


def empty_rules(profile: ir.Profile, src: SourceText) -> Iterator[Diagnostic]:
    for r in user_rules(profile, src.file):
        if not r.settings:
            yield _diag("L007", f"'{r.selector.describe()}' sets nothing", r.span,
                        "add settings (e.g. int8, off) or remove the block")


# ---------------------------------------------------------------------------------------------
# L005 equal-precedence conflicts (no model: selectors that certainly overlap)
# ---------------------------------------------------------------------------------------------

_GENERIC = ("output", "input", "param")


def certain_overlap(a: ir.Selector, b: ir.Selector) -> bool:
    """True when ``a`` and ``b`` select the same tensors in any graph where either selects one."""
    if a.scope != b.scope or a.where != b.where or a.level != b.level:
        return False
    if a.scope == "op" and not set(a.op_types) & set(b.op_types):
        return False
    if a.scope in ("layer", "tensor") and not set(a.names) & set(b.names):
        return False
    if (a.slot, a.index) == (b.slot, b.index):
        return True
    slots = {a.slot, b.slot}
    return a.index is None and b.index is None and "tensor" in slots and bool(
        slots & set(_GENERIC))


def same_statement(a: ir.Rule, b: ir.Rule) -> bool:
    """Rules of one statement: a slot block refines the statement's own settings on purpose
    (``defaults { calibration: x  param { calibration: y } }``)."""
    return a.stmt is not None and a.stmt == b.stmt


def conflict_severity(profile: ir.Profile, a: ir.Rule, b: ir.Rule) -> str:
    """error when compiling rejects the pair (E201), else warning (the later rule wins)."""
    strict = profile.options.get("conflicts", ir.OPTION_DEFAULTS["conflicts"]) == "error"
    grouped = bool(a.group) and a.group == b.group
    return "error" if grouped or (strict and not a.group and not b.group) else "warning"


def conflict_diag(profile: ir.Profile, early: ir.Rule, late: ir.Rule,
                  fields: list[tuple[str, Any, Any]], where: str) -> Diagnostic:
    """One finding for a pair of rules; ``fields`` holds (field, early value, late value)."""
    name, v_early, v_late = fields[0]
    span = late.settings[name].span or late.span
    other = early.settings[name].span or early.span
    parts = [f"'{f}' ({fmt_value(vl)} here, {fmt_value(ve)} there)" for f, ve, vl in fields]
    sev = conflict_severity(profile, early, late)
    outcome = ("compiling fails (E201)" if sev == "error" else "the later rule wins")
    level = ir.LEVEL_NAMES.get(late.selector.level, "")
    msg = (f"{late.selector.describe()} and {early.selector.describe()} set different values "
           f"for {', '.join(parts)} {where} at equal precedence ({level}); {outcome}")
    hint = "make one selector more specific, or state the value once"
    related = ((other, "also set by"),) if other is not None else ()
    return Diagnostic("L005", msg, span, related, hint, sev)


def static_conflicts(profile: ir.Profile, src: SourceText) -> Iterator[Diagnostic]:
    rules = user_rules(profile, src.file)
    # only rules sharing a scope, precedence and an op type or name can overlap: bucket them so a
    # file of thousands of rules is not compared pair by pair
    buckets: dict[tuple[Any, ...], list[int]] = {}
    for i, r in enumerate(rules):
        s = r.selector
        keys = s.op_types if s.scope == "op" else s.names if s.scope in ("layer", "tensor") \
            else ("",)
        for k in keys:
            buckets.setdefault((s.scope, s.level, r.priority, s.where, k), []).append(i)
    pairs = sorted({(a, b) for idx in buckets.values() for n, b in enumerate(idx)
                    for a in idx[:n]}, key=lambda p: (p[1], p[0]))
    for a, b in pairs:
        early, late = rules[a], rules[b]
        if same_statement(early, late) or not certain_overlap(early.selector, late.selector):
            continue
        fields = [(f, early.settings[f].value, late.settings[f].value)
                  for f in late.settings if f in early.settings
                  and early.settings[f].value != late.settings[f].value]
        if fields:
            yield conflict_diag(profile, early, late, fields, "for the same tensors")
