"""MSE calibration: grid search for the clipping range that minimizes quantization MSE.

Candidates shrink the observed range by ``k/num_candidates`` for ``k = 1 .. num_candidates``
(both ends together; ``[-a, a]`` for symmetric grids). Each candidate's encoding comes from the
configured scheme, and its error is measured on the histogram: every bin centre is
fake-quantized (ONNX semantics, the chosen rounding) and the squared errors are weighted by the
bin counts. The first minimum wins. This is the "MinMSE" search of ORT/Quark-style tools; Vitis
AI's own ``mse`` method (a different candidate set on ``|x|``) is in
:mod:`~quantspec.runtime.calibrators.vitis`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import errors
from ..encoding import Encoding
from ..rounding import canonical_mode, round_array
from ..schemes import encoding_from_range
from .base import Calibrator, as_batch
from .histogram import Pow2Histogram


def expected_mse(centers: np.ndarray, counts: np.ndarray, enc: Encoding, rounding: str
                 ) -> np.ndarray:
    """Count-weighted MSE of fake-quantizing ``centers``, one value per encoding channel."""
    scale = enc.scale[:, None]
    q = round_array(centers[None, :] / scale, rounding)
    q = np.clip(q, enc.offset[:, None], (enc.offset + enc.num_steps)[:, None])
    err = q * scale - centers[None, :]
    mse: np.ndarray = (err * err) @ counts / max(counts.sum(), 1.0)
    return mse


class MseCalibrator(Calibrator):
    """Clipping-range grid search minimizing the expected quantization MSE.

    Args:
        num_candidates: number of shrink factors tried.
        num_bins: histogram resolution (exactly mergeable power-of-two histogram).
        rounding: rounding mode used to measure the error.
        scheme: range -> encoding scheme.
        **grid: default grid flags for :meth:`encoding`.
    """

    name = "mse"

    def __init__(self, num_candidates: int = 100, num_bins: int = 4096,
                 rounding: str = "half_even", scheme: str = "aimet2", **grid: Any) -> None:
        if not isinstance(num_candidates, int) or num_candidates < 1:
            raise errors.bad_parameter("num_candidates", num_candidates, "an integer >= 1")
        canonical_mode(rounding)
        self.num_candidates, self.num_bins = num_candidates, num_bins
        self.rounding, self.scheme = rounding, scheme
        self.hist = Pow2Histogram(num_bins)
        super().__init__(**grid)

    def config(self) -> dict[str, Any]:
        return {"num_candidates": self.num_candidates, "num_bins": self.num_bins,
                "rounding": self.rounding, "scheme": self.scheme}

    def update(self, batch: Any) -> MseCalibrator:
        self.hist.update(as_batch(batch))
        self.batches += 1
        return self

    def merge(self, other: Calibrator) -> MseCalibrator:
        self._check_merge(other)
        assert isinstance(other, MseCalibrator)
        self.hist.merge(other.hist)
        self.batches += other.batches
        return self

    def encoding(self, bits: int | None = None, **grid: Any) -> Encoding:
        g = self._grid(bits, grid)
        if self.hist.empty:
            raise errors.no_data(type(self).__name__)
        mn, mx = min(self.hist.min, 0.0), max(self.hist.max, 0.0)
        if g["symmetric"] and not (g["unsigned"] and mn >= 0):
            a = max(-mn, mx)
            mn, mx = -a, a
        f = np.arange(1, self.num_candidates + 1) / self.num_candidates
        # All candidates at once: one "channel" per candidate.
        cands = encoding_from_range(mn * f, mx * f, scheme=self.scheme, axis=0, **g)
        start = self.hist.start
        counts = self.hist.counts[: self.hist.used()].astype(np.float64)
        centers = (start + np.arange(len(counts)) + 0.5) * self.hist.width
        centers = np.clip(centers, self.hist.min, self.hist.max)
        mse = expected_mse(centers, counts, cands, self.rounding)
        best = int(np.argmin(mse))
        return cands.channel(best)

    def state_arrays(self) -> list[np.ndarray]:
        return self.hist.state_arrays()
