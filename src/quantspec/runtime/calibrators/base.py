"""The calibrator protocol: streaming, mergeable statistics of one tensor.

A calibrator sees a tensor batch by batch (``update``), can absorb another calibrator of the same
configuration that saw other batches (``merge``, for sharded calibration), and turns what it has
seen into an :class:`~quantspec.runtime.encoding.Encoding` (``encoding`` / ``result``). Its state
has a fixed size: it never keeps the samples, so memory does not grow with the amount of
calibration data (``state_nbytes`` reports it).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from .. import errors
from ..encoding import Encoding

GRID_DEFAULTS: dict[str, Any] = {"bits": 8, "symmetric": False, "strict": False,
                                 "unsigned": False, "signed": None, "zero_point_shift": 0.0}


def as_batch(batch: Any) -> np.ndarray:
    """A batch as a float32 array (no copy when it already is one), or raise E409."""
    arr = np.asarray(batch)
    if arr.dtype.kind not in "fiub":
        raise errors.error(errors.BAD_DATA, f"calibration data must be numeric, got {arr.dtype}")
    return arr if arr.dtype == np.float32 else arr.astype(np.float32)


def normalize_axis(axis: int | None, ndim: int) -> int | None:
    if axis is None:
        return None
    ax = axis + ndim if axis < 0 else axis
    if not 0 <= ax < ndim:
        raise errors.error(errors.BAD_AXIS, f"axis {axis} is out of range for a {ndim}-d batch")
    return ax


def channel_rows(x: np.ndarray, axis: int | None) -> np.ndarray:
    """``(channels, n)`` view/copy of a batch: one row per channel (one row per tensor)."""
    ax = normalize_axis(axis, x.ndim)
    if ax is None:
        return x.reshape(1, -1)
    return np.moveaxis(x, ax, 0).reshape(x.shape[ax], -1)


class Calibrator(ABC):
    """Base class of every calibrator.

    Subclasses implement :meth:`update`, :meth:`merge`, :meth:`encoding` and describe their state
    in :meth:`state_arrays`. Grid flags given to the constructor (``bits``, ``symmetric``,
    ``strict``, ``unsigned``, ``signed``) are the defaults of :meth:`encoding` and
    :meth:`result`.
    """

    name: ClassVar[str] = ""

    def __init__(self, **grid: Any) -> None:
        unknown = set(grid) - set(GRID_DEFAULTS)
        if unknown:
            raise errors.unknown_name(f"{type(self).__name__} option", sorted(unknown)[0],
                                      list(GRID_DEFAULTS) + list(self.config()))
        self.grid = {**GRID_DEFAULTS, **grid}
        self.batches = 0

    # -- protocol --------------------------------------------------------------------------------
    @abstractmethod
    def update(self, batch: Any) -> Calibrator:
        """Add one batch of data; returns ``self``."""

    @abstractmethod
    def merge(self, other: Calibrator) -> Calibrator:
        """Absorb ``other`` (same type and configuration, disjoint data); returns ``self``."""

    @abstractmethod
    def encoding(self, bits: int | None = None, **grid: Any) -> Encoding:
        """The encoding for what has been seen; unspecified grid flags use the defaults."""

    def result(self) -> Encoding:
        """The encoding with the grid flags given to the constructor."""
        return self.encoding()

    def config(self) -> dict[str, Any]:
        """Data-side configuration; two calibrators merge only if these are equal."""
        return {}

    def state_arrays(self) -> list[np.ndarray]:
        """The numpy arrays that make up the state (for :meth:`state_nbytes`)."""
        return []

    def state_nbytes(self) -> int:
        """Bytes of numpy state held; independent of the number of batches seen."""
        return sum(a.nbytes for a in self.state_arrays())

    def empty_like(self) -> Calibrator:
        """A fresh calibrator with the same configuration (for a shard of the data)."""
        return type(self)(**self.config(), **self.grid)

    def copy(self) -> Calibrator:
        return copy.deepcopy(self)

    # -- helpers for subclasses ----------------------------------------------------------------
    def _grid(self, bits: int | None, grid: dict[str, Any]) -> dict[str, Any]:
        unknown = set(grid) - set(GRID_DEFAULTS)
        if unknown:
            raise errors.unknown_name("encoding option", sorted(unknown)[0], GRID_DEFAULTS)
        merged = {**self.grid, **{k: v for k, v in grid.items() if v is not None}}
        if bits is not None:
            merged["bits"] = bits
        return merged

    def _check_merge(self, other: Calibrator) -> None:
        if type(other) is not type(self) or other.config() != self.config():
            raise errors.error(
                errors.MERGE_MISMATCH,
                f"cannot merge {type(other).__name__}({other.config()}) into "
                f"{type(self).__name__}({self.config()})",
                "merge calibrators created with the same class and options (empty_like())",
            )

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({cfg}, batches={self.batches})"
