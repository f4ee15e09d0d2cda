"""Lint one file after another: read it with its dialect, run the checks, collect diagnostics.

Per file: the dialect is detected (or given); the reader runs with a :class:`Report` so its
warnings (W1xx) become findings; a reader error (E0xx/E1xx) is a finding and ends that file's
checks, except the raw-text checks that need no reader. Then the checks of :mod:`.static` and
:mod:`.vendor`, and with a model those of :mod:`.model` on the profile with its ``extends``
resolved.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import dialects, ir
from ..errors import Diagnostic, QuantspecError, Report
from ..source import Span
from . import static, suppress, vendor
from .locate import SourceText


@dataclass(frozen=True)
class LintOptions:
    dialect: str | None = None  # None: detect per file
    param_bw: int = 8  # AIMET QuantizationSimModel defaults (aimet.md B.1)
    act_bw: int = 8
    aimet_version: str = "2"
    allow_outside: bool = False  # let extends read files outside the linted file's directory
    skip_unknown: bool = False  # skip files no dialect recognises (pre-commit on *.json)
    ignore: tuple[str, ...] = ()  # code prefixes to drop, e.g. ("L020", "W14")


def lint_files(files: Iterable[str], model: str | None = None,
               options: LintOptions | None = None) -> list[Diagnostic]:
    """Every finding for ``files``, sorted by position. ``model``: an ONNX file (needs onnx)."""
    opts = options or LintOptions()
    graph = None
    if model is not None:
        from ..graph import Graph

        graph = Graph.load(model)
    out: list[Diagnostic] = []
    for path in files:
        out += lint_file(path, graph, opts)
    return finish(out, opts)


def lint_file(path: str, graph: Any = None, options: LintOptions | None = None
              ) -> list[Diagnostic]:
    """The findings for one file (unsorted, not deduplicated; see :func:`lint_files`)."""
    from ..fileio import read_text

    opts = options or LintOptions()
    try:
        text = read_text(path)
        dialect = opts.dialect or detect(text, path, opts.skip_unknown)
        if dialect is None:
            return []
    except QuantspecError as exc:
        return _located(exc.diagnostics, path)
    return _located(_lint_text(text, path, dialect, graph, opts), path)


def detect(text: str, path: str, skip_unknown: bool = False) -> str | None:
    """The dialect of ``text``; None when ``skip_unknown`` and only the fallback would apply."""
    name = dialects.detect(text, path)
    if skip_unknown and name == "qspec" and not path.lower().endswith(".qspec"):
        return None  # no vendor dialect recognised it; .qspec is only assumed by suffix
    return name


def _lint_text(text: str, path: str, dialect: str, graph: Any,
               opts: LintOptions) -> list[Diagnostic]:
    prof, out = _checks(text, path, dialect, graph, opts)
    if dialect in ("qspec", "amct"):  # the formats with comments
        rules = suppress.table(text, _extents(prof) if prof is not None else ())
        out = suppress.apply(out, path, rules)
    return out


def _extents(prof: ir.Profile) -> list[tuple[int, int]]:
    spans = [r.stmt or r.span for r in prof.rules] + [p.span for p in prof.patterns] + \
        [t.span for t in prof.ties]
    return [(s.line, s.end_line or s.line) for s in spans if s is not None and s.line]


def _checks(text: str, path: str, dialect: str, graph: Any, opts: LintOptions
            ) -> tuple[ir.Profile | None, list[Diagnostic]]:
    from ..lang.load import read_profile

    report = Report()
    out: list[Diagnostic] = []
    if dialect == "aimet":
        out += vendor.aimet(text, path)
    elif dialect == "vitis":
        out += vendor.json_file(text, path)
    try:
        if dialect == "amct":
            out += vendor.amct(text, path)
        prof = read_profile(text, path, dialect, report=report, **_reader_options(dialect, opts))
    except QuantspecError as exc:
        return None, out + report.diagnostics + exc.diagnostics
    out += report.diagnostics
    src = SourceText(text, path)
    if dialect == "qspec":
        out += static.unknown_op_types(prof, src)
        out += static.value_ranges(prof, src)
        out += static.odd_names(prof, src)
        out += static.empty_rules(prof, src)
        if graph is None:
            out += static.static_conflicts(prof, src)
    resolved = _resolve(prof, path, report, opts, out)
    if resolved is not None and graph is not None:
        from . import model

        try:
            out += model.findings(resolved, path, graph, dialect, src)
        except QuantspecError as exc:
            out += exc.diagnostics
    return prof, out


def _reader_options(dialect: str, opts: LintOptions) -> dict[str, Any]:
    if dialect == "aimet":
        return {"param_bw": opts.param_bw, "act_bw": opts.act_bw, "version": opts.aimet_version}
    return {}


def _resolve(prof: ir.Profile, path: str, report: Report, opts: LintOptions,
             out: list[Diagnostic]) -> ir.Profile | None:
    """``prof`` with its extends merged; resolution errors and the bases' warnings go to out."""
    if not prof.extends:
        return prof
    from ..lang.load import resolve

    before = len(report.diagnostics)
    try:
        merged = resolve(prof, Path(path).resolve().parent, opts.allow_outside,
                         (os.path.realpath(path),),
                         {"report": report, "param_bw": opts.param_bw, "act_bw": opts.act_bw})
    except QuantspecError as exc:
        out += report.diagnostics[before:]
        out += exc.diagnostics
        return None
    out += report.diagnostics[before:]
    return merged


def _located(diags: Sequence[Diagnostic], path: str) -> list[Diagnostic]:
    """Every finding has a file: those without a position get the linted file's."""
    return [d if d.span is not None else replace(d, span=Span(path)) for d in diags]


def finish(diags: Iterable[Diagnostic], opts: LintOptions) -> list[Diagnostic]:
    """Drop ignored codes and duplicates (a base profile linted twice), sort by position."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for d in diags:
        if any(d.code.startswith(p) for p in opts.ignore if p):
            continue
        key = (d.code, d.span, d.message)
        if key in seen:
            continue
        seen.add(key)
        out.append(d)
    return sorted(out, key=_order)


def _order(d: Diagnostic) -> tuple[Any, ...]:
    s = d.span
    return (s.file if s else "", s.line if s else 0, s.col if s else 0, d.code, d.message)
