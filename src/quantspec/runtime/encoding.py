"""The :class:`Encoding`: one quantization grid, per tensor or per channel.

Conventions (aimet.md C, D):

* ``scale`` (AIMET ``delta``) and ``offset`` follow AIMET's TfEncoding: a representable value is
  ``scale * (q + offset)`` for ``q`` in ``0 .. num_steps``; ``offset`` is integral and usually
  ``<= 0`` (``-128`` for symmetric int8, ``-127`` strict symmetric, ``0`` unsigned symmetric).
* ``min``/``max`` are the float range the vendor reports (``scale*offset`` and
  ``scale*(offset+num_steps)`` for every scheme in :mod:`quantspec.runtime.schemes`).
* The *storage* grid (what :func:`~quantspec.runtime.quantize.quantize` returns and what an ONNX
  ``QuantizeLinear`` would hold) is ``qmin .. qmax`` with ``zero_point = qmin - offset``:
  ``signed=False`` stores ``0 .. num_steps`` (uint8 ``zp = -offset``); ``signed=True`` stores
  ``-2^(b-1) (+1 if strict) .. qmin + num_steps`` (int8 ``zp = -(offset + 128)``).

Arrays hold one element per tensor or one per channel (``axis`` says which dimension); they are
float64 because every vendor computes encodings in double (aimet.md C.1) and read-only so an
``Encoding`` can be shared freely.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import errors

ArrayLike = Any  # numpy's ArrayLike without importing numpy.typing at runtime


def _vec(value: ArrayLike, name: str) -> np.ndarray:
    arr = np.array(value, dtype=np.float64).reshape(-1)
    arr.setflags(write=False)
    return arr


def num_steps(bits: int, symmetric: bool = False, strict: bool = False) -> int:
    """Grid steps ``N'``: ``2^bits - 1``, one fewer for strict symmetric (aimet.md B.9)."""
    return (1 << bits) - 1 - (1 if symmetric and strict else 0)


def storage_qmin(bits: int, signed: bool, narrow: bool = False) -> int:
    """Lowest stored integer: 0 unsigned, ``-2^(bits-1)`` signed (``+1`` for a narrow grid)."""
    return (-(1 << (bits - 1)) + (1 if narrow else 0)) if signed else 0


def offset_to_zero_point(
    offset: ArrayLike, bits: int, signed: bool, strict: bool = False
) -> np.ndarray:
    """AIMET TfEncoding offset (``x = scale*(q+offset)``) -> ONNX zero point of the storage type.

    >>> offset_to_zero_point(-128, 8, signed=False).tolist()
    [128]
    >>> offset_to_zero_point(-128, 8, signed=True).tolist()
    [0]
    """
    off = np.asarray(offset, dtype=np.float64).reshape(-1)
    return (storage_qmin(bits, signed, strict) - off).astype(np.int64)


def zero_point_to_offset(
    zero_point: ArrayLike, bits: int, signed: bool, strict: bool = False
) -> np.ndarray:
    """ONNX zero point -> AIMET TfEncoding offset (the inverse of :func:`offset_to_zero_point`)."""
    zp = np.asarray(zero_point, dtype=np.float64).reshape(-1)
    return storage_qmin(bits, signed, strict) - zp


@dataclass(frozen=True, eq=False)
class Encoding:
    """A quantization grid.

    Attributes:
        bits: integer bit width (1..32), or 16/32 for ``dtype="float"``.
        scale, offset, min, max: float64 arrays, one element per tensor or per channel.
        symmetric, strict, unsigned: the grid flags the encoding was computed with
            (``unsigned`` = unsigned-symmetric requested; per channel it only applies where the
            observed minimum was >= 0, aimet.md B.9).
        signed: storage type is signed (int8) rather than unsigned (uint8).
        axis: channel axis for per-channel encodings, ``None`` per tensor.
        dtype: ``"int"`` (fixed point) or ``"float"`` (plain cast to float16/32).
        scale_type: ``"float"`` or ``"power_of_two"`` (Vitis DPU, vitis_amct.md 1.12).
    """

    bits: int
    scale: np.ndarray = field(default_factory=lambda: _vec([], "scale"))
    offset: np.ndarray = field(default_factory=lambda: _vec([], "offset"))
    min: np.ndarray = field(default_factory=lambda: _vec([], "min"))
    max: np.ndarray = field(default_factory=lambda: _vec([], "max"))
    symmetric: bool = False
    strict: bool = False
    unsigned: bool = False
    signed: bool = False
    axis: int | None = None
    dtype: str = "int"
    scale_type: str = "float"

    def __post_init__(self) -> None:
        for name in ("scale", "offset", "min", "max"):
            object.__setattr__(self, name, _vec(getattr(self, name), name))
        if self.dtype not in ("int", "float"):
            raise errors.unknown_name("encoding dtype", self.dtype, ("int", "float"))
        if self.scale_type not in ("float", "power_of_two"):
            raise errors.unknown_name("scale type", self.scale_type, ("float", "power_of_two"))
        if self.dtype == "float":
            if self.bits not in (16, 32):
                raise errors.bad_bits(self.bits, "16 or 32 for a float encoding")
            return
        if not isinstance(self.bits, (int, np.integer)) or not 1 <= int(self.bits) <= 32:
            raise errors.bad_bits(self.bits)
        sizes = {len(self.scale), len(self.offset), len(self.min), len(self.max)}
        if len(sizes) != 1 or 0 in sizes:
            raise errors.error(
                errors.BAD_RANGE,
                "scale, offset, min and max must have the same non-zero length",
                "give one value per tensor or one per channel",
            )
        if len(self.scale) > 1 and self.axis is None:
            raise errors.error(
                errors.BAD_AXIS,
                f"{len(self.scale)} per-channel values but no axis",
                "pass axis= for per-channel encodings",
            )
        if not (np.all(np.isfinite(self.scale)) and np.all(self.scale > 0)):
            raise errors.error(errors.BAD_RANGE, "scale must be finite and > 0")
        if not np.all(np.isfinite(self.offset)) or np.any(self.offset != np.round(self.offset)):
            raise errors.error(errors.BAD_RANGE, "offset must be integral")

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_scale_offset(
        cls,
        scale: ArrayLike,
        offset: ArrayLike,
        bits: int,
        *,
        symmetric: bool = False,
        strict: bool = False,
        unsigned: bool = False,
        signed: bool | None = None,
        axis: int | None = None,
        scale_type: str = "float",
    ) -> Encoding:
        """Build an encoding from AIMET scale/offset; min/max follow (aimet.md C.1 last line)."""
        s = np.array(scale, dtype=np.float64).reshape(-1)
        o = np.array(offset, dtype=np.float64).reshape(-1)
        s, o = np.broadcast_arrays(s, o)
        n = num_steps(bits, symmetric, strict)
        return cls(
            bits, s, o, s * o, s * (o + n), symmetric=symmetric, strict=strict,
            unsigned=unsigned, signed=symmetric if signed is None else signed, axis=axis,
            scale_type=scale_type,
        )

    @classmethod
    def from_onnx(
        cls,
        scale: ArrayLike,
        zero_point: ArrayLike,
        bits: int = 8,
        *,
        signed: bool = False,
        axis: int | None = None,
        symmetric: bool | None = None,
        strict: bool = False,
    ) -> Encoding:
        """Build an encoding from ONNX ``y_scale``/``y_zero_point`` of an int/uint storage type."""
        offset = zero_point_to_offset(zero_point, bits, signed, strict)
        centred = -(1 << (bits - 1)) + (1 if strict else 0)
        sym = bool(np.all(offset == centred)) if symmetric is None else symmetric
        return cls.from_scale_offset(
            scale, offset, bits, symmetric=sym, strict=strict and sym, signed=signed, axis=axis
        )

    @classmethod
    def float_cast(cls, bits: int = 16) -> Encoding:
        """A ``dtype="float"`` encoding: fake-quantization is a cast to float16 (or a no-op)."""
        return cls(bits, dtype="float")

    def replace(self, **changes: Any) -> Encoding:
        """Return a copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # -- derived grid ------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        """``N'``: number of steps of the grid (255 for int8, 254 strict symmetric)."""
        return num_steps(self.bits, self.symmetric, self.strict)

    @property
    def channels(self) -> int:
        return len(self.scale)

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def qmin(self) -> int:
        """Lowest stored integer (storage grid, see module docstring)."""
        return storage_qmin(self.bits, self.signed, self.symmetric and self.strict)

    @property
    def qmax(self) -> int:
        return self.qmin + self.num_steps

    @property
    def zero_point(self) -> np.ndarray:
        """Zero point of the storage grid (int64, one per channel)."""
        return (self.qmin - self.offset).astype(np.int64)

    @property
    def storage_dtype(self) -> np.dtype:
        """Smallest numpy integer dtype holding ``qmin .. qmax`` (int8/uint8 for <= 8 bits)."""
        for dt in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64):
            info = np.iinfo(dt)
            if info.min <= self.qmin and self.qmax <= info.max and (self.signed == (info.min < 0)):
                return np.dtype(dt)
        return np.dtype(np.int64)

    def to_onnx(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y_scale float32, y_zero_point)`` for an ONNX QuantizeLinear of this grid.

        The zero point uses :attr:`storage_dtype`; per-tensor values are 0-d arrays.
        """
        scale = self.scale.astype(np.float32)
        zp = self.zero_point.astype(self.storage_dtype)
        if not self.per_channel:
            return scale.reshape(()), zp.reshape(())
        return scale, zp

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (lists of floats), stable key order."""
        d: dict[str, Any] = {"bits": int(self.bits), "dtype": self.dtype}
        if self.dtype == "float":
            return d
        d.update(
            scale=self.scale.tolist(), offset=self.offset.tolist(), min=self.min.tolist(),
            max=self.max.tolist(), symmetric=self.symmetric, strict=self.strict,
            unsigned=self.unsigned, signed=self.signed, axis=self.axis, scale_type=self.scale_type,
        )
        return d

    def channel(self, index: int) -> Encoding:
        """The per-tensor encoding of one channel."""
        sl = slice(index, index + 1)
        return self.replace(
            scale=self.scale[sl], offset=self.offset[sl], min=self.min[sl], max=self.max[sl],
            axis=None,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Encoding):
            return NotImplemented
        same_flags = all(
            getattr(self, f) == getattr(other, f)
            for f in ("bits", "symmetric", "strict", "unsigned", "signed", "axis", "dtype",
                      "scale_type")
        )
        return same_flags and all(
            np.array_equal(getattr(self, f), getattr(other, f))
            for f in ("scale", "offset", "min", "max")
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.dtype == "float":
            return f"Encoding(float{self.bits})"

        def short(a: np.ndarray) -> str:
            return repr(float(a[0])) if len(a) == 1 else f"[{len(a)} values]"

        flags = [n for n in ("symmetric", "strict", "unsigned", "signed") if getattr(self, n)]
        where = f", axis={self.axis}" if self.axis is not None else ""
        return (
            f"Encoding(bits={self.bits}, scale={short(self.scale)}, offset={short(self.offset)}, "
            f"min={short(self.min)}, max={short(self.max)}{where}"
            + "".join(f", {f}" for f in flags)
            + (", power_of_two" if self.scale_type == "power_of_two" else "")
            + ")"
        )


def stack_channels(encodings: Sequence[Encoding], axis: int) -> Encoding:
    """Combine per-tensor encodings (same flags) into one per-channel encoding along ``axis``."""
    first = encodings[0]
    return first.replace(
        scale=np.concatenate([e.scale for e in encodings]),
        offset=np.concatenate([e.offset for e in encodings]),
        min=np.concatenate([e.min for e in encodings]),
        max=np.concatenate([e.max for e in encodings]),
        axis=axis,
    )
