"""Encodings straight from a tensor (min-max statistics, any scheme)."""

from __future__ import annotations

from typing import Any

from . import errors
from .calibrators.minmax import MinMaxCalibrator
from .encoding import Encoding


def encoding_from_data(
    x: Any,
    bits: int = 8,
    *,
    scheme: str = "aimet2",
    axis: int | None = None,
    symmetric: bool = False,
    strict: bool = False,
    unsigned: bool = False,
    signed: bool | None = None,
    zero_point_shift: float = 0.0,
) -> Encoding:
    """Encoding of ``x`` from its float32 min/max (per tensor, or per channel along ``axis``).

    The same as one :class:`~quantspec.runtime.calibrators.MinMaxCalibrator` batch followed by
    :func:`~quantspec.runtime.schemes.encoding_from_range`; NaN values are ignored.

    Example (spec 004, "Quantization Example"):
        >>> e = encoding_from_data([-1.8, -1.0, 0.0, 0.5], 8, scheme="qnn_tf")
        >>> int(e.zero_point[0]), round(float(e.min[0]), 6), round(float(e.max[0]), 6)
        (200, -1.803922, 0.496078)
    """
    cal = MinMaxCalibrator(axis=axis, scheme=scheme)
    cal.update(x)
    if cal.batches == 0:
        raise errors.error(errors.BAD_DATA, "cannot compute an encoding from an empty array")
    return cal.encoding(bits, symmetric=symmetric, strict=strict, unsigned=unsigned,
                        signed=signed, zero_point_shift=zero_point_shift)
