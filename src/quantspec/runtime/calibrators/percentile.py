"""AIMET percentile calibration on the TF-enhanced PDF (aimet.md C.4)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import errors
from ..encoding import Encoding
from ..schemes import encoding_from_range
from .aimet_pdf import F32, AimetPdf
from .tf_enhanced import TfEnhancedCalibrator, _encoding, zero_data_encoding


def percentile_range(pdf: AimetPdf, c: int, percentile: float) -> tuple[F32, F32]:
    """``_computePercentileRange`` in float/double as the C++ does (aimet.md C.4)."""
    mn, mx = pdf.original_range(c)
    p = F32(percentile)
    if p == F32(100.0):
        return mn, mx
    x_left, dens = pdf.x_left[c], pdf.pdf[c]
    width = F32(x_left[1] - x_left[0])
    p_min = F32(x_left[0])
    p_max = F32(x_left[-1] + float(width))
    cdf = np.cumsum(dens)  # sequential, like the C++ loop
    left = float(F32(1) - p / F32(100))
    hit = np.flatnonzero(cdf >= left)
    if hit.size:
        p_min = F32(x_left[hit[0]])
    right = float(p / F32(100))
    ok = np.flatnonzero((cdf < right) & (x_left < float(mx)))
    if ok.size:
        p_max = F32(x_left[ok[-1]] + float(width))
    if p_min == p_max:
        p_max = F32(p_max + width)
    return p_min, p_max


class PercentileCalibrator(TfEnhancedCalibrator):
    """AIMET ``post_training_percentile`` (aimet.md C.4), bit-exact with aimet-onnx 2.x.

    Same PDF statistics (and merge rules) as :class:`TfEnhancedCalibrator`; the range is the
    percentile of the running PDF (left bucket edge for the minimum, right edge for the maximum),
    then AIMET's min-max math (aimet.md C.1). ``percentile=100`` is AIMET's default and gives
    the histogram's left-edge min/max.

    Args:
        percentile: in ``(0, 100]``; ``99.99`` keeps the central 99.98 % of the distribution.
        axis, version, **grid: as :class:`TfEnhancedCalibrator`.
    """

    name = "percentile"

    def __init__(self, percentile: float = 100.0, axis: int | None = None, version: str = "2.x",
                 **grid: Any) -> None:
        if not 0 < float(percentile) <= 100:
            raise errors.bad_parameter("percentile", percentile, "a value in (0, 100]")
        self.percentile = float(percentile)
        super().__init__(axis=axis, version=version, **grid)

    def config(self) -> dict[str, Any]:
        return {"percentile": self.percentile, **super().config()}

    def encoding(self, bits: int | None = None, **grid: Any) -> Encoding:
        g = self._grid(bits, grid)
        if self.stats is None or not self.stats.stats_seen.any():
            raise errors.no_data(type(self).__name__)
        sym, strict = bool(g["symmetric"]), bool(g["strict"])
        lows, highs, zero_rows = [], [], {}
        for c in range(self.stats.channels):
            if not self.stats.initialized[c]:
                steps = 2.0 ** g["bits"] - 1 - (1 if sym and strict else 0)
                zero_rows[c] = zero_data_encoding(g["bits"], steps)
                lows.append(0.0)
                highs.append(0.0)
                continue
            lo, hi = percentile_range(self.stats, c, self.percentile)
            lows.append(float(min(lo, F32(0))))
            highs.append(float(max(hi, F32(0))))
        enc = encoding_from_range(np.array(lows), np.array(highs), scheme="aimet2",
                                  axis=self.axis, **g)
        if not zero_rows:
            return enc
        rows = [zero_rows.get(c, (enc.scale[c], enc.offset[c], enc.min[c], enc.max[c]))
                for c in range(self.stats.channels)]
        return _encoding(rows, g, self.axis)
