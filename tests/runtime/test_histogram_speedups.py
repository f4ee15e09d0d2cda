"""The fast paths of the histogram calibrators agree with their reference definitions.

* The KL threshold search scores candidates from prefix sums and re-scores the near-best ones
  with the reference formula; the chosen bin must be the reference search's (TensorRT's loop:
  every candidate scored by ``kl_divergence_at``, the last minimum wins).
* ``Pow2Histogram`` bins float32 data in float32 inside a safe exponent window; the counts must
  equal those of the same values binned in float64.
* AIMET's PDF counts with clamped indices must equal the masked reference count.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantspec.runtime.calibrators import Pow2Histogram
from quantspec.runtime.calibrators.aimet_pdf import F32, _bucket_counts
from quantspec.runtime.calibrators.entropy import kl_divergence_at, kl_threshold_bin


def reference_search(bins: np.ndarray, bits: int, unsigned: bool, start_bin: int,
                     stride: int) -> int:
    b = np.asarray(bins, dtype=np.float64).copy()
    if len(b) > 1:
        b[0] = b[1]
    nquant = 1 << (bits - 1 + int(unsigned))
    start = min(max(start_bin, 1), len(b))
    cands = list(range(start, len(b) + 1, stride))
    div = np.array([kl_divergence_at(b, i, nquant) for i in cands])
    return cands[len(div) - 1 - int(np.argmin(div[::-1]))]


def histograms(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    if kind == 0:
        return rng.integers(0, 1000, n)
    if kind == 1:
        return np.histogram(np.abs(rng.standard_normal(20000)), n)[0]
    if kind == 2:
        return (rng.random(n) < 0.1) * rng.integers(1, 50, n)
    if kind == 3:
        h = np.zeros(n, np.int64)
        h[rng.integers(0, n, 3)] = rng.integers(1, 9, 3)
        return h
    if kind == 4:
        return np.ones(n, np.int64)
    return np.histogram(np.maximum(rng.standard_normal(50000), 0) ** 3, n)[0]


@pytest.mark.parametrize("kind", range(6))
def test_kl_search_picks_the_reference_bin(kind: int) -> None:
    rng = np.random.default_rng(100 + kind)
    for _ in range(25):
        n = int(rng.integers(16, 400))
        bins = histograms(rng, n, kind)
        bits = int(rng.choice([4, 8]))
        unsigned = bool(rng.integers(0, 2))
        start, stride = int(rng.integers(1, n)), int(rng.integers(1, 4))
        assert kl_threshold_bin(bins, bits, unsigned, start, stride) == \
            reference_search(bins, bits, unsigned, start, stride)


def test_kl_search_on_a_full_size_histogram() -> None:
    rng = np.random.default_rng(5)
    bins = np.histogram(np.abs(rng.standard_normal(200_000)), 2048)[0]
    assert kl_threshold_bin(bins, 8, False, 128, 4) == reference_search(bins, 8, False, 128, 4)


@settings(max_examples=80, deadline=None, database=None)
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1,
                       max_size=200),
       absolute=st.booleans(), nbins=st.sampled_from([8, 64, 4096]))
def test_float32_binning_equals_float64(values: list[float], absolute: bool, nbins: int) -> None:
    x = np.array(values, np.float32)
    fast, slow = Pow2Histogram(nbins, absolute), Pow2Histogram(nbins, absolute)
    fast.update(x)
    slow.update(x.astype(np.float64))
    assert (fast.exp, fast.start, fast.total, fast.nonfinite) == \
        (slow.exp, slow.start, slow.total, slow.nonfinite)
    np.testing.assert_array_equal(fast.counts, slow.counts)


@settings(max_examples=60, deadline=None, database=None)
@given(values=st.lists(st.floats(-5000, 5000, allow_nan=False, width=32) | st.just(float("nan"))
                       | st.just(float("inf")) | st.just(float("-inf")),
                       min_size=1, max_size=120),
       rows=st.integers(1, 3), size=st.sampled_from([4, 16, 1536]))
def test_pdf_bucket_counts_match_the_masked_count(values: list[float], rows: int,
                                                  size: int) -> None:
    idx = np.floor(np.array(values * rows, F32).reshape(rows, -1))
    want = np.zeros((rows, size))
    for r in range(rows):
        ok = (idx[r] >= 0) & (idx[r] < size)
        want[r] = np.bincount(idx[r][ok].astype(np.int64), minlength=size)
    np.testing.assert_array_equal(_bucket_counts(idx.copy(), size), want)
