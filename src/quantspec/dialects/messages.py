"""How writer and reader messages show a setting value (shared by the vendor dialects)."""

from __future__ import annotations

from typing import Any

from ..ir import Calibration


def show_value(value: Any) -> str:
    """``true``/``false`` for booleans, the method for a calibration, strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Calibration):
        return value.method
    return repr(value) if isinstance(value, str) else str(value)
