"""Vitis AI (vai_q_pytorch) calibration: per-batch methods reduced by ``calib_statistic_method``.

With Vitis' default ``nndct_calibration_local=True`` every batch is calibrated on its own and
the per-batch results are reduced by ``calib_statistic_method`` (vitis_amct.md 1.12):

* ``diffs`` (power of two): ``step = max(min/(-2^(b-1)-0.5), max/(2^(b-1)-0.5))``,
  ``fp0 = floor(log2(1/step))`` (18 when step ~ 0), then ``fp0 .. fp0+scope-1`` are tried and the
  one with the smallest ``sum((x - Q(x))^2)`` wins (first on ties); ``scope`` is 5 (1 for
  ``maxmin``). ``Q`` uses the signed range ``[-2^(b-1), 2^(b-1)-1]`` and the tensor's rounding.
  Fix positions are capped at 12 for <= 8 bits, 15 above (``nndct_max_fix_position``).
* ``maxmin`` (float scales): symmetric ``amax/qmax``; asymmetric ``(max-min)/(qmax-qmin)`` with
  ``zp = round(-min/scale)``.
* ``percentile`` / ``mse`` / ``entropy`` (float, symmetric): a 2048-bin ``torch.histc`` of
  ``|x|`` over ``[0, amax]`` per batch; percentile takes ``edges[searchsorted(cdf, p/100)]``;
  mse tries bin centres from bin 1536 every 16 bins; entropy is TensorRT's KL search from bin
  1536 every 16 bins.

Memory: one small value -> count table per statistic (see
:mod:`~quantspec.runtime.calibrators.statistics`), never the samples.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from .. import errors
from ..encoding import Encoding, num_steps, storage_qmin
from ..quantize import fake_quantize
from ..rounding import canonical_mode, round_array
from ..schemes import FLT_EPSILON, Options, pof2_grid
from .base import Calibrator, as_batch, channel_rows
from .entropy import kl_threshold_bin
from .histogram import torch_histc
from .statistics import STATISTICS, BatchStatistic

VITIS_METHODS = ("diffs", "maxmin", "percentile", "mse", "entropy")
VITIS_ROUND_MODES = ("half_even", "half_up", "half_down", "std_round")
F32 = np.float32


def max_fix_pos(bits: int) -> int:
    return 12 if bits <= 8 else 15


def diffs_fix_pos(x: np.ndarray, bits: int, scope: int, rounding: str) -> int:
    """Vitis ``diffs_fix_pos`` on one tensor (float32, as the torch implementation)."""
    abs_max = 1 << (bits - 1)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return max_fix_pos(bits)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = max(F32(x.min() / F32(-abs_max - 0.5)), F32(x.max() / F32(abs_max - 0.5)))
        fp0 = int(np.floor(np.log2(F32(1.0) / step))) if step > sys.float_info.min else 18
    best, best_diff = fp0, math.inf
    if scope > 1:
        for fp in range(fp0, fp0 + scope):
            enc = pof2_grid(np.array([fp], dtype=np.float64), Options(bits, True, False, False, 0))
            grid = Encoding(bits, enc.scale, enc.offset, enc.min, enc.max, symmetric=True,
                            signed=True, scale_type="power_of_two")
            q = fake_quantize(x, grid, rounding=rounding, semantics="vitis")
            np.subtract(x, q, out=q)
            with np.errstate(over="ignore"):  # float32 sums overflow to inf, as in the vendor
                diff = float(np.sum(q * q, dtype=F32))
            if diff < best_diff:
                best, best_diff = fp, diff
    return min(best, max_fix_pos(bits))


class _FloatBatch:
    """Per-batch float-scale calibration of one tensor row (vitis_amct.md 1.12)."""

    def __init__(self, cal: VitisCalibrator) -> None:
        self.c = cal
        b = cal.bits
        self.signed = cal.signed
        if cal.symmetric and self.signed:
            self.qmin = -(1 << (b - 1)) + int(cal.narrow)
            self.qmax = (1 << (b - 1)) - 1
        else:
            self.qmin, self.qmax = 0, (1 << b) - 1

    def __call__(self, x: np.ndarray) -> tuple[float, float, float]:
        c = self.c
        x = x[~np.isnan(x)]
        mn, mx = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if c.symmetric and not self.signed and mn < 0:
            raise errors.error(
                errors.NEGATIVE_UNSIGNED, "negative values encountered in unsigned quantization",
                "use signed symmetric quantization for data with negative values",
            )
        if c.method == "maxmin":
            if c.symmetric:
                amax = max(abs(mx), abs(mn)) if self.signed else mx
                return _scale(amax / self.qmax), 0.0, amax
            if mx <= mn:  # constant batch: Vitis divides by a zero scale; include 0 instead
                mn, mx = min(mn, 0.0), max(mx, 0.0)
            scale = _scale((mx - mn) / (self.qmax - self.qmin))
            return scale, float(round(-mn / scale)), mx
        amax = self._histogram_amax(np.abs(x) if mn < 0 else x, max(abs(mx), abs(mn)))
        return _scale(amax / self.qmax), 0.0, amax

    def _histogram_amax(self, t: np.ndarray, tmax: float) -> float:
        c = self.c
        hist = torch_histc(t, c.hist_bins, 0.0, tmax).astype(np.float64)
        edges = np.linspace(0, tmax, c.hist_bins + 1, dtype=F32)
        if c.method == "percentile":
            cdf = np.cumsum(hist / hist.sum())
            idx = min(int(np.searchsorted(cdf, c.percentage / 100)), len(edges) - 1)
            return float(edges[idx])
        if c.method == "entropy":
            i = kl_threshold_bin(hist, c.bits, not self.signed, c.start_bin, c.stride)
            return float(edges[i])
        centers = (edges[1:] + edges[:-1]) / F32(2)
        counts = hist.astype(F32)
        best, best_mse = float(centers[-1]), math.inf
        for i in range(c.start_bin, len(centers), c.stride):
            amax = centers[i]
            q = self._fake_quant(centers, amax)
            mse = float(np.mean((q - centers) ** 2 * counts))
            if mse < best_mse:
                best, best_mse = float(amax), mse
        return best

    def _fake_quant(self, v: np.ndarray, amax: np.float32) -> np.ndarray:
        scale = F32(amax / F32(self.qmax))
        if scale == 0:
            return np.zeros_like(v)
        inv = F32(1.0 / float(scale))
        q = round_array((v * inv).astype(F32), self.c.rounding)
        out: np.ndarray = np.clip(q, self.qmin, self.qmax) * (F32(1) / inv)
        return out


def _scale(s: float) -> float:
    # An all-zero batch gives scale 0 in Vitis (a division by zero later); use AIMET's minimum
    # scale instead so the grid stays valid.
    return s if s > 0 else FLT_EPSILON


class VitisCalibrator(Calibrator):
    """Vitis AI calibration with per-batch results and ``calib_statistic_method``.

    Args:
        method: ``diffs`` | ``maxmin`` | ``percentile`` | ``mse`` | ``entropy``.
        calib_statistic_method: ``modal`` | ``max`` | ``mean`` | ``median``.
        scale_type: ``power_of_two`` (``diffs``/``maxmin`` only) or ``float``.
        round_mode: ``half_even`` | ``half_up`` | ``half_down`` | ``std_round``.
        percentage: percentile for ``method="percentile"``.
        axis: channel axis (``maxmin`` / ``diffs`` only, as in Vitis).
        start_bin, stride, hist_bins: histogram search settings (Vitis defaults).
        bits, symmetric, strict (narrow range), unsigned (Vitis ``signed: false``): the grid the
            per-batch results are computed for.
    """

    name = "vitis"

    def __init__(self, method: str = "diffs", calib_statistic_method: str = "modal",
                 scale_type: str = "power_of_two", round_mode: str = "half_even",
                 percentage: float = 99.99, axis: int | None = None, start_bin: int = 1536,
                 stride: int = 16, hist_bins: int = 2048, **grid: Any) -> None:
        if method not in VITIS_METHODS:
            raise errors.unknown_name("Vitis method", method, VITIS_METHODS)
        if calib_statistic_method not in STATISTICS:
            raise errors.unknown_name("calib_statistic_method", calib_statistic_method, STATISTICS)
        if round_mode not in VITIS_ROUND_MODES:
            raise errors.unknown_name("Vitis round_mode", round_mode, VITIS_ROUND_MODES)
        if scale_type not in ("power_of_two", "float"):
            raise errors.unknown_name("scale_type", scale_type, ("power_of_two", "float"))
        if scale_type == "power_of_two" and method not in ("diffs", "maxmin"):
            raise errors.error(errors.BAD_OPTIONS,
                               f"method {method!r} computes float scales",
                               "use scale_type='float', or method 'diffs'/'maxmin'")
        if scale_type == "float" and method == "diffs":
            raise errors.error(errors.BAD_OPTIONS, "method 'diffs' searches power-of-two scales",
                               "use scale_type='power_of_two'")
        if axis is not None and method not in ("diffs", "maxmin"):
            raise errors.error(errors.BAD_OPTIONS, "Vitis per-channel calibration is maxmin/diffs",
                               "drop axis= or use method='maxmin'")
        if not 0 < float(percentage) <= 100:
            raise errors.bad_parameter("percentage", percentage, "a value in (0, 100]")
        self.method, self.statistic, self.scale_type = method, calib_statistic_method, scale_type
        self.round_mode, self.percentage, self.axis = round_mode, float(percentage), axis
        self.start_bin, self.stride, self.hist_bins = start_bin, stride, hist_bins
        defaults = {"symmetric": True}
        super().__init__(**{**defaults, **grid})
        self.bits = int(self.grid["bits"])
        self.symmetric = bool(self.grid["symmetric"])
        self.narrow = bool(self.grid["strict"])
        self.signed = not bool(self.grid["unsigned"])
        self.rounding = canonical_mode(round_mode)
        if scale_type == "power_of_two" and not self.symmetric:
            raise errors.error(errors.BAD_OPTIONS, "power-of-two scales are symmetric in Vitis AI",
                               "pass symmetric=True")
        self.scales: list[BatchStatistic] = []
        self.zero_points: list[BatchStatistic] = []

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "calib_statistic_method": self.statistic,
                "scale_type": self.scale_type, "round_mode": self.round_mode,
                "percentage": self.percentage, "axis": self.axis, "start_bin": self.start_bin,
                "stride": self.stride, "hist_bins": self.hist_bins}

    def update(self, batch: Any) -> VitisCalibrator:
        x = as_batch(batch)
        if x.size == 0:
            return self
        if np.isinf(x).any():
            raise errors.error(errors.BAD_DATA, "Vitis calibration data contains inf",
                               "Vitis AI derives scales from max|x|; inf makes them meaningless")
        rows = channel_rows(x, self.axis)
        if not self.scales:
            self.scales = [BatchStatistic() for _ in range(rows.shape[0])]
            self.zero_points = [BatchStatistic() for _ in range(rows.shape[0])]
        if rows.shape[0] != len(self.scales):
            raise errors.error(errors.BAD_AXIS,
                               f"batch has {rows.shape[0]} channels, expected {len(self.scales)}")
        per_batch = _FloatBatch(self) if self.scale_type == "float" else None
        for c in range(rows.shape[0]):
            if per_batch is None:
                scope = 5 if self.method == "diffs" else 1
                fp = diffs_fix_pos(rows[c], self.bits, scope, self.rounding)
                self.scales[c].add(2.0 ** -fp)
                self.zero_points[c].add(0.0)
            else:
                scale, zp, _ = per_batch(rows[c])
                self.scales[c].add(scale)
                self.zero_points[c].add(zp)
        self.batches += 1
        return self

    def merge(self, other: Calibrator) -> VitisCalibrator:
        self._check_merge(other)
        assert isinstance(other, VitisCalibrator)
        if other.grid != self.grid:
            raise errors.error(errors.MERGE_MISMATCH, "Vitis calibrators for different grids")
        if not self.scales:
            self.scales = [BatchStatistic() for _ in other.scales]
            self.zero_points = [BatchStatistic() for _ in other.scales]
        for mine, theirs in zip(self.scales + self.zero_points, other.scales + other.zero_points,
                                 strict=True):
            mine.merge(theirs)
        self.batches += other.batches
        return self

    def encoding(self, bits: int | None = None, **grid: Any) -> Encoding:
        g = self._grid(bits, grid)
        if any(g[k] != self.grid[k] for k in ("bits", "symmetric", "strict", "unsigned")):
            raise errors.error(
                errors.BAD_OPTIONS, "Vitis per-batch results were computed for another grid",
                "create the VitisCalibrator with the bits/symmetric/strict/unsigned you need",
            )
        if not self.scales:
            raise errors.no_data(type(self).__name__)
        scales = np.array([s.reduce(self.statistic) for s in self.scales])
        zps = np.array([z.reduce("modal") for z in self.zero_points])  # zp is always the mode
        axis = self.axis
        if self.scale_type == "power_of_two":
            # The statistic runs over scales (Vitis act_scale_stats); a mean or an even median
            # can fall between powers of two: snap to the nearest fix position.
            fp = round_array(-np.log2(scales), "half_even")
            fp = np.minimum(fp, max_fix_pos(self.bits))
            p = pof2_grid(fp, Options(self.bits, True, self.narrow, False, 0))
            return Encoding(self.bits, p.scale, p.offset, p.min, p.max, symmetric=True,
                            strict=self.narrow, signed=True, axis=axis, scale_type="power_of_two")
        sym_signed = self.symmetric and self.signed
        n = num_steps(self.bits, self.symmetric, self.narrow and sym_signed)
        qmin = storage_qmin(self.bits, sym_signed, self.narrow and sym_signed)
        offset = qmin - zps
        return Encoding(self.bits, scales, offset, scales * offset, scales * (offset + n),
                        symmetric=self.symmetric, strict=self.narrow and sym_signed,
                        unsigned=self.symmetric and not self.signed, signed=sym_signed,
                        axis=axis)

    def state_nbytes(self) -> int:
        return sum(s.nbytes for s in self.scales + self.zero_points)
