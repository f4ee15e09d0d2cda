"""Min-max calibration: running float32 minimum and maximum, per tensor or per channel."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import errors
from ..encoding import Encoding
from ..schemes import encoding_from_range, resolve_scheme
from .base import Calibrator, as_batch, normalize_axis


class MinMaxCalibrator(Calibrator):
    """Running min/max (AIMET "tf" / ``min_max``, QNN "tf", Vitis ``maxmin``, AMCT ARQ).

    The statistics are float32 running min/max as in AIMET's ``MinMaxEncodingAnalyzer``
    (aimet.md C.1); NaN values are ignored like its ``std::min`` loop does. The encoding is
    computed by ``scheme`` (see :mod:`quantspec.runtime.schemes`). ``merge`` is exact: two
    calibrators fed disjoint halves give the same encoding as one fed everything.

    Args:
        axis: channel axis for per-channel statistics, ``None`` per tensor.
        scheme: range -> encoding scheme (``aimet2`` default).
        **grid: default grid flags for :meth:`encoding` (bits, symmetric, strict, unsigned).
    """

    name = "minmax"

    def __init__(self, axis: int | None = None, scheme: str = "aimet2", **grid: Any) -> None:
        resolve_scheme(scheme)
        self.axis = axis
        self.scheme = scheme
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None
        super().__init__(**grid)

    def config(self) -> dict[str, Any]:
        return {"axis": self.axis, "scheme": self.scheme}

    def update(self, batch: Any) -> MinMaxCalibrator:
        x = as_batch(batch)
        if x.size == 0:
            return self
        ax = normalize_axis(self.axis, x.ndim)
        if ax is None:
            mn = np.fmin.reduce(x, axis=None, keepdims=False).reshape(1)
            mx = np.fmax.reduce(x, axis=None, keepdims=False).reshape(1)
        else:
            other = tuple(i for i in range(x.ndim) if i != ax)
            mn = np.fmin.reduce(x, axis=other) if other else x.copy()
            mx = np.fmax.reduce(x, axis=other) if other else x.copy()
        self._fold(mn.astype(np.float32), mx.astype(np.float32))
        self.batches += 1
        return self

    def _fold(self, mn: np.ndarray, mx: np.ndarray) -> None:
        if self.min is None or self.max is None:
            self.min, self.max = mn, mx
            return
        if mn.shape != self.min.shape:
            raise errors.error(
                errors.BAD_AXIS,
                f"batch has {mn.size} channels, earlier batches had {self.min.size}",
            )
        np.fmin(self.min, mn, out=self.min)
        np.fmax(self.max, mx, out=self.max)

    def merge(self, other: Calibrator) -> MinMaxCalibrator:
        self._check_merge(other)
        assert isinstance(other, MinMaxCalibrator)
        if other.min is not None and other.max is not None:
            self._fold(other.min.copy(), other.max.copy())
        self.batches += other.batches
        return self

    def encoding(self, bits: int | None = None, **grid: Any) -> Encoding:
        g = self._grid(bits, grid)
        if self.min is None or self.max is None:
            raise errors.no_data(type(self).__name__)
        # All-NaN channels leave NaN; treat them like AIMET's untouched FLT_MAX/lowest stats
        # (which become the [0, 0] range after zero is forced into it).
        mn = np.where(np.isnan(self.min), 0.0, self.min).astype(np.float64)
        mx = np.where(np.isnan(self.max), 0.0, self.max).astype(np.float64)
        return encoding_from_range(mn, mx, scheme=self.scheme, axis=self.axis, **g)

    def state_arrays(self) -> list[np.ndarray]:
        return [a for a in (self.min, self.max) if a is not None]
