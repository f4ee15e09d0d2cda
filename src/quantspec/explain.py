"""Human-readable provenance of a plan entry: for each field, the rule that won and the ones
it shadowed (like ``git config --show-origin``)."""

from __future__ import annotations

from .compiler.plan import PLAN_FIELDS, Entry
from .lang.settings import fmt_value


def explain(entry: Entry) -> str:
    lines = [f"tensor '{entry.name}' ({entry.kind}{', ' + entry.role if entry.role else ''})"]
    if entry.producer:
        lines.append(f"  produced by {entry.producer}; read by {', '.join(entry.consumers) or '-'}")
    if entry.reason:
        lines.append(f"  never quantized: {entry.reason}")
        return "\n".join(lines)
    for field in PLAN_FIELDS:
        value = entry.get(field)
        why = entry.why.get(field)
        shown = fmt_value(value)
        if why is None:
            lines.append(f"  {field:20s} {shown:14s} (built-in default)")
            continue
        src = why.rule + (f"  [{why.selector}]" if why.selector else "")
        if why.note:
            src += f"  — {why.note}"
        lines.append(f"  {field:20s} {shown:14s} {src}")
        for s in why.shadowed:
            lines.append(f"  {'':20s} {'':14s}   shadows {s}")
    if entry.shared_with:
        lines.append(f"  shares its encoding with: {', '.join(sorted(entry.shared_with))}")
    return "\n".join(lines)
