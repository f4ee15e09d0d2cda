"""Reducing per-batch results: Vitis ``calib_statistic_method`` (vitis_amct.md 1.12).

Vitis calibrates each batch on its own and reduces the history of per-batch results with
``max``, ``mean``, ``median`` or ``modal`` (``scipy.stats.mode``: most frequent, smallest on
ties). :class:`BatchStatistic` stores the history as a value -> count table: memory grows with
the number of *distinct* per-batch results, never with the number of samples. Power-of-two fix
positions take a few dozen distinct values at most; float scales take one scalar per batch.
The reductions are exact, and merging two tables gives the same answer as one table that saw
every batch.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .. import errors

STATISTICS = ("max", "mean", "median", "modal")


class BatchStatistic:
    """Exact max / mean / median / mode over a stream of scalars."""

    def __init__(self) -> None:
        self.counts: Counter[float] = Counter()

    def add(self, value: float) -> None:
        self.counts[float(value)] += 1

    def merge(self, other: BatchStatistic) -> None:
        self.counts.update(other.counts)

    def __len__(self) -> int:
        return sum(self.counts.values())

    def reduce(self, method: str) -> float:
        if method not in STATISTICS:
            raise errors.unknown_name("calib_statistic_method", method, STATISTICS)
        if not self.counts:
            raise errors.no_data("calib_statistic_method")
        values = np.array(sorted(self.counts), dtype=np.float64)
        weights = np.array([self.counts[v] for v in values], dtype=np.float64)
        if method == "max":
            return float(values[-1])
        if method == "mean":
            # np.mean of the history, summed in float64
            return float(np.dot(values, weights) / weights.sum())
        if method == "modal":
            return float(values[int(np.argmax(weights))])  # first = smallest on ties
        cum = np.cumsum(weights)
        n = cum[-1]
        lo = values[int(np.searchsorted(cum, (n - 1) // 2 + 1))]  # 1-based ranks
        hi = values[int(np.searchsorted(cum, n // 2 + 1))]
        return float((lo + hi) / 2)

    @property
    def nbytes(self) -> int:
        return 16 * len(self.counts)
