"""Packed 4-bit storage as QNN defines it (spec 004, "Packed 4-bit Quantization").

Two 4-bit values share one byte: the first value in the low nibble, the second in the high nibble,
so (10, 4) packs to ``0b0100_1010``. Per-channel tensors are packed *along each channel*: every
channel starts on a byte boundary and takes ``ceil(n/2)`` bytes for its ``n`` values (a
(3, 3, 3, 32) weight with 32 output channels takes 32 x 14 bytes). Signed values (int4,
``-8..7``) are stored as two's-complement nibbles.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import errors


def _rows(q: np.ndarray, axis: int | None) -> tuple[np.ndarray, int | None]:
    if axis is None:
        return q.reshape(1, -1), None
    ax = axis + q.ndim if axis < 0 else axis
    if not 0 <= ax < q.ndim:
        raise errors.error(errors.BAD_AXIS, f"axis {axis} is out of range for a {q.ndim}-d array")
    return np.moveaxis(q, ax, 0).reshape(q.shape[ax], -1), ax


def pack_int4(q: Any, *, axis: int | None = None, signed: bool | None = None) -> np.ndarray:
    """Pack 4-bit integers two per byte (low nibble first).

    Args:
        q: integers in ``0..15`` (unsigned) or ``-8..7`` (signed).
        axis: channel axis; each channel is packed separately, in C order of the other axes.
        signed: value range to check; default: signed if ``q`` has a negative value.

    Returns:
        uint8 array: shape ``(ceil(n/2),)`` per tensor, ``(channels, ceil(n/2))`` per channel.

    Example:
        >>> pack_int4([10, 4]).tolist()
        [74]
    """
    arr = np.asarray(q)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise errors.error(errors.BAD_PACKING, f"expected integers, got dtype {arr.dtype}")
    if signed is None:
        signed = bool(arr.size and arr.min() < 0)
    lo, hi = (-8, 7) if signed else (0, 15)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise errors.error(
            errors.BAD_PACKING,
            f"values {int(arr.min())}..{int(arr.max())} do not fit {'int4' if signed else 'uint4'}",
            f"4-bit packing needs values in {lo}..{hi}",
        )
    rows, ax = _rows(arr, axis)
    nib = (rows.astype(np.int64) & 0xF).astype(np.uint8)
    if nib.shape[1] % 2:
        nib = np.concatenate([nib, np.zeros((nib.shape[0], 1), np.uint8)], axis=1)
    packed = nib[:, 0::2] | (nib[:, 1::2] << 4)
    return packed[0] if ax is None else packed


def unpack_int4(
    packed: Any, shape: tuple[int, ...], *, axis: int | None = None, signed: bool = False
) -> np.ndarray:
    """Inverse of :func:`pack_int4`.

    Args:
        packed: uint8 bytes from :func:`pack_int4`.
        shape: shape of the unpacked tensor.
        axis: the channel axis used when packing.
        signed: sign-extend nibbles to ``-8..7`` (int8 result) instead of ``0..15`` (uint8).

    Example:
        >>> unpack_int4([74], (2,)).tolist()
        [10, 4]
    """
    data = np.asarray(packed)
    if data.dtype != np.uint8:
        if data.dtype.kind not in "iu" or (data.size and (data.min() < 0 or data.max() > 255)):
            raise errors.error(errors.BAD_PACKING, "packed data must be bytes (uint8)")
        data = data.astype(np.uint8)
    shape = tuple(int(s) for s in shape)
    total = int(np.prod(shape, dtype=np.int64))
    if axis is None:
        channels, ax = 1, None
    else:
        ax = axis + len(shape) if axis < 0 else axis
        if not 0 <= ax < len(shape):
            raise errors.error(errors.BAD_AXIS, f"axis {axis} is out of range for shape {shape}")
        channels = shape[ax]
    per = total // channels if channels else 0
    rows = data.reshape(channels, -1) if data.size else data.reshape(channels, 0)
    if rows.shape[1] != (per + 1) // 2:
        raise errors.error(
            errors.BAD_PACKING,
            f"{data.size} packed bytes do not match shape {shape}",
            f"expected {channels} x {(per + 1) // 2} bytes",
        )
    nib = np.empty((channels, rows.shape[1] * 2), np.uint8)
    nib[:, 0::2] = rows & 0xF
    nib[:, 1::2] = rows >> 4
    vals = nib[:, :per]
    if signed:
        vals = ((vals.astype(np.int16) ^ 8) - 8).astype(np.int8)
    if ax is None:
        return vals.reshape(shape)
    moved = (shape[ax],) + tuple(s for i, s in enumerate(shape) if i != ax)
    return np.ascontiguousarray(np.moveaxis(vals.reshape(moved), 0, ax))
