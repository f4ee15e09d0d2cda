"""Signal-to-quantization-noise ratio, accumulated over batches.

``SQNR = 10 log10( sum(x^2) / sum((x - x_hat)^2) )`` in dB over every element seen, where ``x``
is the float reference and ``x_hat`` the quantized (simulated) value. Sums are float64 and the
accumulator holds four numbers, so memory does not grow with the number of batches, and two
accumulators merge (calibration and simulation can run sharded).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def sqnr_db(signal: float, noise: float) -> float:
    """SQNR in dB from the two sums; ``inf`` when there is no noise at all.

    >>> round(sqnr_db(100.0, 1.0), 3), sqnr_db(1.0, 0.0), sqnr_db(0.0, 1.0)
    (20.0, inf, -inf)
    """
    if noise <= 0.0:
        return math.inf
    if signal <= 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


class Sqnr:
    """Streaming SQNR of a tensor against its reference.

    Example:
        >>> acc = Sqnr()
        >>> acc.update(np.array([1.0, -2.0]), np.array([1.0, -2.1]))
        >>> round(acc.db, 2), acc.count, round(acc.max_abs_error, 3)
        (26.99, 2, 0.1)
    """

    __slots__ = ("signal", "noise", "count", "max_abs_error", "nonfinite")

    def __init__(self) -> None:
        self.signal = 0.0
        self.noise = 0.0
        self.count = 0
        self.max_abs_error = 0.0
        self.nonfinite = 0  # elements where either side is NaN/inf (left out of the sums)

    def update(self, reference: Any, test: Any) -> None:
        ref = np.asarray(reference, dtype=np.float64)
        tst = np.asarray(test, dtype=np.float64)
        if ref.shape != tst.shape:
            raise ValueError(f"shapes differ: {ref.shape} vs {tst.shape}")
        diff = ref - tst
        finite = np.isfinite(diff)
        if not finite.all():
            self.nonfinite += int(finite.size - np.count_nonzero(finite))
            ref, diff = ref[finite], diff[finite]
        self.signal += float(np.dot(ref.reshape(-1), ref.reshape(-1)))
        self.noise += float(np.dot(diff.reshape(-1), diff.reshape(-1)))
        self.count += int(ref.size)
        if diff.size:
            self.max_abs_error = max(self.max_abs_error, float(np.max(np.abs(diff))))

    def merge(self, other: Sqnr) -> None:
        self.signal += other.signal
        self.noise += other.noise
        self.count += other.count
        self.nonfinite += other.nonfinite
        self.max_abs_error = max(self.max_abs_error, other.max_abs_error)

    @property
    def db(self) -> float:
        """SQNR in dB (``inf`` when the two sides are equal)."""
        return sqnr_db(self.signal, self.noise)
