"""Huawei AMCT activation calibration: IFMR and HFMG (vitis_amct.md 2.5).

Both produce AMCT's int8 grid ``x_q = round(x/scale) + offset_amct`` (signed storage; the AIMET
offset is ``-2^(b-1) - offset_amct``) through :func:`~quantspec.runtime.schemes.amct`-style
scale/offset rules.

**IFMR** searches clipping maxima ``max0 * arange(start, end, step)`` (``max0``/``min0`` = the
``max_percentile``/``min_percentile`` order statistics, zero forced into the range) and keeps the
candidate with the least ``MSE(round(clamp(x)/s)*s, x)``. AMCT concatenates all calibration
batches and runs once; this calibrator streams instead: order statistics and MSE are evaluated
on an exactly mergeable power-of-two histogram (bin centres, within-bin interpolation for the
order statistics, exact extremes kept). :func:`ifmr_reference` is the exact, non-streaming
algorithm for small data.

**HFMG** keeps AMCT's own ``num_of_bins`` histogram: every batch is histogrammed over the union
of the ranges seen so far and the old counts are redistributed onto the new bins assuming a
uniform density inside each old bin (``hfmg_merge``). The range search shrinks the histogram
from both ends in steps of ``ceil(total/100000)`` counts down to a quarter of the bins and keeps
the range with the least L2 loss of re-binning into ``2^bits`` bins.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import errors
from ..encoding import Encoding
from ..schemes import FLT_EPSILON, encoding_from_range
from .base import Calibrator, as_batch
from .histogram import Pow2Histogram, torch_histc

F32 = np.float32
STEP_DIVISOR = 100000  # hfmg: search step = ceil(total / STEP_DIVISOR) counts
MIN_BIN_RATIO = 4  # hfmg: stop shrinking at nbins / 4
HFMG_POW = 3  # hfmg: L2 loss integrates (x - centre)^2 -> cubes


# -- IFMR ---------------------------------------------------------------------------------------
def _amct_encoding(scale: float, offset_amct: float, bits: int, symmetric: bool) -> Encoding:
    half = 1 << (bits - 1)
    return Encoding.from_scale_offset(
        [scale], [-half - offset_amct], bits, symmetric=symmetric, signed=True
    )


def _ifmr_candidates(max0: float, min0: float, bits: int, symmetric: bool, start: float,
                     end: float, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clip max, clip min, scale) per candidate, float32 like the torch code."""
    bound_negative = abs(max0) < abs(min0)
    if symmetric:
        max0 = max(abs(max0), abs(min0))
    n = max(0, math.ceil((end - start) / step))
    ratios = (start + np.arange(n) * step).astype(F32)
    cmax = ratios * F32(max0)
    if symmetric:
        limit = (1 << (bits - 1)) if bound_negative else (1 << (bits - 1)) - 1
        scales = cmax / F32(limit)
        cmin = -cmax
    else:
        scales = (cmax - F32(min0)) / F32((1 << bits) - 1)
        cmin = np.full_like(cmax, F32(min0))
    scales = np.where(scales < F32(FLT_EPSILON), F32(1.0), scales)  # process_scale
    return cmax, cmin, scales


def _ifmr_pick(losses: np.ndarray, scales: np.ndarray, min0: float, bits: int,
               symmetric: bool) -> Encoding:
    best = int(np.argmin(losses))  # torch.argmin: first minimum
    scale = float(scales[best])
    offset = 0.0 if symmetric else float(-np.rint(F32(min0) / F32(scale)) - (1 << (bits - 1)))
    return _amct_encoding(scale, offset, bits, symmetric)


def _order_stat_index(n: int, percentile: float) -> int:
    """AMCT's k for the k-th largest: ``1`` when percentile ~ 1, else ``n - int(p*n)``."""
    return 1 if (1.0 - percentile) < FLT_EPSILON else n - int(percentile * n)


def ifmr_reference(data: Any, bits: int = 8, symmetric: bool = False,
                   max_percentile: float = 0.999999, min_percentile: float = 0.999999,
                   search_range_start: float = 0.7, search_range_end: float = 1.3,
                   search_step: float = 0.01) -> Encoding:
    """The exact AMCT IFMR on all the data at once (keeps everything in memory)."""
    x = np.asarray(data, dtype=F32).reshape(-1)
    n = x.size
    if n == 0:
        raise errors.no_data("IFMR")
    srt = np.sort(x)
    k_max = max(1, min(n, _order_stat_index(n, max_percentile)))
    k_min = max(1, min(n, _order_stat_index(n, min_percentile)))
    max0 = max(0.0, float(srt[n - k_max]))
    min0 = min(0.0, float(srt[k_min - 1]))
    cmax, cmin, scales = _ifmr_candidates(max0, min0, bits, symmetric, search_range_start,
                                          search_range_end, search_step)
    losses = np.empty(len(cmax))
    for i in range(len(cmax)):
        q = np.rint(np.clip(x, cmin[i], cmax[i]) / scales[i]) * scales[i]
        losses[i] = np.mean((q - x).astype(np.float64) ** 2)
    return _ifmr_pick(losses, scales, min0, bits, symmetric)


class IfmrCalibrator(Calibrator):
    """AMCT IFMR, streaming (see the module docstring for how it differs from AMCT).

    Args:
        max_percentile, min_percentile: order statistics that start the search (AMCT default
            0.999999); 1.0 selects the exact max/min.
        search_range_start, search_range_end, search_step: clip-max ratios (end exclusive).
        num_bins: resolution of the streaming histogram.
        **grid: bits and symmetric (AMCT ``asymmetric`` = ``not symmetric``).
    """

    name = "ifmr"

    def __init__(self, max_percentile: float = 0.999999, min_percentile: float = 0.999999,
                 search_range_start: float = 0.7, search_range_end: float = 1.3,
                 search_step: float = 0.01, num_bins: int = 1 << 14, **grid: Any) -> None:
        for name, p in (("max_percentile", max_percentile), ("min_percentile", min_percentile)):
            if not 0.5 <= float(p) <= 1.0:
                raise errors.bad_parameter(name, p, "a fraction in [0.5, 1]")
        if not (search_step > 0 and search_range_end > search_range_start > 0):
            raise errors.bad_parameter(
                "search range", (search_range_start, search_range_end, search_step),
                "0 < start < end and step > 0",
            )
        self.max_percentile, self.min_percentile = float(max_percentile), float(min_percentile)
        self.start, self.end, self.step = (float(search_range_start), float(search_range_end),
                                           float(search_step))
        self.num_bins = num_bins
        self.hist = Pow2Histogram(num_bins)
        super().__init__(**grid)

    def config(self) -> dict[str, Any]:
        return {"max_percentile": self.max_percentile, "min_percentile": self.min_percentile,
                "search_range_start": self.start, "search_range_end": self.end,
                "search_step": self.step, "num_bins": self.num_bins}

    def update(self, batch: Any) -> IfmrCalibrator:
        x = as_batch(batch)
        if x.size and not np.all(np.isfinite(x)):
            # AMCT check_quant_data: "has invalid value inf or nan!"
            raise errors.error(errors.BAD_DATA, "IFMR calibration data contains inf or nan")
        self.hist.update(x)
        self.batches += 1
        return self

    def merge(self, other: Calibrator) -> IfmrCalibrator:
        self._check_merge(other)
        assert isinstance(other, IfmrCalibrator)
        self.hist.merge(other.hist)
        self.batches += other.batches
        return self

    def _order_stats(self) -> tuple[float, float]:
        h, n = self.hist, self.hist.total
        k_max = max(1, min(n, _order_stat_index(n, self.max_percentile)))
        k_min = max(1, min(n, _order_stat_index(n, self.min_percentile)))
        hi = h.max if k_max == 1 else h.quantile((n - k_max + 0.5) / n)
        lo = h.min if k_min == 1 else h.quantile((k_min - 0.5) / n)
        return max(0.0, hi), min(0.0, lo)

    def encoding(self, bits: int | None = None, **grid: Any) -> Encoding:
        g = self._grid(bits, grid)
        if self.hist.empty:
            raise errors.no_data(type(self).__name__)
        b, sym = int(g["bits"]), bool(g["symmetric"])
        max0, min0 = self._order_stats()
        cmax, cmin, scales = _ifmr_candidates(max0, min0, b, sym, self.start, self.end,
                                              self.step)
        counts = self.hist.counts[: self.hist.used()].astype(np.float64)
        centers = np.clip((self.hist.start + np.arange(len(counts)) + 0.5) * self.hist.width,
                          self.hist.min, self.hist.max)
        c = centers[None, :]
        s = scales.astype(np.float64)[:, None]
        q = np.rint(np.clip(c, cmin[:, None], cmax[:, None]) / s) * s
        losses = ((q - c) ** 2) @ counts / counts.sum()
        return _ifmr_pick(losses, scales, min0, b, sym)

    def state_arrays(self) -> list[np.ndarray]:
        return self.hist.state_arrays()


# -- HFMG ---------------------------------------------------------------------------------------
def hfmg_rebin(counts: np.ndarray, lo: float, hi: float, new_lo: float, new_hi: float
               ) -> np.ndarray:
    """``hfmg_merge_inter``: move bins of ``[lo, hi]`` onto the bins of ``[new_lo, new_hi]``.

    A bin lands in the new bin holding its lower edge; when it straddles two new bins its count
    is split by the overlap of the lower one (``int()`` truncation, remainder to the upper).
    """
    n = len(counts)
    width = (hi - lo) / n
    new_width = (new_hi - new_lo) / n
    lower = lo + np.arange(n) * width
    upper = lo + (np.arange(n) + 1) * width
    i_lo = np.floor((lower - new_lo) / new_width).astype(np.int64)
    i_hi = np.minimum(np.floor((upper - new_lo) / new_width).astype(np.int64), n - 1)
    i_lo = np.clip(i_lo, 0, n - 1)
    same = i_lo == i_hi
    low_upper = new_lo + (i_lo + 1) * new_width
    frac = np.where(same, 1.0, (low_upper - lower) / np.where(upper > lower, upper - lower, 1.0))
    part = np.where(same, counts, np.trunc(counts * frac)).astype(np.int64)
    out = np.bincount(i_lo, weights=part, minlength=n)
    out += np.bincount(i_hi, weights=counts - part, minlength=n)
    return out.astype(np.int64)


def hfmg_search_ranges(counts: np.ndarray) -> list[tuple[int, int]]:
    """``hfmg_get_search_range`` with prefix sums instead of the inner while loops."""
    n = len(counts)
    total = int(counts.sum())
    step = max(math.ceil(total / STEP_DIVISOR), 1)
    min_bins = math.ceil(n / MIN_BIN_RATIO)
    prefix = np.concatenate([[0], np.cumsum(counts)])
    left, right = 0, n - 1
    ranges: list[tuple[int, int]] = []
    while right - left > min_bins:
        t_left = int(np.searchsorted(prefix, prefix[left] + step, side="left"))
        t_left = min(max(t_left, left + 1), right)
        j = int(np.searchsorted(prefix, prefix[right + 1] - step, side="right")) - 1
        t_right = max(min(j - 1, right - 1), t_left) if t_left < right else right
        if (right - t_right) >= (t_left - left):
            right = t_right
        else:
            left = t_left
        ranges.append((left, right))
    return ranges


def hfmg_losses(counts: np.ndarray, lo: float, hi: float, ranges: list[tuple[int, int]],
                dst_bins: int) -> np.ndarray:
    """``hfmg_calculate_loss``: L2 error of re-binning each range into ``dst_bins`` bins.

    AMCT integrates ``density * (x - centre(x))^2`` over every source bin, splitting it at
    destination-bin boundaries (source bins outside the range fall into the first or last
    destination bin). The same integral is computed here in O(range) per candidate: bins
    outside the range through prefix sums of ``d, d*i, d*i^2``, bins inside through the
    antiderivative of the saw-tooth ``(x - centre(x))^2``.
    """
    n = len(counts)
    w = (hi - lo) / n
    d = counts.astype(np.float64) / w
    i = np.arange(n, dtype=np.float64)
    p0 = np.concatenate([[0.0], np.cumsum(d)])
    p1 = np.concatenate([[0.0], np.cumsum(d * i)])
    p2 = np.concatenate([[0.0], np.cumsum(d * i * i)])

    def outside(a: int, b: int, k: float) -> float:
        # sum_{a<=i<b} d_i * ((u_i + w)^3 - u_i^3) / 3 with u_i = i*w - k
        s0, s1, s2 = p0[b] - p0[a], p1[b] - p1[a], p2[b] - p2[a]
        su = w * s1 - k * s0
        su2 = w * w * s2 - 2 * w * k * s1 + k * k * s0
        return float(w * su2 + w * w * su + w**3 / 3 * s0)

    out = np.empty(len(ranges))
    for r, (left, right) in enumerate(ranges):
        size = right - left + 1
        dw = w * size / dst_bins
        if dw < FLT_EPSILON:
            out[r] = 0.0
            continue
        h = dw / 2
        full = 2 * h**3 / 3  # integral over one whole destination bin

        def phi(x: np.ndarray, dw: float = dw, h: float = h, full: float = full) -> np.ndarray:
            k = np.minimum(np.floor(x / dw), dst_bins - 1)
            return k * full + ((x - (k + 0.5) * dw) ** 3 + h**3) / 3

        edges = np.arange(size + 1, dtype=np.float64) * w
        f = phi(edges)
        inside = float(np.dot(d[left:right + 1], f[1:] - f[:-1]))
        low = outside(0, left, left * w + h)
        high = outside(right + 1, n, left * w + (dst_bins - 1) * dw + h)
        out[r] = low + inside + high
    return out


class HfmgCalibrator(Calibrator):
    """AMCT HFMG with AMCT's own histogram merging (see the module docstring).

    ``merge`` applies AMCT's batch-merging rule to the other calibrator's histogram (both
    re-binned onto the union range), so shards merge the way AMCT merges batches; like AMCT's
    own result it depends on the order data arrives in, so it is close to, not identical with,
    one calibrator fed everything.

    Args:
        num_of_bins: 1024, 2048, 4096 (default) or 8192 (spec 001).
        **grid: bits and symmetric (AMCT ``asymmetric`` = ``not symmetric``).
    """

    name = "hfmg"

    def __init__(self, num_of_bins: int = 4096, **grid: Any) -> None:
        if num_of_bins not in (1024, 2048, 4096, 8192):
            raise errors.bad_parameter("num_of_bins", num_of_bins, "1024, 2048, 4096 or 8192")
        self.num_of_bins = num_of_bins
        self.counts = np.zeros(num_of_bins, dtype=np.int64)
        self.lo = self.hi = 0.0
        self.seen = False
        super().__init__(**grid)

    def config(self) -> dict[str, Any]:
        return {"num_of_bins": self.num_of_bins}

    def update(self, batch: Any) -> HfmgCalibrator:
        x = as_batch(batch).reshape(-1)
        if x.size == 0:
            return self
        if not np.all(np.isfinite(x)):
            raise errors.error(errors.BAD_DATA, "HFMG calibration data contains inf or nan")
        mn, mx = float(x.min()), float(x.max())
        if not self.seen:
            self.counts = torch_histc(x, self.num_of_bins, mn, mx)
            self.lo, self.hi, self.seen = mn, mx, True
        else:
            lo, hi = min(mn, self.lo), max(mx, self.hi)
            new = torch_histc(x, self.num_of_bins, lo, hi)
            self.counts = new + self._moved(self.counts, self.lo, self.hi, lo, hi)
            self.lo, self.hi = lo, hi
        self.batches += 1
        return self

    @staticmethod
    def _moved(counts: np.ndarray, lo: float, hi: float, new_lo: float, new_hi: float
               ) -> np.ndarray:
        same = math.isclose(lo, new_lo, abs_tol=FLT_EPSILON) and \
            math.isclose(hi, new_hi, abs_tol=FLT_EPSILON)
        return counts if same else hfmg_rebin(counts, lo, hi, new_lo, new_hi)

    def merge(self, other: Calibrator) -> HfmgCalibrator:
        self._check_merge(other)
        assert isinstance(other, HfmgCalibrator)
        if other.seen:
            if not self.seen:
                self.counts, self.lo, self.hi, self.seen = (other.counts.copy(), other.lo,
                                                            other.hi, True)
            else:
                lo, hi = min(self.lo, other.lo), max(self.hi, other.hi)
                self.counts = (self._moved(self.counts, self.lo, self.hi, lo, hi)
                               + self._moved(other.counts, other.lo, other.hi, lo, hi))
                self.lo, self.hi = lo, hi
        self.batches += other.batches
        return self

    def clip_range(self, bits: int = 8) -> tuple[float, float]:
        """The (clip_min, clip_max) HFMG selects."""
        if not self.seen:
            raise errors.no_data(type(self).__name__)
        lo, hi = self.lo, self.hi
        if lo == hi:
            return lo, hi
        ranges = hfmg_search_ranges(self.counts)
        if not ranges:
            return lo, hi
        losses = hfmg_losses(self.counts, lo, hi, ranges, 1 << bits)
        left, right = ranges[int(np.argmin(losses))]
        width = (hi - lo) / self.num_of_bins
        return lo + left * width, lo + (right + 1) * width

    def encoding(self, bits: int | None = None, **grid: Any) -> Encoding:
        g = self._grid(bits, grid)
        b, sym = int(g["bits"]), bool(g["symmetric"])
        lo, hi = self.clip_range(b)
        return encoding_from_range(lo, hi, b, scheme="amct", symmetric=sym)

    def state_arrays(self) -> list[np.ndarray]:
        return [self.counts]
