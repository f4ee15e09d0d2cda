"""Data model of an AIMET / QNN encodings file and the conversions between its conventions.

One :class:`TensorEncoding` per tensor, whatever the file version. Numbers are kept in one internal
convention, AIMET's ``TfEncoding`` (research aimet.md C, D):

* ``x = scale * (q + offset)`` with ``q`` in ``[0, N]``, ``N = 2**bitwidth - 1``, and
  ``offset <= 0`` (so ``offset = -zero_point`` of the unsigned grid);
* ``min = scale * offset`` and ``max = scale * (offset + N')`` are the range the quantizer clamps
  to, where ``N' = N - 1`` for a strict symmetric grid (aimet.md B.9) and ``N`` otherwise.

Per-channel (and per-block) encodings hold one element per channel in each list. The file formats
differ only in how they spell this; the functions at the bottom convert between the spellings
(1.0.0 offsets, 2.x ``y_zero_point`` with signed/unsigned dtypes, QNN's positive offsets, the
0.6.1 ``max`` of strict grids).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..source import Span

# File versions (aimet.md D: VALID_ENCODING_VERSIONS plus the legacy 0.4.0 / 0.5.0 of the doc).
LEGACY_VERSIONS = ("0.4.0", "0.5.0", "0.6.1")
READ_VERSIONS = (*LEGACY_VERSIONS, "1.0.0", "2.0.0", "2.1.0")
WRITE_VERSIONS = ("0.6.1", "1.0.0", "2.0.0", "2.1.0")

KINDS = ("activation", "param", "unknown")  # 2.x files do not say which a tensor is
ENC_TYPES = ("PER_TENSOR", "PER_CHANNEL", "PER_BLOCK", "LPBQ")
PER_CHANNEL_TYPES = ("PER_CHANNEL", "PER_BLOCK", "LPBQ")

INT_BITWIDTHS = range(2, 33)  # aimet.md C.1 handles 2-bit grids; the doc's upper bound is 32
FLOAT_BITWIDTHS = (8, 16, 32)

# 2.x float output dtypes and their widths (aimet.md D: fp8 scaled floats, fp16/bf16 casts).
FLOAT_DTYPES_V2 = {
    "float8e4m3fn": 8,
    "float8e5m2": 8,
    "float16": 16,
    "bfloat16": 16,
    "float32": 32,
}

# aimet.md C.1: float32 limits (times 0.99) bound the grid of a min-max encoding.
_F_MAX = 3.4028234663852886e38 * 0.99
_F_MIN = -_F_MAX


@dataclass
class TensorEncoding:
    """The encoding of one tensor.

    ``symmetric`` is the file's flag (``is_symmetric`` / ``is_sym``; for 2.x inferred from the
    grid); ``None`` when a legacy entry does not say. ``signed`` is the integer dtype a 2.x file
    stated (``int8`` vs ``uint8``); ``None`` means AIMET's rule: signed iff symmetric (aimet.md D).
    ``scale``/``offset``/``min``/``max`` are empty for an entry that only sets a bit width (spec 004
    mixed precision) and for plain float entries.
    """

    name: str
    kind: str = "activation"
    dtype: str = "int"
    bitwidth: int = 8
    symmetric: bool | None = False
    scale: list[float] = field(default_factory=list)
    offset: list[float] = field(default_factory=list)
    min: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    axis: int | None = None
    block_size: int | None = None
    enc_type: str = "PER_TENSOR"
    signed: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    span: Span | None = field(default=None, compare=False)
    # Where each part was read: "bitwidth", "dtype", "symmetric", "range", "axis".
    spans: dict[str, Span] = field(default_factory=dict, compare=False)

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_grid(
        cls,
        name: str,
        scale: float | Sequence[float],
        offset: float | Sequence[float],
        bitwidth: int = 8,
        *,
        symmetric: bool = False,
        kind: str = "activation",
        axis: int | None = None,
        block_size: int | None = None,
        signed: bool | None = None,
    ) -> TensorEncoding:
        """An int encoding from ``scale`` and TfEncoding ``offset`` (<= 0), one per channel.

        A sequence (even of length 1) makes a per-channel encoding; a scalar a per-tensor one.
        """
        per_channel = not isinstance(scale, numbers.Real)
        scales = [float(s) for s in _as_list(scale)]
        offsets = [float(o) for o in _as_list(offset)]
        if len(offsets) == 1 and len(scales) > 1:
            offsets = offsets * len(scales)
        enc_type = "PER_TENSOR"
        if per_channel:
            enc_type = "PER_BLOCK" if block_size else "PER_CHANNEL"
        enc = cls(
            name=name, kind=kind, dtype="int", bitwidth=int(bitwidth), symmetric=bool(symmetric),
            scale=scales, offset=offsets, axis=None if axis is None else int(axis),
            block_size=None if block_size is None else int(block_size), signed=signed,
            enc_type=enc_type,
        )
        enc.min, enc.max = enc.grid_ranges()
        return enc

    @classmethod
    def from_min_max(
        cls,
        name: str,
        min: float | Sequence[float],
        max: float | Sequence[float],
        bitwidth: int = 8,
        *,
        symmetric: bool = False,
        strict: bool = False,
        unsigned: bool = False,
        kind: str = "activation",
        axis: int | None = None,
        block_size: int | None = None,
        signed: bool | None = None,
    ) -> TensorEncoding:
        """An int encoding computed from ranges with AIMET's min-max math (aimet.md C.1)."""
        mins, maxs = [float(v) for v in _as_list(min)], [float(v) for v in _as_list(max)]
        grids = [
            compute_encoding(lo, hi, bitwidth, symmetric=symmetric, strict=strict,
                             unsigned=unsigned)
            for lo, hi in zip(mins, maxs, strict=True)
        ]
        per_channel = not isinstance(min, numbers.Real)
        return cls.from_grid(
            name, [g[0] for g in grids] if per_channel else grids[0][0],
            [g[1] for g in grids] if per_channel else grids[0][1], bitwidth,
            symmetric=symmetric, kind=kind, axis=axis, block_size=block_size, signed=signed,
        )

    @classmethod
    def float_(cls, name: str, bitwidth: int = 16, kind: str = "activation") -> TensorEncoding:
        """A float (not integer-quantized) encoding, e.g. fp16 in a mixed-precision file."""
        return cls(name=name, kind=kind, dtype="float", bitwidth=int(bitwidth), symmetric=None)

    # -- derived properties ---------------------------------------------------------------------

    @property
    def has_range(self) -> bool:
        return bool(self.scale)

    @property
    def channels(self) -> int:
        return len(self.scale)

    @property
    def per_channel(self) -> bool:
        return self.enc_type in PER_CHANNEL_TYPES

    @property
    def levels(self) -> int:
        """``N = 2**bw - 1``: the number of steps of the full integer grid."""
        return (1 << self.bitwidth) - 1

    @property
    def strict(self) -> bool:
        """Strict symmetric grid: offset ``-(2**(bw-1) - 1)``, top code unused (aimet.md B.9)."""
        if self.dtype != "int" or not self.symmetric or not self.offset:
            return False
        return all(o == -((1 << (self.bitwidth - 1)) - 1) for o in self.offset)

    @property
    def unsigned_symmetric(self) -> bool:
        """Symmetric flag with offset 0 on some channel: the unsigned grid (aimet.md B.9, D)."""
        return bool(self.dtype == "int" and self.symmetric and any(o == 0 for o in self.offset))

    def grid_kind(self) -> tuple[bool, bool, bool]:
        """``(symmetric, strict, unsigned)`` of the grid, for a quantizer that reproduces it.

        A symmetric flag over offsets no symmetric quantizer produces (aimet.md B.9: only
        ``-2**(bw-1)``, strict ``-(2**(bw-1)-1)`` or unsigned ``0``) is reported as asymmetric:
        the asymmetric min-max math reproduces any zero-aligned grid exactly.
        """
        if self.dtype != "int" or not self.symmetric or not self.offset:
            return False, False, False
        half = 1 << (self.bitwidth - 1)
        offsets = set(self.offset)
        if offsets <= {-half, 0.0}:
            return True, False, 0.0 in offsets
        if offsets == {-(half - 1)}:
            return True, True, False
        return False, False, False

    def grid_ranges(self) -> tuple[list[float], list[float]]:
        """``(min, max)`` per channel from scale/offset in the TfEncoding convention."""
        strict, bits = self.strict, self.bitwidth
        pairs = [grid_min_max(s, o, bits, strict)
                 for s, o in zip(self.scale, self.offset, strict=True)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def export_ranges(self) -> tuple[list[float], list[float]]:
        """``(min, max)`` as legacy files write them: ``max`` is the top of the full integer grid.

        aimet.md D: strict symmetric int8 exports offset -127 but ``max = 128 * scale``, so that a
        reader that recomputes scale from min/max (QNN, spec 004) gets the same scale.
        """
        bits = self.bitwidth
        pairs = [grid_min_max(s, o, bits, False)
                 for s, o in zip(self.scale, self.offset, strict=True)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def is_signed(self, force_activation_as: str | None = None) -> bool:
        """The integer dtype of a 2.x export (aimet.md D: ``force_activation_as``)."""
        if self.signed is not None:
            return self.signed
        if force_activation_as == "unsigned" and self.kind == "activation":
            return False
        if force_activation_as == "signed" and self.kind == "activation":
            return True
        return bool(self.symmetric)

    def zero_points(self, signed: bool) -> list[int]:
        """2.x ``y_zero_point`` per channel (``-AffineEncoding.offset``, aimet.md D)."""
        return [zero_point(o, self.bitwidth, signed) for o in self.offset]

    def channel_pairs(self) -> Iterator[tuple[float, float]]:
        return zip(self.min, self.max, strict=True)


@dataclass
class EncodingFile:
    """A whole encodings file: entries plus file-level data kept for round trips."""

    version: str
    entries: list[TensorEncoding] = field(default_factory=list)
    quantizer_args: dict[str, Any] | None = None
    producer: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level keys (excluded_layers)
    version_declared: bool = True  # False: version inferred from the shape (aimet.md D loader)
    file: str = ""
    spans: dict[str, Span] = field(default_factory=dict, compare=False)  # top-level key -> span

    def by_name(self) -> dict[str, TensorEncoding]:
        return {e.name: e for e in self.entries}

    def activations(self) -> list[TensorEncoding]:
        return [e for e in self.entries if e.kind != "param"]

    def params(self) -> list[TensorEncoding]:
        return [e for e in self.entries if e.kind == "param"]


# ---------------------------------------------------------------------------------------------
# Conventions
# ---------------------------------------------------------------------------------------------


def levels(bitwidth: int, strict: bool = False) -> int:
    """Steps of the grid: ``2**bw - 1``, one fewer for a strict symmetric grid (aimet.md C.1)."""
    return (1 << bitwidth) - 1 - (1 if strict else 0)


def grid_min_max(scale: float, offset: float, bitwidth: int, strict: bool) -> tuple[float, float]:
    """TfEncoding range of a grid: ``min = scale*offset``, ``max = scale*(offset + N')``.

    Computed the way AIMET does (integer sum first, then one multiplication) so the floats match
    AIMET's exports bit for bit (aimet.md D, checked against the corpus).
    """
    return scale * offset, scale * (offset + levels(bitwidth, strict))


def zero_point(offset: float, bitwidth: int, signed: bool) -> int:
    """TfEncoding offset -> 2.x ``y_zero_point`` (aimet.md D).

    Unsigned dtype: ``-offset``. Signed dtype: the grid shifts by ``2**(bw-1)``, so
    ``-(offset + 2**(bw-1))`` (symmetric int8 -> 0, strict -> -1, unsigned symmetric -> -128).
    """
    zp = -(offset + (1 << (bitwidth - 1))) if signed else -offset
    return int(zp)


def offset_from_zero_point(zp: float, bitwidth: int, signed: bool) -> float:
    """2.x ``y_zero_point`` -> TfEncoding offset (inverse of :func:`zero_point`)."""
    return float(-zp - (1 << (bitwidth - 1))) if signed else float(-zp)


def signed_offset(offset: float, bitwidth: int) -> float:
    """TfEncoding offset -> AIMET ``AffineEncoding`` offset of a signed dtype (aimet.md D)."""
    return offset + (1 << (bitwidth - 1))


def qnn_offset(offset: float) -> float:
    """TfEncoding offset -> QNN's positive offset (``round(-min/scale)``, spec 004)."""
    return -offset if offset else 0.0


def zero_point_range(bitwidth: int, signed: bool) -> tuple[int, int]:
    """Integer range of a 2.x dtype, which its zero point must fit (aimet.md D loader)."""
    if signed:
        return -(1 << (bitwidth - 1)), (1 << (bitwidth - 1)) - 1
    return 0, (1 << bitwidth) - 1


# ---------------------------------------------------------------------------------------------
# Encoding math
# ---------------------------------------------------------------------------------------------


def round_half_away(x: float) -> float:
    """C ``round``: halves away from zero (aimet.md C.1, the compiled min-max analyzer)."""
    return float(math.floor(x + 0.5)) if x >= 0 else -float(math.floor(-x + 0.5))


def compute_encoding(
    mn: float,
    mx: float,
    bitwidth: int,
    *,
    symmetric: bool = False,
    strict: bool = False,
    unsigned: bool = False,
) -> tuple[float, float]:
    """``(scale, offset)`` of AIMET 2.x's min-max encoding of ``[mn, mx]`` (aimet.md C.1).

    This is ``getComputedEncodings``, not the fixed-range path of C.2: C.2 widens every range to
    at least 0.01, which would change the tiny (dead-channel, scale 2**-23) encodings that real
    files hold (aimet.md C.1, issue #4054). One addition: a range that is exactly the grid of a
    scale one or two ulps away from the computed one (because ``max / 127`` rounds) returns that
    scale, so a range read from a file re-encodes to the file's own scale bit for bit.
    """
    n = levels(bitwidth, symmetric and strict)
    lo = min(max(min(0.0, mn), _F_MIN), 0.0)
    hi = max(min(max(0.0, mx), _F_MAX), 0.0)
    unsigned = unsigned and lo >= 0
    min_scale = min(0.01 / n, 2.0**-23)
    if symmetric and not unsigned:
        npos = n // 2
        nneg = n - npos
        if n == 3:  # 2-bit: both sides get 2 steps (aimet.md C.1)
            npos = nneg
        delta = max(hi / npos, -lo / nneg, min_scale)
        offset = float(-nneg)
    else:
        delta = max((hi - lo) / n, min_scale)
        offset = min(max(round_half_away(lo / delta), float(-n)), 0.0)
    if offset < 0:
        delta = min(delta, _F_MIN / offset)
    if offset + n > 0:
        delta = min(delta, _F_MAX / (offset + n))
    return _snap(delta, offset, n, mn, mx), offset


def _snap(delta: float, offset: float, n: int, mn: float, mx: float) -> float:
    candidates = [delta]
    up = down = delta
    for _ in range(4):
        up, down = math.nextafter(up, math.inf), math.nextafter(down, 0.0)
        candidates += [down, up]
    for cand in candidates:
        if cand * offset == mn and cand * (offset + n) == mx:
            return cand
    return delta


def qnn_encoding(mn: float, mx: float, bitwidth: int) -> tuple[float, float]:
    """``(scale, offset)`` QNN computes from bitwidth, min and max (spec 004, "Quantization").

    Zero is put in range, the range is at least 0.0001, ``scale = (max - min) / (2**bw - 1)`` and
    QNN's offset ``round(-min / scale)`` (returned negated, in the TfEncoding convention).
    """
    lo, hi = min(mn, 0.0), max(mx, 0.0)
    hi = max(hi, lo + 0.0001)
    scale = (hi - lo) / levels(bitwidth)
    return scale, -round_half_away(-lo / scale) + 0.0


def _as_list(v: float | Sequence[float]) -> list[float]:
    if isinstance(v, numbers.Real):
        return [float(v)]
    return [float(x) for x in v]
