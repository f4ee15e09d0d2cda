"""Finer positions inside a statement: the column of one word or quoted name.

IR rules carry the span of their statement or block; a finding about one op type or one name of
a rule points at that word, found by scanning the statement's text.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import replace

from ..source import Span


class SourceText:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def offset(self, line: int, col: int) -> int:
        if not 1 <= line <= len(self.starts):
            return len(self.text)
        return self.starts[line - 1] + max(col - 1, 0)

    def span_at(self, offset: int) -> Span:
        i = bisect.bisect_right(self.starts, offset) - 1
        return Span(self.file, i + 1, offset - self.starts[i] + 1)

    def find(self, span: Span | None, needle: str, word: bool = True) -> Span | None:
        """The position of ``needle`` inside ``span`` (a statement), or ``span`` itself."""
        if span is None or not span.line or not span.end_line or span.file != self.file:
            return span  # only statement spans (which have an end) are searched
        start = self.offset(span.line, span.col)
        end = self.offset(span.end_line, span.end_col)
        pat = re.escape(needle)
        if word:
            pat = rf"(?<![\w.]){pat}(?![\w.])"
        m = re.compile(pat).search(self.text, start, max(end, start))
        if m is None:
            return span
        found = self.span_at(m.start())
        return replace(found, end_line=found.line, end_col=found.col + len(needle))
