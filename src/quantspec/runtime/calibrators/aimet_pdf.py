"""AIMET's histogram ("PDF") statistics, shared by TF-enhanced and percentile (aimet.md C.3).

The first non-zero batch fixes ``PDF_SIZE`` buckets over 3x its range; every batch is then
histogrammed on that grid (values outside it are dropped) and the per-batch PDFs are averaged
with a running mean, so each :meth:`AimetPdf.update` call is one batch. Everything is computed with
the vendor's types: float32 where AIMET's ``DTYPE`` is float, double where it uses double.

Two versions exist:

* ``"2.x"`` (aimet-onnx 2.42, aimet.md C.3): 1536 buckets, zero-aligned edges
  ``floor(min/bucket + i) * bucket``, range clamped to 0.99*FLT_MAX, index
  ``floor(x * float(1/bucket)) - round(xLeft[0]/bucket)``.
* ``"1.x"`` (AIMET <= 2024, aimet.md C.3 "512 in 1.x"): 512 buckets, edges ``min + i*bucket`` in
  float, index ``round(x/bucket - min/bucket)``.

Per channel, every channel has its own PDF (AIMET keeps one analyzer per channel); state is
``channels x PDF_SIZE`` doubles whatever the number of batches.
"""

from __future__ import annotations

import numpy as np

from .. import errors
from ..rounding import round_array
from .histogram import scratch

F32 = np.float32
F32_MAX = np.finfo(F32).max
F32_LOWEST = -np.finfo(F32).max
PDF_SIZES = {"2.x": 1536, "1.x": 512}


class AimetPdf:
    """Running-average PDFs of ``channels`` rows (one AIMET analyzer per row)."""

    def __init__(self, channels: int, version: str = "2.x") -> None:
        if version not in PDF_SIZES:
            raise errors.unknown_name("AIMET version", version, PDF_SIZES)
        self.version = version
        self.size = PDF_SIZES[version]
        self.channels = channels
        self.x_left = np.zeros((channels, self.size))
        self.pdf = np.zeros((channels, self.size))
        self.iterations = np.zeros(channels, dtype=np.int64)
        self.initialized = np.zeros(channels, dtype=bool)
        self.stats_seen = np.zeros(channels, dtype=bool)  # saw data, maybe only zeros

    # -- update ----------------------------------------------------------------------------------
    def update(self, rows: np.ndarray) -> None:
        """One batch: ``rows`` is ``(channels, n)`` float32."""
        if rows.shape[0] != self.channels:
            raise errors.error(
                errors.BAD_AXIS, f"batch has {rows.shape[0]} channels, expected {self.channels}"
            )
        if rows.shape[1] == 0:
            return  # aimet-onnx returns before touching the stats for an empty tensor
        self.stats_seen |= True
        for c in np.flatnonzero(~self.initialized).tolist():
            self._initialize(c, rows[c])
        live = np.flatnonzero(self.initialized)
        if live.size == 0:
            return
        counts = self._histogram(rows[live], live)
        prob = counts / float(rows.shape[1])
        it = self.iterations[live][:, None].astype(np.float64)
        self.pdf[live] = (self.pdf[live] * it + prob) / (it + 1)
        self.iterations[live] += 1

    def _initialize(self, c: int, row: np.ndarray) -> None:
        # GetMin/GetMax: std::min/max loops starting at FLT_MAX/lowest, so NaN is skipped.
        finite = row[~np.isnan(row)]
        if finite.size == 0:
            return  # all-NaN: AIMET would build its grid from FLT_MAX/lowest; wait for data
        mn, mx = F32(finite.min()), F32(finite.max())
        if mn == 0 and mx == 0:
            return  # all-zero batch: no histogram yet
        edges = (_edges_2x if self.version == "2.x" else _edges_1x)(mn, mx, self.size)
        if not (np.all(np.isfinite(edges)) and edges[1] > edges[0]):
            raise errors.error(
                errors.BAD_DATA,
                f"AIMET's histogram cannot be built for the range [{mn}, {mx}]",
                "the first non-zero batch of a channel must span more than float32 resolution",
            )
        self.x_left[c] = edges
        self.initialized[c] = True

    def _histogram(self, rows: np.ndarray, chans: np.ndarray) -> np.ndarray:
        size = self.size
        x_left = self.x_left[chans]
        bucket = x_left[:, 1] - x_left[:, 0]  # double, recomputed from the edges
        if self.version == "2.x":
            pdf_offset = round_array(x_left[:, 0] / bucket, "half_away")  # int(std::round(.))
            inv = (1.0 / bucket).astype(F32)  # DTYPE inv_bucket_size = 1 / bucket_size
            # floor(x * inv) - offset, all in float32 as the C++ computes it, in place.
            idx = np.multiply(rows, inv[:, None], out=scratch("pdf", rows.size, F32).reshape(
                rows.shape))
            with np.errstate(invalid="ignore", over="ignore"):
                np.floor(idx, out=idx)
                np.subtract(idx, pdf_offset.astype(F32)[:, None], out=idx)
        else:
            bucket32 = bucket.astype(F32)
            offset32 = (x_left[:, 0].astype(F32) / bucket32)
            with np.errstate(invalid="ignore", over="ignore"):
                idx = round_array(rows / bucket32[:, None] - offset32[:, None], "half_away")
            idx = idx.astype(F32, copy=False)
        return _bucket_counts(idx, size)

    # -- queries --------------------------------------------------------------------------------
    def original_range(self, c: int) -> tuple[np.float32, np.float32]:
        """``findOriginalRange`` / ``_findRangeOfAggregateStats`` in float (aimet.md C.3)."""
        x_left, pdf = self.x_left[c], self.pdf[c]
        nz = np.flatnonzero(pdf > 0)
        mn = F32(x_left[nz[0]]) if nz.size else F32(x_left[0])
        top = nz[nz > 0]  # the C loop stops before bucket 0
        mx = F32(x_left[top[-1]]) if top.size else F32(x_left[self.size - 1])
        mn = min(mn, F32(0))
        mx = max(mx, F32(0))
        mx = max(mx, F32(mn + F32(0.01)))
        return mn, mx

    # -- merge ----------------------------------------------------------------------------------
    def merge(self, other: AimetPdf) -> None:
        """Weighted average of the two running means (batches are equally weighted, as in
        AIMET). Channels initialized on different grids are re-binned onto ``self``'s grid by
        overlap, dropping mass outside it, as AIMET drops out-of-range values."""
        if other.channels != self.channels or other.version != self.version:
            raise errors.error(errors.MERGE_MISMATCH, "AIMET PDFs of different shapes")
        self.stats_seen |= other.stats_seen
        for c in range(self.channels):
            if not other.initialized[c]:
                continue
            if not self.initialized[c]:
                self.x_left[c] = other.x_left[c]
                self.pdf[c] = other.pdf[c]
                self.iterations[c] = other.iterations[c]
                self.initialized[c] = True
                continue
            theirs = other.pdf[c]
            if not np.array_equal(self.x_left[c], other.x_left[c]):
                theirs = rebin(other.x_left[c], theirs, self.x_left[c])
            n1, n2 = float(self.iterations[c]), float(other.iterations[c])
            self.pdf[c] = (self.pdf[c] * n1 + theirs * n2) / (n1 + n2)
            self.iterations[c] += other.iterations[c]

    def state_arrays(self) -> list[np.ndarray]:
        return [self.x_left, self.pdf, self.iterations, self.initialized, self.stats_seen]


def _bucket_counts(idx: np.ndarray, size: int) -> np.ndarray:
    """Per-row counts of the integer-valued float32 ``idx`` in ``[0, size)``; indices outside
    (and NaN or inf: AIMET's cast gives INT_MIN for them, which fails its range test) are dropped.

    ``idx`` is clamped in place to ``[-1, size]`` (``fmax`` maps NaN to -1), shifted by one and
    counted with one spare bucket at each end of every row, which are then cut off: no mask, no
    compressed copy of the data.
    """
    chans, n = idx.shape
    np.fmax(idx, F32(-1), out=idx)
    np.fmin(idx, F32(size), out=idx)
    flat = scratch("pdf_index", idx.size, np.intp).reshape(chans, n)
    np.copyto(flat, idx, casting="unsafe")
    flat += (np.arange(chans, dtype=np.intp) * (size + 2) + 1)[:, None]
    counts = np.bincount(flat.reshape(-1), minlength=chans * (size + 2))
    return counts.reshape(chans, size + 2)[:, 1:size + 1].astype(np.float64)


def _edges_2x(mn: np.float32, mx: np.float32, size: int) -> np.ndarray:
    """``InitializePdf`` (aimet-onnx 2.x) in float/double exactly as the C++ does."""
    with np.errstate(over="ignore", invalid="ignore"):  # +-inf data: NaN loses std::max/min
        if mn == mx:
            mx = max(mx, F32(mn + F32(0.01)))
        center = F32(F32(mx + mn) / F32(2))
        three = F32(3)
        lo = max(F32(0.99) * F32_LOWEST, F32(center - F32(three * F32(center - mn))))
        hi = min(F32(0.99) * F32_MAX, F32(center + F32(three * F32(mx - center))))
    with np.errstate(divide="ignore", invalid="ignore"):
        bucket = (np.float64(hi) - np.float64(lo)) / size
        return np.floor(np.float64(lo) / bucket + np.arange(size)) * bucket


def _edges_1x(mn: np.float32, mx: np.float32, size: int) -> np.ndarray:
    """``UpdatePdfSigned`` initialization of AIMET 1.x: float edges ``min + i*bucket``."""
    with np.errstate(over="ignore", invalid="ignore"):
        if mn == mx:
            mx = max(mx, F32(mn + F32(0.01)))
        center = F32(F32(mx + mn) / F32(2))
        three = F32(3)
        lo = F32(center - F32(three * F32(center - mn)))
        hi = F32(center + F32(three * F32(mx - center)))
        bucket = F32(F32(hi - lo) / F32(size))
    return (lo + np.arange(size, dtype=F32) * bucket).astype(np.float64)


def rebin(src_left: np.ndarray, src_pdf: np.ndarray, dst_left: np.ndarray) -> np.ndarray:
    """Redistribute bucket masses onto another uniform grid by interval overlap."""
    w_src = src_left[1] - src_left[0]
    w_dst = dst_left[1] - dst_left[0]
    src_edges = np.append(src_left, src_left[-1] + w_src)
    dst_edges = np.append(dst_left, dst_left[-1] + w_dst)
    # Cumulative mass as a piecewise-linear function of x, sampled at the destination edges.
    cum = np.concatenate([[0.0], np.cumsum(src_pdf)])
    at = np.interp(dst_edges, src_edges, cum, left=0.0, right=cum[-1])
    return np.diff(at)
