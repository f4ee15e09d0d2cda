"""Lint findings as SARIF 2.1.0, the format GitHub code scanning uploads.

Each finding is a ``result`` with ``ruleId``, ``level`` (error / warning / note), ``message`` and
one ``physicalLocation`` (``artifactLocation.uri`` relative to the working directory when the file
is under it, ``region.startLine`` / ``startColumn`` 1-based); positions of the other rule in a
conflict are ``relatedLocations``. ``tool.driver.rules`` describes every L code plus the reader
and compiler codes that occur.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import Diagnostic
from ..source import Span
from .codes import CODES, summary

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def to_sarif(diags: Sequence[Diagnostic], version: str, root: str | None = None
             ) -> dict[str, Any]:
    base = Path(root or os.getcwd()).resolve()
    ids = list(CODES) + sorted({d.code for d in diags} - set(CODES))
    rules = [_rule(code) for code in ids]
    index = {code: i for i, code in enumerate(ids)}
    results = [_result(d, index, base) for d in diags]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "quantspec",
                "version": version,
                "rules": rules,
            }},
            "originalUriBaseIds": {"SRCROOT": {"uri": base.as_uri() + "/"}},
            "results": results,
        }],
    }


def _rule(code: str) -> dict[str, Any]:
    c = CODES.get(code)
    level = LEVELS[c.severity] if c else ("warning" if code.startswith("W") else "error")
    return {
        "id": code,
        "name": c.name if c else code,
        "shortDescription": {"text": summary(code)},
        "help": {"text": f"see docs/lint.md ({code})"},
        "defaultConfiguration": {"level": level},
    }


def _result(d: Diagnostic, index: dict[str, int], base: Path) -> dict[str, Any]:
    text = d.message
    if d.span is not None and d.span.path and not d.span.line:
        text += f" (at {d.span.path})"
    if d.hint:
        text += f"\nhint: {d.hint}"
    out: dict[str, Any] = {
        "ruleId": d.code,
        "ruleIndex": index[d.code],
        "level": LEVELS.get(d.severity, "error"),
        "message": {"text": text},
        "locations": [{"physicalLocation": _location(d.span, base)}],
    }
    if d.related:
        out["relatedLocations"] = [
            {"id": i + 1, "physicalLocation": _location(span, base), "message": {"text": note}}
            for i, (span, note) in enumerate(d.related)]
    return out


def _location(span: Span | None, base: Path) -> dict[str, Any]:
    file = span.file if span is not None else ""
    region: dict[str, Any] = {"startLine": max(span.line, 1) if span else 1,
                              "startColumn": max(span.col, 1) if span and span.line else 1}
    if span is not None and span.end_line >= span.line > 0 and span.end_col:
        if (span.end_line, span.end_col) > (span.line, span.col):
            region["endLine"] = span.end_line
            region["endColumn"] = span.end_col
    return {"artifactLocation": _artifact(file, base), "region": region}


def _artifact(file: str, base: Path) -> dict[str, Any]:
    p = Path(file).resolve() if file else base
    try:
        rel = p.relative_to(base)
    except ValueError:
        return {"uri": p.as_uri()}
    return {"uri": rel.as_posix(), "uriBaseId": "SRCROOT"}
