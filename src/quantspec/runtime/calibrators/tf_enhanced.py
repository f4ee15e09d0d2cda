"""AIMET TF-enhanced calibration: SQNR grid search over the running PDF (aimet.md C.3).

This is a float32 emulation of ``TfEnhancedEncodingAnalyzer<float>``: every intermediate has the
C++ type (``DTYPE`` = float, ``double`` for costs and PDF edges) and every sum is accumulated in
the C++ loop order, because a one-ulp difference changes which candidate wins. The candidate
costs are vectorized: a masked term is ``+0.0``, which leaves a sequential sum unchanged, so a
row-wise ``cumsum`` over zero-padded terms reproduces each loop's sum bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import errors
from ..encoding import Encoding
from ..rounding import round_array
from .aimet_pdf import F32, F32_LOWEST, F32_MAX, AimetPdf
from .base import Calibrator, as_batch, channel_rows

GAMMA = F32(3.0)  # saturation cost weight (static constexpr DTYPE GAMMA = 3.0)
_DBL_MAX = np.finfo(np.float64).max


def _round_f32(v: np.ndarray | np.float32) -> np.ndarray:
    """std::round on floats (half away from zero), result as int64."""
    return round_array(np.asarray(v, dtype=F32), "half_away").astype(np.int64)


def _candidates_symmetric(mn: F32, mx: F32, steps: F32, unsigned: bool
                          ) -> tuple[np.ndarray, np.ndarray]:
    if mn == 0.0 and unsigned:
        delta_max = F32(mx / steps)
        offset = 0
    else:
        absmax = max(abs(mx), abs(mn))
        delta_max = F32(float(absmax) / (float(steps) / 2.0))
        offset = int(math.floor(F32(-steps / F32(2))))
    factors = []
    f = F32(1.0 / 100)
    while float(f) <= 1 + 1.0 / 100:  # float loop variable, double comparison and increment
        factors.append(f)
        f = F32(float(f) + 1.0 / 100)
    deltas = np.array(factors, dtype=F32) * delta_max
    return deltas, np.full(len(deltas), offset, dtype=np.int64)


def _candidates_asymmetric(mn: F32, mx: F32, steps: F32) -> tuple[np.ndarray, np.ndarray]:
    obs_delta = F32((float(mx) - float(mn)) / float(steps))
    obs_offset = int(_round_f32(F32(mn / obs_delta)))
    obs_min = max(F32(obs_delta * F32(obs_offset)), F32_LOWEST)
    obs_max = min(F32(obs_delta * F32(F32(obs_offset) + steps)), F32_MAX)
    f = np.arange(1, 18, dtype=F32) / F32(16)  # 1/16 .. 17/16, exact in float
    i = np.arange(21)
    deltas = np.repeat(f * obs_delta, 21)  # f outer, i inner: the C++ loop order
    offsets = np.tile(np.trunc(float(-steps) + float(steps) / 20.0 * i).astype(np.int64), 17)
    off32 = offsets.astype(F32)
    with np.errstate(over="ignore", invalid="ignore"):
        t_min = np.maximum(deltas * off32, F32_LOWEST)
        t_max = np.minimum(deltas * (off32 + steps), F32_MAX)
    keep = ~((t_min < obs_min) & (t_max > obs_max))
    t_min = np.maximum(obs_min, t_min)
    t_max = np.minimum(obs_max, t_max)
    keep &= t_min != t_max
    new_delta = ((t_max.astype(np.float64) - t_min.astype(np.float64)) / float(steps)).astype(F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        new_offset = _round_f32(t_min / new_delta)
    deltas = np.append(new_delta[keep], obs_delta)
    offsets = np.append(new_offset[keep], obs_offset)
    return deltas, offsets


def _costs(x_left: np.ndarray, pdf: np.ndarray, bits: int, deltas: np.ndarray,
           offsets: np.ndarray) -> np.ndarray:
    """``_quantAndSatCost`` for every candidate (rows), bins along columns."""
    size = len(x_left)
    half = (x_left[1] - x_left[0]) / 2
    centers = (x_left + half).astype(F32)
    c64 = centers.astype(np.float64)
    steps = F32(2.0**bits - 1)  # un-adjusted N even for strict grids (aimet.md C.3)
    off32 = offsets.astype(F32)
    with np.errstate(over="ignore", invalid="ignore"):
        min_val = deltas * off32
        max_val = deltas * (off32 + steps)
    start = F32(x_left[0])
    step = x_left[1] - x_left[0]

    def index(v: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            raw = np.floor((v - start).astype(np.float64) / step)
        idx: np.ndarray = np.clip(np.nan_to_num(raw, nan=0.0), 0, size - 1).astype(np.int64)
        return idx

    lo_i, hi_i = index(min_val), index(max_val)
    cols = np.arange(size)
    below = cols[None, :] < lo_i[:, None]
    above = cols[None, :] >= hi_i[:, None]
    inside = ~below & ~above
    sat_lo = np.where(below, pdf * (c64[None, :] - c64[lo_i][:, None]) ** 2, 0.0)
    sat_hi = np.where(above, pdf * (c64[None, :] - c64[hi_i][:, None]) ** 2, 0.0)
    inv = (F32(1) / deltas)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        deq = np.floor(centers[None, :] * inv + F32(0.5)) * deltas[:, None]
        err = (centers[None, :] - deq).astype(np.float64)
    quant = np.where(inside, pdf * (err * err), 0.0)
    bottom = np.cumsum(sat_lo, axis=1)[:, -1]
    top = np.cumsum(sat_hi, axis=1)[:, -1]
    qcost = np.cumsum(quant, axis=1)[:, -1]
    cost: np.ndarray = float(GAMMA) * (bottom + top) + qcost
    return cost


def sqnr_search(x_left: np.ndarray, pdf: np.ndarray, bits: int, symmetric: bool, strict: bool,
                unsigned: bool, observed: tuple[F32, F32]) -> tuple[float, float, float, float]:
    """AIMET's TF-enhanced candidate search; returns ``(delta, offset, min, max)``."""
    mn, mx = observed
    steps = F32(2.0**bits - 1)
    if symmetric:
        if strict:
            steps = F32(steps - F32(1))
        deltas, offsets = _candidates_symmetric(mn, mx, steps, unsigned)
    else:
        deltas, offsets = _candidates_asymmetric(mn, mx, steps)
    costs = _costs(x_left, pdf, bits, deltas, offsets)
    costs = np.where(np.isnan(costs), np.inf, costs)
    best = int(np.argmin(costs))  # first strict minimum, as `if (cost < bestCost)`
    if not costs[best] < _DBL_MAX:
        delta, offset = F32(-1), -1
    else:
        delta, offset = deltas[best], int(offsets[best])
    with np.errstate(over="ignore"):
        lo = max(F32(delta * F32(offset)), F32_LOWEST)
        hi = min(F32(delta * F32(F32(offset) + steps)), F32_MAX)
    return float(delta), float(offset), float(lo), float(hi)


def zero_data_encoding(bits: int, steps: float) -> tuple[float, float, float, float]:
    """Encoding AIMET returns when only all-zero batches were seen: [-1, 1] on the grid."""
    n = int(steps)
    delta = 2.0 / n
    offset = math.floor(-1.0 / delta)
    lo = offset * delta
    return delta, float(offset), lo, lo + n * delta


class TfEnhancedCalibrator(Calibrator):
    """AIMET ``post_training_tf_enhanced`` (aimet.md C.3), bit-exact with aimet-onnx 2.x.

    Each :meth:`update` call is one batch: AIMET averages per-batch PDFs, so splitting the same
    data into different batches changes the result. Memory is ``channels x 1536`` doubles.

    ``merge`` averages the two running PDFs weighted by their batch counts (what a single
    calibrator would hold, up to float rounding) when both share a grid; create shards with
    :meth:`empty_like` after the first batch so they share it. Otherwise the other PDF is
    re-binned onto this grid by overlap.

    Args:
        axis: channel axis (one PDF per channel), ``None`` per tensor.
        version: ``"2.x"`` (1536 buckets) or ``"1.x"`` (512 buckets).
        **grid: default grid flags for :meth:`encoding`.
    """

    name = "tf_enhanced"

    def __init__(self, axis: int | None = None, version: str = "2.x", **grid: Any) -> None:
        self.axis = axis
        self.version = version
        self.stats: AimetPdf | None = None
        self._grid_source: AimetPdf | None = None
        super().__init__(**grid)
        AimetPdf(1, version)  # validates the version early

    def config(self) -> dict[str, Any]:
        return {"axis": self.axis, "version": self.version}

    def update(self, batch: Any) -> TfEnhancedCalibrator:
        rows = channel_rows(as_batch(batch), self.axis)
        if self.stats is None:
            self.stats = AimetPdf(rows.shape[0], self.version)
            if self._grid_source is not None:
                _adopt_grid(self.stats, self._grid_source)
        self.stats.update(rows)
        self.batches += 1
        return self

    def empty_like(self) -> TfEnhancedCalibrator:
        """A fresh calibrator sharing this one's histogram grid (exact merges for shards)."""
        new = type(self)(**self.config(), **self.grid)
        new._grid_source = self.stats
        return new

    def merge(self, other: Calibrator) -> TfEnhancedCalibrator:
        self._check_merge(other)
        assert isinstance(other, TfEnhancedCalibrator)
        if other.stats is not None:
            if self.stats is None:
                self.stats = AimetPdf(other.stats.channels, self.version)
            self.stats.merge(other.stats)
        self.batches += other.batches
        return self

    def encoding(self, bits: int | None = None, **grid: Any) -> Encoding:
        g = self._grid(bits, grid)
        if self.stats is None or not self.stats.stats_seen.any():
            raise errors.no_data(type(self).__name__)
        sym, strict, uns = bool(g["symmetric"]), bool(g["strict"]), bool(g["unsigned"])
        if sym and strict and uns:
            raise errors.error(errors.BAD_OPTIONS,
                               "strict and unsigned symmetric grids are mutually exclusive")
        rows = []
        for c in range(self.stats.channels):
            if not self.stats.initialized[c]:
                rows.append(zero_data_encoding(g["bits"], 2.0 ** g["bits"] - 1))
                continue
            rows.append(sqnr_search(
                self.stats.x_left[c], self.stats.pdf[c], g["bits"], sym, strict, uns,
                self.stats.original_range(c),
            ))
        return _encoding(rows, g, self.axis)

    def state_arrays(self) -> list[np.ndarray]:
        return self.stats.state_arrays() if self.stats is not None else []


def _adopt_grid(stats: AimetPdf, source: AimetPdf) -> None:
    if source.channels != stats.channels:
        return
    stats.x_left[:] = source.x_left
    stats.initialized[:] = source.initialized


def _encoding(rows: list[tuple[float, float, float, float]], g: dict[str, Any],
              axis: int | None) -> Encoding:
    arr = np.array(rows, dtype=np.float64)
    sym = bool(g["symmetric"])
    return Encoding(
        int(g["bits"]), arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], symmetric=sym,
        strict=bool(g["strict"]) and sym, unsigned=bool(g["unsigned"]) and sym,
        signed=sym if g["signed"] is None else bool(g["signed"]), axis=axis,
    )
