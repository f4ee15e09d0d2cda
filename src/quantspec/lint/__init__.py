"""Lint: read files of any dialect and report problems as diagnostics with stable codes.

``lint_files(files, model=None, options=None) -> list[Diagnostic]``. Codes are listed in
:mod:`.codes` and documented in docs/lint.md. Heavy modules (onnx, numpy) are imported only
when a model is given.
"""

from __future__ import annotations

from .codes import CODES, Code
from .run import LintOptions, lint_file, lint_files

__all__ = ["CODES", "Code", "LintOptions", "lint_file", "lint_files"]
