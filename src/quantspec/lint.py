"""Lint: read every file with its dialect and report problems as diagnostics.

Heavy modules (numpy, onnx, onnxruntime) are imported only when ``--model`` needs them.
"""

from __future__ import annotations

from .errors import Diagnostic, QuantspecError


def lint_files(files: list[str], model: str | None = None) -> list[Diagnostic]:
    from .lang.load import load

    out: list[Diagnostic] = []
    graph = None
    for path in files:
        try:
            prof = load(path)
        except QuantspecError as exc:
            out += exc.diagnostics
            continue
        if model is not None:
            from .compiler import compile_profile
            from .graph import Graph

            try:
                graph = graph or Graph.load(model)
                compile_profile(prof, graph)
            except QuantspecError as exc:
                out += exc.diagnostics
    return out
