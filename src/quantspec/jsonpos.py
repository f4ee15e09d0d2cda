"""JSON with positions: every value's ``file:line:col`` by JSON path, for vendor-file diagnostics.

``json`` in the standard library keeps no positions, so this is a small recursive-descent reader
that returns plain Python values plus a :class:`Positions` map from path tuples to spans. Like
Python's ``json.load`` (which the vendors' tools use), a duplicated key keeps the last value; the
duplicates are recorded so lint can report them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import QuantspecError
from .source import Span

# Vendor files nest < 10 deep; jsonschema spends ~5 frames per level validating nested
# arrays, so 200 levels hit Python's recursion limit (RecursionError) in the readers.
MAX_DEPTH = 64
# Longer literals are refused (E112, E113): int() of a 5000-digit number raises ValueError
# (Python's int_max_str_digits) and float() of a 400-digit one overflows; configs need neither.
MAX_NUMBER_CHARS = 64
MAX_STRING_CHARS = 65_536

PathT = tuple[Any, ...]

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WS = re.compile(r"[ \t\n\r]*")
_STRING_CHUNK = re.compile(r'[^"\\\x00-\x1f]*')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass
class Positions:
    file: str
    spans: dict[PathT, Span] = field(default_factory=dict)  # value positions
    key_spans: dict[PathT, Span] = field(default_factory=dict)  # positions of object keys
    duplicates: list[tuple[PathT, Span, Span]] = field(default_factory=list)

    def get(self, path: PathT) -> Span:
        """The span of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.key_spans:
                return self.key_spans[p]
            if p in self.spans:
                return self.spans[p]
            p = p[:-1]
        return self.spans.get((), Span(self.file, 1, 1))

    def value_span(self, path: PathT) -> Span:
        p = tuple(path)
        return self.spans.get(p) or self.get(p)


def json_path(path: PathT) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class _Reader:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.pos = 0
        self.positions = Positions(file)
        # line starts for O(log n) offset -> (line, col)
        self._lines = [0] + [m.end() for m in re.finditer("\n", text)]

    def span_at(self, offset: int, path: PathT = ()) -> Span:
        import bisect

        i = bisect.bisect_right(self._lines, offset) - 1
        return Span(self.file, i + 1, offset - self._lines[i] + 1, path=json_path(path))

    def fail(self, message: str, offset: int | None = None, hint: str = "") -> QuantspecError:
        return QuantspecError("E110", message, self.span_at(self.pos if offset is None else offset),
                              hint=hint)

    def ws(self) -> None:
        self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def value(self, path: PathT, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise QuantspecError("E111", f"JSON nested deeper than {MAX_DEPTH} levels",
                                 self.span_at(self.pos), hint="is this a generated file?")
        self.ws()
        start = self.pos
        self.positions.spans[path] = self.span_at(start, path)
        if start >= len(self.text):
            raise self.fail("unexpected end of file, expected a value")
        ch = self.text[start]
        if ch == "{":
            return self.obj(path, depth)
        if ch == "[":
            return self.arr(path, depth)
        if ch == '"':
            return self.string()
        if self.text.startswith("true", start):
            self.pos += 4
            return True
        if self.text.startswith("false", start):
            self.pos += 5
            return False
        if self.text.startswith("null", start):
            self.pos += 4
            return None
        m = _NUMBER.match(self.text, start)
        if m and m.end() > start:
            if m.end() - start > MAX_NUMBER_CHARS:
                raise QuantspecError("E112", f"a number of {m.end() - start} characters (the "
                                     f"limit is {MAX_NUMBER_CHARS})", self.span_at(start, path),
                                     hint="write large or precise values with an exponent")
            self.pos = m.end()
            s = m.group()
            return float(s) if any(c in s for c in ".eE") else int(s)
        for word in ("True", "False", "None", "NaN", "Infinity"):
            if self.text.startswith(word, start):
                lit = {"True": "true", "False": "false", "None": "null"}.get(word)
                hint = f"JSON spells it {lit} (or the string \"{word}\")" if lit else ""
                raise self.fail(f"'{word}' is not a JSON value", hint=hint)
        raise self.fail(f"unexpected character {ch!r}, expected a value")

    def string(self) -> str:
        start = self.pos
        self.pos += 1
        parts: list[str] = []
        text = self.text
        while True:
            m = _STRING_CHUNK.match(text, self.pos)
            parts.append(m.group())  # type: ignore[union-attr]
            self.pos = m.end()  # type: ignore[union-attr]
            if self.pos >= len(text):
                raise self.fail("unterminated string", start)
            ch = text[self.pos]
            if ch == '"':
                self.pos += 1
                if self.pos - start - 2 > MAX_STRING_CHARS:  # source characters inside quotes
                    raise QuantspecError("E113", f"a string of {self.pos - start - 2} characters"
                                         f" (the limit is {MAX_STRING_CHARS})",
                                         self.span_at(start), hint="is this the right file?")
                return "".join(parts)
            if ch == "\\":
                esc = text[self.pos + 1 : self.pos + 2]
                if esc in _ESCAPES:
                    parts.append(_ESCAPES[esc])
                    self.pos += 2
                elif esc == "u":
                    hexd = text[self.pos + 2 : self.pos + 6]
                    if not re.fullmatch(r"[0-9a-fA-F]{4}", hexd):
                        raise self.fail("invalid \\u escape in string")
                    parts.append(json.loads(f'"\\u{hexd}"', strict=False))
                    self.pos += 6
                else:
                    raise self.fail(f"invalid escape '\\{esc}' in string")
            else:
                raise self.fail("control character in string", hint="escape it, e.g. \\n")

    def obj(self, path: PathT, depth: int) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        self.ws()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return out
        while True:
            self.ws()
            if not self.text.startswith('"', self.pos):
                if self.text.startswith("}", self.pos):
                    raise self.fail("trailing comma before '}'",
                                    hint="JSON allows no trailing comma")
                raise self.fail("expected a string key in double quotes")
            kstart = self.pos
            key = self.string()
            kpath = (*path, key)
            kspan = self.span_at(kstart, kpath)
            if key in out:
                self.positions.duplicates.append((kpath, self.positions.key_spans[kpath], kspan))
            self.positions.key_spans[kpath] = kspan
            self.ws()
            if not self.text.startswith(":", self.pos):
                raise self.fail("expected ':' after the key")
            self.pos += 1
            out[key] = self.value(kpath, depth + 1)
            self.ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return out
            raise self.fail("expected ',' or '}' after an object member")

    def arr(self, path: PathT, depth: int) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        self.ws()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return out
        while True:
            out.append(self.value((*path, len(out)), depth + 1))
            self.ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                self.ws()
                if self.text.startswith("]", self.pos):
                    raise self.fail("trailing comma before ']'",
                                    hint="JSON allows no trailing comma")
                continue
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return out
            raise self.fail("expected ',' or ']' after an array element")


def loads(text: str, file: str = "<string>") -> tuple[Any, Positions]:
    """Parse JSON text; returns ``(value, positions)`` or raises ``QuantspecError`` E110/E111."""
    r = _Reader(text, file)
    value = r.value((), 0)
    r.ws()
    if r.pos != len(text):
        raise r.fail("extra data after the JSON value")
    return value, r.positions


def walk(value: Any, path: PathT = ()) -> Iterator[tuple[PathT, Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, (*path, i))
