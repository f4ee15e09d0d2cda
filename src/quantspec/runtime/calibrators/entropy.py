"""Entropy (KL divergence) calibration, TensorRT style.

The threshold ``amax`` minimizes KL(P || Q) between the histogram of ``|x|`` clipped at a
candidate bin ``i`` (outliers folded into the last kept bin) and that histogram quantized to
``2^(bits-1)`` levels (``2^bits`` unsigned) and expanded back over its non-empty bins. This is
the algorithm of TensorRT / pytorch-quantization ``_compute_amax_entropy`` that Vitis AI's
``entropy`` method uses too (vitis_amct.md 1.12): ``bins[0] = bins[1]`` (zeros do not count),
candidates ``start_bin .. n`` every ``stride`` bins, the *last* minimum wins, and
``amax = edges[i]``.

Streaming: the statistics are a :class:`~.histogram.Pow2Histogram` of ``|x|`` (exactly
mergeable); the KL search runs on its used bins (``num_bins`` .. ``2*num_bins`` of them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import errors
from ..encoding import Encoding
from ..schemes import encoding_from_range
from .base import Calibrator, as_batch
from .histogram import Pow2Histogram

# prefix-sum scores within this (relative) distance of the best are scored again exactly
_TOLERANCE = 1e-9


def kl_threshold_bin(bins: np.ndarray, bits: int, unsigned: bool, start_bin: int,
                     stride: int) -> int:
    """Index ``i`` of the best clipping bin (TensorRT's search); ``amax = edges[i]``.

    The reference search (:func:`kl_divergence_at`, once per candidate) costs O(bins) per
    candidate, O(bins^2 / stride) in all: seconds per tensor at 4096 bins. Here every candidate
    is first scored in O(2^bits) from prefix sums over the bins (the divergence regrouped per
    quantization bucket, below), then the candidates within a small tolerance of the best score
    are scored again with the reference formula and the last minimum of those wins. The
    prefix-sum scores differ from the reference by rounding only (~1e-13 absolute), far below the
    tolerance, so the answer is the reference search's answer.
    """
    b = np.asarray(bins, dtype=np.float64).copy()
    if len(b) > 1:
        b[0] = b[1]
    nquant = 1 << (bits - 1 + int(unsigned))
    stop = len(b)
    start = min(max(start_bin, 1), stop)
    cands = np.arange(start, stop + 1, stride)
    scores = _fast_divergences(b, cands, nquant)
    finite = np.isfinite(scores)
    if not finite.any():
        return int(cands[-1])  # every candidate is inf: the last minimum is the last one
    best = scores[finite].min()
    near = np.flatnonzero(finite & (scores <= best + _TOLERANCE * max(1.0, abs(best))))
    exact = [kl_divergence_at(b, int(cands[k]), nquant) for k in near]
    low = min(exact)
    return int(cands[near[max(k for k, d in enumerate(exact) if d == low)]])


def kl_divergence_at(bins: np.ndarray, i: int, nquant: int) -> float:
    """KL(P || Q) for clipping at bin ``i`` exactly as TensorRT / pytorch-quantization's
    ``_compute_amax_entropy`` loop body computes it (``bins[0]`` already set to ``bins[1]``)."""
    space = np.linspace(0, i, num=nquant + 1)
    digit = np.digitize(np.arange(i), space) - 1
    nonzero = bins[:i] != 0
    sums = np.bincount(digit[nonzero], weights=bins[:i][nonzero],
                       minlength=nquant + 1).astype(np.float64)
    members = np.bincount(digit[nonzero], minlength=nquant + 1)
    avg = np.divide(sums, members, out=np.zeros_like(sums), where=members > 0)
    q = np.where(nonzero, avg[digit], 0.0)
    p = bins[:i].copy()
    p[-1] += bins[i:].sum()
    return _kl(p, q)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """``scipy.stats.entropy(p, q)``: both normalized, ``sum p log(p/q)``, inf if q=0<p."""
    ps, qs = p.sum(), q.sum()
    if ps == 0 or qs == 0:
        return float("inf")
    p = p / ps
    q = q / qs
    mask = p > 0
    if np.any(q[mask] == 0):
        return float("inf")
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def _fast_divergences(b: np.ndarray, cands: np.ndarray, nquant: int) -> np.ndarray:
    """KL(P_i || Q_i) for every candidate ``i``, regrouped per bucket.

    With ``N`` the total count, ``C_i`` the count below ``i``, ``T_i`` the count from ``i`` on
    (folded into bin ``i-1`` of P), and bucket ``k`` holding ``M_k`` non-empty bins of sum
    ``S_k`` (Q gives each the average ``S_k / M_k``)::

        N * KL = sum_{j<i} b_j log b_j - sum_k S_k log(S_k / M_k)
                 + [(b + T) log(b + T) - b log b - T log(S_K / M_K)]_{j = i-1, its bucket K}
                 + N log(C_i / N)

    Bucket ``k`` of candidate ``i`` holds bins ``ceil(k i / nquant) .. ceil((k+1) i / nquant)``
    (``np.digitize`` over ``np.linspace(0, i, nquant + 1)``), so every sum is a difference of
    prefix sums. Clipping where ``b_{i-1} = 0 < T_i`` gives Q a zero where P is not: inf.
    """
    n = len(b)
    blogb = np.where(b > 0, b * np.log(np.where(b > 0, b, 1.0)), 0.0)
    cum_b = np.concatenate([[0.0], np.cumsum(b)])
    cum_nz = np.concatenate([[0], np.cumsum(b != 0)])
    cum_blogb = np.concatenate([[0.0], np.cumsum(blogb)])
    total = cum_b[n]
    out = np.empty(len(cands))
    rows = max(1, (1 << 20) // (nquant + 1))
    for lo in range(0, len(cands), rows):
        i = cands[lo:lo + rows]
        fi = i.astype(np.float64)
        step = fi / nquant
        edges = np.ceil(np.arange(nquant + 1, dtype=np.float64)[None, :] * step[:, None])
        edges[:, nquant] = fi
        e = edges.astype(np.int64)
        s = cum_b[e[:, 1:]] - cum_b[e[:, :-1]]
        m = (cum_nz[e[:, 1:]] - cum_nz[e[:, :-1]]).astype(np.float64)
        filled = m > 0
        avg = np.where(filled, s / np.where(filled, m, 1.0), 1.0)
        within = cum_blogb[i] - (s * np.log(avg)).sum(axis=1)
        last = i - 1
        k_last = (e[:, :nquant] <= last[:, None]).sum(axis=1) - 1
        b_last = b[last]
        tail = total - cum_b[i]
        rows_ix = np.arange(len(i))
        folded = b_last + tail
        fix = (np.where(folded > 0, folded * np.log(np.where(folded > 0, folded, 1.0)), 0.0)
               - blogb[last] - tail * np.log(avg[rows_ix, k_last]))
        below = cum_b[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = (within + fix) / total + np.log(below / total)
        bad = ((b_last == 0) & (tail > 0)) | (below <= 0) | (total <= 0)
        out[lo:lo + rows] = np.where(bad, np.inf, kl)
    return out


class EntropyCalibrator(Calibrator):
    """KL-divergence calibration (TensorRT / ORT ``entropy``, Vitis ``entropy`` search).

    The result is a symmetric range ``[-amax, amax]`` (``[0, amax]`` for non-negative data with
    an unsigned grid) turned into an encoding by ``scheme``. ``merge`` is exact.

    Args:
        num_bins: histogram resolution (TensorRT: 2048); the histogram keeps 2x as many bins.
        start_bin: first candidate clipping bin (TensorRT 128; Vitis 1536).
        stride: candidate step (TensorRT 1; Vitis 16).
        scheme: range -> encoding scheme.
        **grid: default grid flags for :meth:`encoding`.
    """

    name = "entropy"

    def __init__(self, num_bins: int = 2048, start_bin: int = 128, stride: int = 1,
                 scheme: str = "aimet2", **grid: Any) -> None:
        if not isinstance(num_bins, int) or num_bins < 16:
            raise errors.bad_parameter("num_bins", num_bins, "an integer >= 16")
        if not isinstance(stride, int) or stride < 1:
            raise errors.bad_parameter("stride", stride, "an integer >= 1")
        if not isinstance(start_bin, int) or start_bin < 1:
            raise errors.bad_parameter("start_bin", start_bin, "an integer >= 1")
        self.num_bins, self.start_bin, self.stride = num_bins, start_bin, stride
        self.scheme = scheme
        self.hist = Pow2Histogram(2 * num_bins, absolute=True)
        self.signed_min = np.inf  # smallest raw value: decides signed vs unsigned range
        super().__init__(**{"symmetric": True, **grid})

    def config(self) -> dict[str, Any]:
        return {"num_bins": self.num_bins, "start_bin": self.start_bin, "stride": self.stride,
                "scheme": self.scheme}

    def update(self, batch: Any) -> EntropyCalibrator:
        x = as_batch(batch)
        if x.size:
            finite = x[np.isfinite(x)]
            if finite.size:
                self.signed_min = min(self.signed_min, float(finite.min()))
            self.hist.update(x)
        self.batches += 1
        return self

    def merge(self, other: Calibrator) -> EntropyCalibrator:
        self._check_merge(other)
        assert isinstance(other, EntropyCalibrator)
        self.hist.merge(other.hist)
        self.signed_min = min(self.signed_min, other.signed_min)
        self.batches += other.batches
        return self

    def amax(self, bits: int = 8, unsigned: bool = False) -> float:
        """The KL-optimal clipping threshold of ``|x|``."""
        if self.hist.empty:
            raise errors.no_data(type(self).__name__)
        counts = self.hist.counts[: self.hist.used()]
        if self.hist.max == 0:
            return 0.0
        # start_bin and stride are given for num_bins bins; the histogram holds len(counts).
        ratio = len(counts) / self.num_bins
        start = max(1, round(self.start_bin * ratio))
        stride = max(1, round(self.stride * ratio))
        i = kl_threshold_bin(counts, bits, unsigned, start, stride)
        return float(i * self.hist.width)

    def encoding(self, bits: int | None = None, **grid: Any) -> Encoding:
        g = self._grid(bits, grid)
        uns = bool(g["unsigned"]) and self.signed_min >= 0
        a = self.amax(g["bits"], uns)
        lo = 0.0 if self.signed_min >= 0 else -a
        return encoding_from_range(lo, a, scheme=self.scheme, **g)

    def state_arrays(self) -> list[np.ndarray]:
        return self.hist.state_arrays()
