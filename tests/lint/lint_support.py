"""Shared pieces of the lint tests: the fixture directory and a small model on disk."""

from __future__ import annotations

import io
from pathlib import Path

from qs_paths import FIXTURES

from quantspec.cli import main

LINT_FIXTURES = FIXTURES / "lint"


def write_model(directory: Path) -> Path:
    """tests/models.py conv_relu_add (conv1 -> relu1 -> conv2 -> add -> sigmoid) as a file."""
    import onnx
    from models import conv_relu_add

    path = directory / "conv_relu_add.onnx"
    onnx.save(conv_relu_add(), str(path))
    return path


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(list(argv), out, err)
    return rc, out.getvalue(), err.getvalue()
