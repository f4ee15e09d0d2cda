"""One error family for every stage, rendered as ``file:line:col: CODE message``.

Codes are stage-prefixed: ``E0xx`` syntax of .qspec, ``E1xx`` extends/dialect input, ``E2xx``
compile, ``E3xx`` ONNX model, ``E4xx`` runtime and calibration data, ``E5xx`` output/IO,
``W…`` warnings (lint findings and lossy translations).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .source import Span, caret_snippet


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    related: tuple[tuple[Span, str], ...] = ()
    hint: str = ""
    severity: str = "error"  # "error" | "warning" | "info"

    def render(self, text: str | None = None) -> str:
        where = f"{self.span}: " if self.span is not None else ""
        out = [f"{where}{self.code} {self.message}"]
        if text is not None and self.span is not None and self.span.line:
            snippet = caret_snippet(text, self.span.line, self.span.col)
            if snippet:
                out.append(snippet)
        for span, note in self.related:
            out.append(f"  {note} {span}" if note else f"  see {span}")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.span.file if self.span else None,
            "line": self.span.line if self.span else None,
            "col": self.span.col if self.span else None,
            "path": self.span.path if self.span else None,
        }
        if self.related:
            d["related"] = [{"where": str(s), "note": n} for s, n in self.related]
        if self.hint:
            d["hint"] = self.hint
        return d


class QuantspecError(Exception):
    """The one exception type users see. Carries one or more diagnostics."""

    def __init__(
        self,
        code: str,
        message: str,
        span: Span | None = None,
        *,
        hint: str = "",
        related: Sequence[tuple[Span, str]] = (),
        diagnostics: Sequence[Diagnostic] = (),
    ) -> None:
        first = Diagnostic(code, message, span, tuple(related), hint)
        self.diagnostics: list[Diagnostic] = [first, *diagnostics]
        super().__init__(first.render())

    @property
    def diagnostic(self) -> Diagnostic:
        return self.diagnostics[0]

    @property
    def code(self) -> str:
        return self.diagnostics[0].code

    @property
    def span(self) -> Span | None:
        return self.diagnostics[0].span

    @classmethod
    def from_diagnostics(cls, diags: Sequence[Diagnostic]) -> QuantspecError:
        d = diags[0]
        err = cls(d.code, d.message, d.span, hint=d.hint, related=d.related)
        err.diagnostics = list(diags)
        return err


@dataclass
class Report:
    """Collects warnings (e.g. what a translation target cannot hold) without stopping."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def warn(self, code: str, message: str, span: Span | None = None, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(code, message, span, (), hint, "warning"))

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        self.diagnostics.extend(diags)


def did_you_mean(word: str, choices: Iterable[str], n: int = 1) -> str:
    """``"did you mean 'is_symmetric'?"`` or ``""`` (difflib, as sqlglot does)."""
    matches = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in choices}
        if word.lower() in lowered:
            matches = [lowered[word.lower()]]
    return f"did you mean '{matches[0]}'?" if matches else ""
