"""Dialects: one module per vendor format, each reading into and writing from :mod:`quantspec.ir`.

A dialect module exposes:

* ``NAME`` (str) and ``SUFFIXES`` (tuple of file suffixes it usually has),
* ``detect(text: str) -> bool``: True when ``text`` looks like this format (content sniffing),
* ``read(text: str, file: str, **options) -> ir.Profile``: raises ``QuantspecError`` with the
  position of the first problem,
* ``write(profile: ir.Profile, report: errors.Report, **options) -> str``: anything the format
  cannot hold is reported once through ``report.warn(code, message, span)`` with the span of the
  rule that was dropped or approximated (W5xx codes).

Adding a vendor: write the module, add its name to ``DIALECTS`` below, add a test file.
Modules are imported lazily so ``quantspec lint`` starts fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import QuantspecError, did_you_mean

# name -> module (relative to this package). Order matters for content detection.
DIALECTS: dict[str, str] = {
    "qspec": ".qspec",
    "encodings": ".encodings",
    "aimet": ".aimet",
    "vitis": ".vitis",
    "amct": ".amct",
}


def get(name: str) -> ModuleType:
    if name not in DIALECTS:
        hint = did_you_mean(name, DIALECTS)
        raise QuantspecError("E120", f"unknown dialect '{name}'", hint=hint or
                             f"choose one of: {', '.join(DIALECTS)}")
    return importlib.import_module(DIALECTS[name], __name__)


def detect(text: str, file: str = "") -> str:
    """Guess the dialect of ``text`` (suffix first, then content)."""
    low = file.lower()
    if low.endswith(".qspec"):
        return "qspec"
    for name in ("encodings", "aimet", "vitis", "amct"):
        try:
            mod = get(name)
        except ImportError:
            continue
        if mod.detect(text):
            return name
    return "qspec"
