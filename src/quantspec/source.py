"""Source positions: where every IR value and every diagnostic comes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Span:
    """A position in a user's file (1-based line and column).

    ``path`` holds a JSON pointer / proto field path when the input has one (vendor files), so
    a diagnostic can show both ``cfg.json:12:7`` and ``$.op_type.Conv``.
    """

    file: str
    line: int = 0
    col: int = 0
    end_line: int = 0
    end_col: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        if self.path:
            return f"{self.file}:{self.path}"
        return self.file

    def to_json(self) -> str:
        return str(self)


def source_line(text: str, line: int) -> str:
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return ""


def caret_snippet(text: str, line: int, col: int, width: int = 1) -> str:
    """The source line and a caret under ``col`` (Lark's get_context shape)."""
    src = source_line(text, line)
    if not src:
        return ""
    expanded = src.expandtabs(1)
    pad = " " * max(col - 1, 0)
    return f"  {expanded}\n  {pad}{'^' * max(width, 1)}"
