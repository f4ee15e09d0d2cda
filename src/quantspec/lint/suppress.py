"""Inline suppressions: ``# quantspec: ignore[L001]`` in files that have comments (.qspec, AMCT).

A comment at the end of a line covers the findings on that line, or on every line of the
statement that starts there; a comment on a line of its own covers the next statement (or the
next line). ``ignore`` without a list covers every code; codes may be prefixes (``L02``). JSON
has no comments: use ``lint --ignore`` there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import Diagnostic

_RX = re.compile(r"#\s*quantspec:\s*ignore\b(?:\[([^\]]*)\])?")

Codes = frozenset[str] | None  # None: every code


def table(text: str, extents: Iterable[tuple[int, int]]) -> dict[int, Codes]:
    """line -> suppressed codes, from the comments of ``text`` and statement line ranges."""
    ends: dict[int, int] = {}
    for start, end in extents:
        ends[start] = max(end, ends.get(start, start))
    lines = text.splitlines()
    out: dict[int, Codes] = {}
    for i, line in enumerate(lines, 1):
        m = _RX.search(line)
        if m is None:
            continue
        codes: Codes = None
        if m.group(1) is not None:
            codes = frozenset(c.strip() for c in m.group(1).split(",") if c.strip())
        target = i
        if not line[: m.start()].strip():  # own line: the next line that holds code
            target = next((j for j in range(i + 1, len(lines) + 1)
                           if lines[j - 1].strip() and not lines[j - 1].lstrip().startswith("#")),
                          i)
        for n in range(target, ends.get(target, target) + 1):
            out[n] = _union(out.get(n, frozenset()), codes) if n in out else codes
    return out


def _union(a: Codes, b: Codes) -> Codes:
    return None if a is None or b is None else a | b


def apply(diags: Iterable[Diagnostic], file: str, rules: dict[int, Codes]) -> list[Diagnostic]:
    out = []
    for d in diags:
        s = d.span
        if s is not None and s.file == file and s.line in rules:
            codes = rules[s.line]
            if codes is None or any(d.code.startswith(c) for c in codes):
                continue
        out.append(d)
    return out
