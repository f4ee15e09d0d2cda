""":class:`quantspec.ir.Profile` -> canonical .qspec text.

Canonical means: one statement per block, two-space indent, settings in ``ir.FIELDS`` order with
flag words where one exists. ``parse(format(p)) == p`` and ``format`` is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .. import ir
from .settings import fmt_value, to_items

INDENT = "  "
LINE_WIDTH = 100


@dataclass
class _Chunk:
    lines: list[str]
    line: int  # source line where it starts (0 when unknown)
    end: int = 0


def format_profile(p: ir.Profile, comments: bool = True) -> str:
    """Canonical text of ``p`` (sections in a fixed order)."""
    chunks = _chunks(p, comments)
    out: list[str] = []
    prev_kind = ""
    for kind, chunk in chunks:
        if out and kind != prev_kind and kind in ("rule", "fuse", "tie") or (
            out and prev_kind == "header"
        ):
            out.append("")
        out += chunk.lines
        prev_kind = kind
    return "\n".join(out) + "\n"


def format_text(text: str, file: str = "<string>") -> str:
    """Reformat .qspec ``text``: statements in source order, comments and paragraph breaks
    kept. A comment on its own line stays before the statement that follows it; a comment at
    the end of a statement's line stays at the end of that statement's first line.
    """
    from .parse import parse

    p = parse(text, file)
    chunks = sorted((c for _, c in _chunks(p, False)), key=lambda c: c.line)
    comments = _comments(text)
    src = text.splitlines()
    out: list[str] = []
    ci = 0
    for chunk in chunks:
        first = True
        while ci < len(comments) and comments[ci][0] < chunk.line and not comments[ci][2]:
            line, body, _ = comments[ci]
            if out and _blank_before(src, line) and (first or out[-1] != ""):
                out.append("")
            out.append(body)
            first = False
            ci += 1
        if first and out and _blank_before(src, chunk.line):
            out.append("")
        lines = list(chunk.lines)
        end = max(chunk.end, chunk.line)
        while ci < len(comments) and comments[ci][2] and comments[ci][0] <= end:
            lines[0] = f"{lines[0]}  {comments[ci][1]}"
            ci += 1
        out += lines
    for line, body, _ in comments[ci:]:
        if out and _blank_before(src, line):
            out.append("")
        out.append(body)
    return "\n".join(out) + "\n"


def _blank_before(src: list[str], line: int) -> bool:
    return line >= 2 and line - 2 < len(src) and not src[line - 2].strip()


def _comments(text: str) -> list[tuple[int, str, bool]]:
    """``(line, '# text', trailing)`` for every comment; strings never span lines."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        in_str = esc = False
        for i, ch in enumerate(raw):
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "#":
                out.append((n, raw[i:].rstrip(), bool(raw[:i].strip())))
                break
    return out


def _line(*spans: object) -> int:
    lines = [s.line for s in spans if s is not None and getattr(s, "line", 0)]
    return min(lines) if lines else 0


def _chunks(p: ir.Profile, comments: bool) -> list[tuple[str, _Chunk]]:
    out: list[tuple[str, _Chunk]] = []
    if p.name or p.extends:
        head = f"profile {_q(p.name or 'unnamed')}"
        if p.extends:
            head += " extends " + ", ".join(_q(e) for e, _ in p.extends)
        out.append(("header", _Chunk([head], _line(p.span))))
    if p.options.values:
        out.append(("setting", _Chunk(_kv_block("options", p.options.values),
                                      _line(*(s.span for s in p.options.values.values())))))
    if p.passes:
        out.append(("setting", _Chunk(["passes " + ", ".join(n for n, _ in p.passes)],
                                      _line(*(s for _, s in p.passes)))))
    if p.post:
        out.append(("setting", _Chunk(["post " + ", ".join(_q(n) for n, _ in p.post)],
                                      _line(*(s for _, s in p.post)))))
    for name, block in (("calibrate", p.calibrate), ("transform", p.transforms),
                        ("meta", p.meta)):
        if block:
            out.append(("setting", _Chunk(_kv_block(name, block),
                                          _line(*(s.span for s in block.values())))))
    for group in _group(p.rules):
        spans = [r.stmt or r.span for r in group]
        ends = [s.end_line for s in spans if s is not None]
        out.append(("rule", _Chunk(_rule_block(group, comments), _line(*spans),
                                   max(ends, default=0))))
    for pat in p.patterns:
        text = "fuse " + " -> ".join(" | ".join(alts) for alts in pat.ops)
        out.append(("fuse", _Chunk([text], _line(pat.span))))
    for t in p.ties:
        out.append(("tie", _Chunk([_tie(t)], _line(t.span))))
    return out


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _kv_block(name: str, values: dict[str, ir.Setting] | object) -> list[str]:
    items = [f"{k}: {fmt_value(s.value)}" for k, s in values.items()]  # type: ignore[union-attr]
    return _wrap(f"{name} {{", items, "}", 0)


def _wrap(open_: str, items: list[str], close: str, depth: int) -> list[str]:
    pad = INDENT * depth
    one = f"{pad}{open_} {'  '.join(items)} {close}" if items else f"{pad}{open_} {close}"
    if len(one) <= LINE_WIDTH:
        return [one]
    return [f"{pad}{open_}", *(f"{pad}{INDENT}{i}" for i in items), f"{pad}{close}"]


def _head(sel: ir.Selector, final: bool, group: str = "") -> str:
    pre = ("final " if final else "") + (f"group {_q(group)} " if group else "")
    if sel.scope == "defaults":
        return pre + "defaults"
    if sel.scope == "op":
        s = pre + "op " + " | ".join(sel.op_types)
        if sel.where:
            s += " (" + ", ".join(_pred(w) for w in sel.where) + ")"
        return s
    if sel.scope == "model_input":
        return pre + "model input"
    if sel.scope == "model_output":
        return pre + "model output"
    return pre + f"{sel.scope} " + ", ".join(_q(n) for n in sel.names)


def _pred(w: ir.Predicate) -> str:
    if not w.op:
        return w.name
    return f"{w.name} {w.op} {fmt_value(w.value)}"


def _base(r: ir.Rule) -> tuple[object, ...]:
    s = r.selector
    return (s.scope, s.op_types, s.names, s.where, r.final, r.group)


def _group(rules: Iterable[ir.Rule]) -> list[list[ir.Rule]]:
    """Consecutive rules with one selector base print as one block (order kept)."""
    groups: list[list[ir.Rule]] = []
    for r in rules:
        if groups and _base(groups[-1][0]) == _base(r) and r.settings \
                and groups[-1][-1].settings \
                and r.stmt == groups[-1][-1].stmt:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def _rule_block(group: list[ir.Rule], comments: bool) -> list[str]:
    first = group[0]
    head = _head(first.selector, first.final, first.group)
    lines: list[str] = []
    if comments:
        notes = [f"# {r.origin}: {r.note}" for r in group if r.origin and r.note]
        lines += dict.fromkeys(notes)
    direct: list[str] = []
    slots: list[tuple[str, list[str]]] = []
    for i, r in enumerate(group):
        sel = r.selector
        items = to_items(dict(r.settings))
        if sel.slot == "tensor" and sel.index is None and i == 0:
            direct += items
        else:
            slot = sel.slot + (f" {sel.index}" if sel.index is not None else "")
            slots.append((slot, items))
    if not slots:
        lines += _wrap(f"{head} {{", direct, "}", 0)
        return lines
    if not direct and len(slots) == 1:
        slot, items = slots[0]
        inner = f"{slot} {{ {'  '.join(items)} }}" if items else f"{slot} {{ }}"
        one = f"{head} {{ {inner} }}"
        if len(one) <= LINE_WIDTH:
            return [*lines, one]
    lines.append(f"{head} {{")
    if direct:
        lines += [f"{INDENT}{i}" for i in direct]
    for slot, items in slots:
        lines += _wrap(f"{slot} {{", items, "}", 1)
    lines.append("}")
    return lines


def _tie(t: ir.Tie) -> str:
    if not t.mode:
        return "share " + ", ".join(_q(n) for n in t.tensors)
    s = f"tie {t.mode}: " + " | ".join(t.op_types)
    if t.through:
        s += " through " + " | ".join(t.through)
    return s
