"""A fixed-size histogram on a global power-of-two grid, mergeable exactly.

Bins have width ``2**exp`` and edges at integer multiples of that width, so a value's bin at a
coarser level is its finer bin index shifted right: re-binning when the range grows loses
nothing. The grid is a function of the data alone (the smallest ``exp`` for which
``[min, max]`` fits in ``nbins`` bins, and no finer than ``2**-40`` of the largest magnitude), so a
histogram built batch by batch, or from shards merged in any order, is *identical* to one
built from all the data at once. Resolution is between ``nbins/2`` and ``nbins`` bins over the
data range. Non-finite values are counted apart and excluded.

Used by the entropy, MSE and IFMR calibrators.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .. import errors

_SCRATCH = threading.local()
SCRATCH_LIMIT = 1 << 22  # elements


def scratch(name: str, size: int, dtype: np.dtype | type) -> np.ndarray:
    """A per-thread work buffer of ``size`` elements, reused across calls.

    Histogram updates make several temporaries the size of the tensor; fresh allocations of a
    few MiB are new pages from the OS each time, and faulting them in cost more than the
    arithmetic (3-5x the update time on a 1.6 MB activation). Callers must not keep the result.
    Buffers above ``SCRATCH_LIMIT`` elements are not kept, so a thread holds at most a few tens
    of MiB after a calibration.
    """
    if size > SCRATCH_LIMIT:
        return np.empty(size, dtype)
    buf = getattr(_SCRATCH, name, None)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = np.empty(size, dtype)
        setattr(_SCRATCH, name, buf)
    return buf[:size]


E_MIN = -160  # finer than float32 subnormals: all-zero data lives here
MAG_BITS = 40  # bin indices stay below 2^41 (int64-safe)


def _span(lo: float, hi: float, e: int) -> int:
    return math.floor(math.ldexp(hi, -e)) - math.floor(math.ldexp(lo, -e))


class Pow2Histogram:
    """Counts of values (or of absolute values with ``absolute=True``) on a power-of-two grid."""

    def __init__(self, nbins: int = 4096, absolute: bool = False) -> None:
        if not isinstance(nbins, int) or nbins < 8:
            raise errors.bad_parameter("nbins", nbins, "an integer >= 8")
        self.nbins = nbins
        self.absolute = absolute
        self.counts = np.zeros(nbins, dtype=np.int64)
        self.exp: int | None = None
        self.start = 0  # global index of bin 0
        self.min = math.inf  # exact data extremes (finite values)
        self.max = -math.inf
        self.total = 0
        self.nonfinite = 0

    # -- grid -------------------------------------------------------------------------------------
    def _needed_exp(self, lo: float, hi: float) -> int:
        absmax = max(abs(lo), abs(hi))
        floor_e = E_MIN if absmax == 0 else max(E_MIN, math.frexp(absmax)[1] - 1 - MAG_BITS)
        if self.exp is not None:
            floor_e = max(floor_e, self.exp)
        width = hi - lo
        e = floor_e
        if width > 0:  # start the search just below the answer: 2^e >= width / nbins
            e = max(e, math.frexp(width / self.nbins)[1] - 2)
        while _span(lo, hi, e) > self.nbins - 1:
            e += 1
        return e

    def _rebase(self, e: int, lo: float) -> None:
        start = math.floor(math.ldexp(lo, -e))
        if self.exp is None:
            self.exp, self.start = e, start
            return
        if e == self.exp and start == self.start:
            return
        self.counts = self._rebinned(self.counts, self.exp, self.start, e, start)
        self.exp, self.start = e, start

    def _rebinned(self, counts: np.ndarray, e_old: int, s_old: int, e: int, s: int) -> np.ndarray:
        nz = np.flatnonzero(counts)
        g = (nz + s_old) >> (e - e_old)  # arithmetic shift = floor division by 2^k
        return np.bincount(g - s, weights=counts[nz], minlength=self.nbins).astype(np.int64)

    # -- data -------------------------------------------------------------------------------------
    def update(self, x: np.ndarray) -> None:
        v = np.asarray(x).reshape(-1)
        if v.dtype != np.float32:
            v = v.astype(np.float64)
        if v.size == 0:
            return
        if self.absolute:
            v = np.abs(v, out=scratch("value", v.size, v.dtype))
            lo, hi = 0.0, float(v.max())  # max sees every NaN and inf of |x|
        else:
            lo, hi = float(v.min()), float(v.max())  # min/max see every NaN and inf
        if not (math.isfinite(lo) and math.isfinite(hi)):
            finite = v[np.isfinite(v)]
            self.nonfinite += v.size - finite.size
            if finite.size == 0:
                return
            v = finite
            lo, hi = (0.0 if self.absolute else float(v.min())), float(v.max())
        new_lo, new_hi = min(self.min, lo), max(self.max, hi)
        self._rebase(self._needed_exp(new_lo, new_hi), new_lo)
        assert self.exp is not None
        self.counts += np.bincount(self._indices(v, new_lo), minlength=self.nbins)
        self.min, self.max = new_lo, new_hi
        self.total += v.size

    def _indices(self, v: np.ndarray, lo: float) -> np.ndarray:
        """Bin of each value: ``floor(v / 2^exp) - start``, in a reused buffer.

        Scaling by a power of two is exact in float32 as long as nothing underflows to zero: the
        scaled values are below 2^(MAG_BITS + 1), for ``exp <= 1`` the smallest float32
        subnormal scales to a non-zero value, and for ``exp >= -126`` the factor itself is a
        float32, so in that window the float32 path (half the memory traffic of float64) gives
        the same floor; otherwise float64. Non-negative data needs no floor: the integer cast
        truncates toward zero.
        """
        assert self.exp is not None
        if v.dtype == np.float32 and -126 <= self.exp <= 1:
            scaled = np.multiply(v, np.float32(math.ldexp(1.0, -self.exp)),
                                 out=scratch("scaled", v.size, np.float32))
        else:
            scaled = np.ldexp(v.astype(np.float64, copy=False), -self.exp,
                              out=scratch("scaled64", v.size, np.float64))
        if lo < 0:
            np.floor(scaled, out=scaled)
        idx = scratch("index", v.size, np.intp)
        np.copyto(idx, scaled, casting="unsafe")
        if self.start:
            idx -= self.start
        return idx

    def merge(self, other: Pow2Histogram) -> None:
        if other.nbins != self.nbins or other.absolute != self.absolute:
            raise errors.error(errors.MERGE_MISMATCH, "histograms with different bins")
        self.nonfinite += other.nonfinite
        if other.exp is None:
            return
        lo, hi = min(self.min, other.min), max(self.max, other.max)
        self._rebase(self._needed_exp(lo, hi), lo)
        assert self.exp is not None
        self.counts += self._rebinned(other.counts, other.exp, other.start, self.exp, self.start)
        self.min, self.max = lo, hi
        self.total += other.total

    # -- queries ----------------------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        return self.total == 0

    @property
    def width(self) -> float:
        assert self.exp is not None
        return math.ldexp(1.0, self.exp)

    def used(self) -> int:
        """Number of bins from bin 0 up to the one holding the maximum."""
        assert self.exp is not None
        return math.floor(math.ldexp(self.max, -self.exp)) - self.start + 1

    def edges(self) -> np.ndarray:
        """Left edges of the used bins plus the final right edge."""
        n = self.used()
        return (self.start + np.arange(n + 1, dtype=np.float64)) * self.width

    def quantile(self, q: float) -> float:
        """Value below which a fraction ``q`` of the counts lies (linear inside a bin), clipped
        to the exact data range."""
        counts = self.counts[: self.used()].astype(np.float64)
        cum = np.concatenate([[0.0], np.cumsum(counts)])
        target = q * cum[-1]
        i = int(np.searchsorted(cum, target, side="left"))
        i = min(max(i, 1), len(counts))
        inside = counts[i - 1]
        frac = 0.0 if inside == 0 else (target - cum[i - 1]) / inside
        value = (self.start + i - 1 + frac) * self.width
        return float(min(max(value, self.min), self.max))

    def state_arrays(self) -> list[np.ndarray]:
        return [self.counts]


def torch_histc(x: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """``torch.histc`` counts as Vitis and AMCT compute them: float32 bin arithmetic, values
    outside ``[lo, hi]`` dropped, ``hi`` in the last bin, an empty range widened by 1 each side."""
    f32 = np.float32
    lo32, hi32 = f32(lo), f32(hi)
    if lo32 == hi32:
        lo32, hi32 = f32(lo32 - 1), f32(hi32 + 1)
    x = x[(x >= lo32) & (x <= hi32)]
    pos = ((x - lo32) * f32(bins) / (hi32 - lo32)).astype(np.int64)
    counts: np.ndarray = np.bincount(np.minimum(pos, bins - 1), minlength=bins)
    return counts.astype(np.int64)
