"""The quantspec language itself, as a dialect (read = parse, write = canonical format)."""

from __future__ import annotations

from typing import Any

from .. import ir
from ..errors import Report
from ..lang.format import format_profile
from ..lang.parse import parse

NAME = "qspec"
SUFFIXES = (".qspec",)


def detect(text: str) -> bool:
    stripped = text.lstrip()
    return not stripped.startswith(("{", "["))


def read(text: str, file: str = "<qspec>", **_: Any) -> ir.Profile:
    return parse(text, file)


def write(profile: ir.Profile, report: Report | None = None, **_: Any) -> str:
    """Every IR construct has a .qspec form; derived rules are written with a comment."""
    return format_profile(profile)
